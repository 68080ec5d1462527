// A thin RAII layer over the SQLite C API: a connection and prepared
// statements, with every failure turned into Result. Nothing here knows about
// pods or IPs; the schema lives in state_store.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace terway::store {

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binds 1-based parameters.
  Statement& Bind(int i, const std::string& v);
  Statement& Bind(int i, int64_t v);
  Statement& BindNull(int i);
  Statement& Bind(int i, const std::optional<std::string>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }

  // One step: true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion (for statements without rows).
  Status Run();

  std::string Text(int col) const;
  int64_t Int(int col) const;
  bool IsNull(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens (creating if needed) the file, sets WAL, synchronous and busy_timeout.
  static Result<std::unique_ptr<Database>> Open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status Exec(const std::string& sql);
  Result<Statement> Prepare(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int Changes() const;
  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back on destruction unless committed.
// IMMEDIATE takes the write lock up front so two writers never deadlock on a
// read-to-write upgrade (SQLITE_BUSY that busy_timeout cannot resolve).
class Transaction {
 public:
  static Result<Transaction> Begin(Database* db);
  Transaction(Transaction&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;
};

// kConflict for constraint violations (UNIQUE), kUnavailable for BUSY/LOCKED,
// kInternal otherwise.
Error SqliteError(sqlite3* db, int rc, const std::string& what);

}  // namespace terway::store
