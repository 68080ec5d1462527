// Durable state of the emulated cloud in SQLite (WAL), so that a killed or
// restarted vpcsim keeps its instances, ENIs, IPs, ClientTokens, used nonces
// and issued STS credentials. The VpcCloud keeps the working copy in memory
// and writes every change through, one transaction per API call.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "tools/vpcsim/model.h"

struct sqlite3;

namespace terway::vpcsim {

struct StateSnapshot {
  std::map<std::string, std::string> meta;
  std::vector<InstanceRecord> instances;
  std::vector<EniRecord> enis;
  std::vector<ClientTokenRecord> client_tokens;
  std::vector<StsCredential> sts;
};

// The state directory holds secrets (the STS credentials handed out, the
// endpoint of an unauthenticated admin API): it is 0700 and every file in it
// 0600 from its creation. Creates the directory (and missing parents) 0700;
// an existing one, and the files an older vpcsim left in it, lose their
// group and other permissions.
Status PrepareStateDir(const std::string& dir);

class StateStore {
 public:
  // Opens (creating if needed) "<dir>/vpcsim.db", after PrepareStateDir. The
  // database is created 0600 before SQLite opens it; SQLite gives its -wal
  // and -shm files the database's mode.
  static Result<std::unique_ptr<StateStore>> Open(const std::string& dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  Result<StateSnapshot> Load();

  Status Begin();
  Status Commit();
  void Rollback();

  Status SetMeta(const std::string& key, const std::string& value);
  Status PutInstance(const InstanceRecord& i);
  Status DeleteInstance(const std::string& id);
  // Upserts the ENI row and replaces its IPv4/IPv6 rows.
  Status PutEni(const EniRecord& e);
  Status DeleteEni(const std::string& id);
  Status PutClientToken(const ClientTokenRecord& t);
  // false if the nonce is already recorded (and not expired).
  Result<bool> InsertNonce(const std::string& nonce, int64_t expires_at, int64_t now);
  Status PutSts(const StsCredential& c);
  Status PruneExpired(int64_t now);

  const std::string& path() const { return path_; }

 private:
  StateStore() = default;
  Status Exec(const std::string& sql);
  Status AddMissingColumns();
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A transaction that rolls back unless committed (RAII, for early returns).
class StoreTxn {
 public:
  explicit StoreTxn(StateStore* s) : s_(s) { status_ = s_->Begin(); }
  ~StoreTxn() {
    if (!done_ && status_.ok()) s_->Rollback();
  }
  const Status& begun() const { return status_; }
  Status Commit() {
    done_ = true;
    return s_->Commit();
  }

 private:
  StateStore* s_;
  Status status_;
  bool done_ = false;
};

}  // namespace terway::vpcsim
