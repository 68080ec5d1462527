#include "store/sqlite.h"

#include <sqlite3.h>

namespace terway::store {

Error SqliteError(sqlite3* db, int rc, const std::string& what) {
  const char* msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  ErrorCode code = ErrorCode::kInternal;
  int primary = rc & 0xff;
  if (primary == SQLITE_CONSTRAINT) code = ErrorCode::kConflict;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) code = ErrorCode::kUnavailable;
  Error e(code, fmt::format("{}: sqlite: {}", what, msg ? msg : "unknown error"));
  e.retryable = code == ErrorCode::kUnavailable;
  return e;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::Bind(int i, const std::string& v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::Bind(int i, int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}
Statement& Statement::BindNull(int i) {
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Result<bool> Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqliteError(db_, rc, "executing statement");
}

Status Statement::Run() {
  while (true) {
    TERWAY_ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return Ok();
  }
}

std::string Statement::Text(int col) const {
  const unsigned char* t = sqlite3_column_text(stmt_, col);
  return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
}
int64_t Statement::Int(int col) const { return sqlite3_column_int64(stmt_, col); }
bool Statement::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

Result<std::unique_ptr<Database>> Database::Open(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Error e = SqliteError(raw, rc, fmt::format("opening state database {}", path));
    sqlite3_close(raw);
    return e;
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  // Another process (terway-cli) may read while terwayd writes: wait instead
  // of failing with SQLITE_BUSY.
  sqlite3_busy_timeout(raw, 5000);
  // WAL: readers never block the writer, and a commit is one append to the
  // log, so a kill -9 mid-write leaves the last committed state intact.
  // synchronous=NORMAL: in WAL mode this is durable across process crashes
  // (kill -9, OOM); only a power loss can drop the last few commits, never
  // corrupt the file. After a power loss every pod sandbox on the node is
  // re-created and the start-up reconcile against the live pods and the
  // cloud rebuilds the truth, so FULL's extra fsync per allocation buys
  // nothing for us and costs latency on every CNI ADD.
  TERWAY_TRY(db->Exec("PRAGMA journal_mode=WAL"));
  TERWAY_TRY(db->Exec("PRAGMA synchronous=NORMAL"));
  TERWAY_TRY(db->Exec("PRAGMA foreign_keys=ON"));
  return db;
}

Database::~Database() { sqlite3_close(db_); }

Status Database::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Error e = SqliteError(nullptr, rc, "executing SQL");
    e.message = fmt::format("executing SQL: sqlite: {}", msg);
    return e;
  }
  return Ok();
}

Result<Statement> Database::Prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db_, rc, "preparing statement");
  return Statement(db_, stmt);
}

int Database::Changes() const { return sqlite3_changes(db_); }

Result<Transaction> Transaction::Begin(Database* db) {
  TERWAY_TRY_CTX(db->Exec("BEGIN IMMEDIATE"), "starting transaction");
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_) (void)db_->Exec("ROLLBACK");
}

Status Transaction::Commit() {
  Database* db = db_;
  db_ = nullptr;
  Status st = db->Exec("COMMIT");
  if (!st.ok()) {
    // A failed COMMIT can leave the transaction open; close it so the
    // connection is usable again.
    (void)db->Exec("ROLLBACK");
    return std::move(st).error().Wrap("committing transaction");
  }
  return Ok();
}

}  // namespace terway::store
