// Failure injection for the real StateStore, with no hook in production
// code: a second connection to the same database file installs triggers
// that abort chosen writes (RAISE(ABORT), which SQLite reports as a
// constraint failure: the store's call fails, its transaction rolls back,
// as it would on a full disk or an I/O error). Counting triggers let the
// first N matching writes through, so a test can fail a write in the middle
// of a loop (the 2nd unpair of a reclaim batch).
//
// The triggers live in the database only while armed: Clear() (and the
// destructor) drop them. Arm and clear while the store is not writing: the
// DDL takes the write lock like any writer (busy_timeout applies).
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "store/sqlite.h"

namespace terway::testing {

using store::Database;

// The store's writes a test can fail, by what the SQL does.
enum class StoreWrite {
  kPairIpv6,     // SetIpv6(ip, "<ipv6>")      UPDATE OF ipv6 ON ips, new value non-empty
  kUnpairIpv6,   // SetIpv6(ip, "")            UPDATE OF ipv6 ON ips, new value empty
  kAddIps,       // AddIps                     INSERT ON ips
  kRemoveIps,    // RemoveIps (and DeleteEni's cascade)   DELETE ON ips
  kAllocate,     // Allocate                   INSERT ON allocations
  kRelease,      // Release                    DELETE ON allocations
};

class StoreFaults {
 public:
  static Result<std::unique_ptr<StoreFaults>> Open(const std::string& db_path) {
    TERWAY_ASSIGN_OR_RETURN(auto db, Database::Open(db_path));
    std::unique_ptr<StoreFaults> f(new StoreFaults(std::move(db)));
    TERWAY_TRY(f->db_->Exec(
        "CREATE TABLE IF NOT EXISTS test_fault_passed (write TEXT PRIMARY KEY, n INTEGER NOT NULL)"));
    return f;
  }
  ~StoreFaults() { (void)Clear(); }

  // Every matching write after the first `pass_first` ones fails, until
  // Clear(). Re-arming a write restarts its count.
  Status Fail(StoreWrite w, int pass_first = 0) {
    const Shape s = ShapeOf(w);
    const std::string name = Name(w);
    TERWAY_TRY(Disarm(w));
    TERWAY_TRY(db_->Exec(fmt::format("INSERT OR REPLACE INTO test_fault_passed VALUES ('{}', 0)", name)));
    // The AFTER trigger counts writes that went through (committed with the
    // store's own transaction); the BEFORE trigger aborts once enough have.
    TERWAY_TRY(db_->Exec(fmt::format(
        "CREATE TRIGGER test_fault_count_{0} AFTER {1} ON {2} WHEN {3} BEGIN "
        "UPDATE test_fault_passed SET n = n + 1 WHERE write = '{0}'; END",
        name, s.event, s.table, s.when)));
    TERWAY_TRY(db_->Exec(fmt::format(
        "CREATE TRIGGER test_fault_fail_{0} BEFORE {1} ON {2} WHEN {3} AND "
        "(SELECT n FROM test_fault_passed WHERE write = '{0}') >= {4} BEGIN "
        "SELECT RAISE(ABORT, 'injected store failure ({0})'); END",
        name, s.event, s.table, s.when, pass_first)));
    return Ok();
  }

  Status Disarm(StoreWrite w) {
    const std::string name = Name(w);
    TERWAY_TRY(db_->Exec(fmt::format("DROP TRIGGER IF EXISTS test_fault_count_{}", name)));
    TERWAY_TRY(db_->Exec(fmt::format("DROP TRIGGER IF EXISTS test_fault_fail_{}", name)));
    return Ok();
  }

  Status Clear() {
    for (StoreWrite w : {StoreWrite::kPairIpv6, StoreWrite::kUnpairIpv6, StoreWrite::kAddIps,
                         StoreWrite::kRemoveIps, StoreWrite::kAllocate, StoreWrite::kRelease}) {
      TERWAY_TRY(Disarm(w));
    }
    return Ok();
  }

 private:
  struct Shape {
    const char* event;
    const char* table;
    const char* when;
  };
  static Shape ShapeOf(StoreWrite w) {
    switch (w) {
      case StoreWrite::kPairIpv6: return {"UPDATE OF ipv6", "ips", "NEW.ipv6 <> ''"};
      case StoreWrite::kUnpairIpv6: return {"UPDATE OF ipv6", "ips", "NEW.ipv6 = ''"};
      case StoreWrite::kAddIps: return {"INSERT", "ips", "1"};
      case StoreWrite::kRemoveIps: return {"DELETE", "ips", "1"};
      case StoreWrite::kAllocate: return {"INSERT", "allocations", "1"};
      case StoreWrite::kRelease: return {"DELETE", "allocations", "1"};
    }
    return {"", "", ""};
  }
  static std::string Name(StoreWrite w) {
    switch (w) {
      case StoreWrite::kPairIpv6: return "pair_ipv6";
      case StoreWrite::kUnpairIpv6: return "unpair_ipv6";
      case StoreWrite::kAddIps: return "add_ips";
      case StoreWrite::kRemoveIps: return "remove_ips";
      case StoreWrite::kAllocate: return "allocate";
      case StoreWrite::kRelease: return "release";
    }
    return "unknown";
  }

  explicit StoreFaults(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  std::unique_ptr<Database> db_;
};

}  // namespace terway::testing
