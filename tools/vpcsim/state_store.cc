#include "tools/vpcsim/state_store.h"

#include "tools/vpcsim/http_reply.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <nlohmann/json.hpp>

namespace terway::vpcsim {

namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS instances(
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, instance_type TEXT NOT NULL, zone TEXT NOT NULL,
  vswitch_id TEXT NOT NULL, primary_eni TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS enis(
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, status TEXT NOT NULL, type TEXT NOT NULL,
  vswitch_id TEXT NOT NULL, instance_id TEXT NOT NULL, device_index INTEGER NOT NULL,
  mac TEXT NOT NULL UNIQUE, primary_ip TEXT NOT NULL, security_groups TEXT NOT NULL,
  tags TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
  created_at INTEGER NOT NULL, transition_at_ms INTEGER NOT NULL,
  resource_group_id TEXT NOT NULL DEFAULT '');
-- One row per private IPv4 in use; the primary key makes a double assignment
-- of an address impossible even if the in-memory model were wrong.
CREATE TABLE IF NOT EXISTS private_ips(
  address TEXT PRIMARY KEY, eni_id TEXT NOT NULL, vswitch_id TEXT NOT NULL,
  is_primary INTEGER NOT NULL, ord INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ipv6_addresses(
  address TEXT PRIMARY KEY, eni_id TEXT NOT NULL, ord INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS client_tokens(
  token TEXT PRIMARY KEY, action TEXT NOT NULL, fingerprint TEXT NOT NULL,
  result TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces(nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sts_credentials(
  access_key_id TEXT PRIMARY KEY, secret TEXT NOT NULL, token TEXT NOT NULL,
  instance_id TEXT NOT NULL, role TEXT NOT NULL, issued_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL);
)sql";

// A prepared statement with RAII finalize and typed binders.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt& Bind(int i, const std::string& s) {
    sqlite3_bind_text(st_, i, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  // SQLITE_ROW / SQLITE_DONE or an error
  Result<bool> Step() {
    if (rc_ != SQLITE_OK) return Err("prepare");
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Err("step");
  }
  Status Run() {
    auto r = Step();
    if (!r.ok()) return std::move(r).error();
    return Ok();
  }
  std::string Text(int c) {
    const unsigned char* t = sqlite3_column_text(st_, c);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  int64_t Int(int c) { return sqlite3_column_int64(st_, c); }

 private:
  Error Err(const char* what) {
    return Errorf(ErrorCode::kInternal, "sqlite {}: {}", what, sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

nlohmann::json TagsJson(const std::vector<cloud::Tag>& tags) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& t : tags) j.push_back({t.key, t.value});
  return j;
}

}  // namespace

namespace {

// Group and other permissions off a file or directory (symlinks untouched).
Status MakeOwnerOnly(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return errno == ENOENT ? Ok() : SysError("reading the mode of " + path);
  if (S_ISLNK(st.st_mode) || (st.st_mode & 077) == 0) return Ok();
  if (chmod(path.c_str(), st.st_mode & 07700) != 0) return SysError("making " + path + " owner-only");
  return Ok();
}

Status MakeDirs0700(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST) return Ok();
  if (errno != ENOENT) return SysError("creating state directory " + dir);
  auto slash = dir.find_last_of('/');
  if (slash == std::string::npos || slash == 0) return SysError("creating state directory " + dir);
  TERWAY_TRY(MakeDirs0700(dir.substr(0, slash)));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return SysError("creating state directory " + dir);
  return Ok();
}

}  // namespace

Status PrepareStateDir(const std::string& dir) {
  TERWAY_TRY(MakeDirs0700(dir));
  TERWAY_TRY(MakeOwnerOnly(dir));
  for (const char* f : {"vpcsim.db", "vpcsim.db-wal", "vpcsim.db-shm", "vpcsim.db-journal", "endpoint",
                        "endpoint.tmp", "lock"}) {
    TERWAY_TRY(MakeOwnerOnly(dir + "/" + f));
  }
  return Ok();
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir) {
  TERWAY_TRY(PrepareStateDir(dir));
  std::unique_ptr<StateStore> s(new StateStore());
  s->path_ = dir + "/vpcsim.db";
  // SQLite would create the database 0644; created here first, it is 0600
  // from the start (and SQLite copies that mode to -wal and -shm).
  int fd = open(s->path_.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("creating " + s->path_);
  close(fd);
  if (sqlite3_open(s->path_.c_str(), &s->db_) != SQLITE_OK) {
    return Errorf(ErrorCode::kInternal, "opening {}: {}", s->path_,
                  s->db_ ? sqlite3_errmsg(s->db_) : "out of memory");
  }
  sqlite3_busy_timeout(s->db_, 5000);
  // WAL + NORMAL: a commit survives a kill -9 of vpcsim (only a power loss
  // could cost the last transactions, which an emulator may accept).
  TERWAY_TRY_CTX(s->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"), "state " + s->path_);
  TERWAY_TRY_CTX(s->Exec(kSchema), "creating schema in " + s->path_);
  TERWAY_TRY_CTX(s->AddMissingColumns(), "upgrading the schema of " + s->path_);
  return s;
}

StateStore::~StateStore() {
  if (db_) sqlite3_close(db_);
}

// A state directory written before a column existed: add the column with
// its default, so a lab's recorded cloud survives an upgrade of vpcsim.
Status StateStore::AddMissingColumns() {
  bool has_group = false;
  Stmt q(db_, "PRAGMA table_info(enis)");
  while (true) {
    TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    has_group = has_group || q.Text(1) == "resource_group_id";
  }
  if (has_group) return Ok();
  return Exec("ALTER TABLE enis ADD COLUMN resource_group_id TEXT NOT NULL DEFAULT ''");
}

Status StateStore::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown";
    sqlite3_free(err);
    return Errorf(ErrorCode::kInternal, "sqlite: {}", msg);
  }
  return Ok();
}

Status StateStore::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status StateStore::Commit() { return Exec("COMMIT"); }
void StateStore::Rollback() { (void)Exec("ROLLBACK"); }

Status StateStore::SetMeta(const std::string& key, const std::string& value) {
  return Stmt(db_, "INSERT OR REPLACE INTO meta(key,value) VALUES(?,?)").Bind(1, key).Bind(2, value).Run();
}

Status StateStore::PutInstance(const InstanceRecord& i) {
  return Stmt(db_,
              "INSERT OR REPLACE INTO instances(id,seq,instance_type,zone,vswitch_id,primary_eni,"
              "created_at) VALUES(?,?,?,?,?,?,?)")
      .Bind(1, i.id).Bind(2, i.seq).Bind(3, i.instance_type).Bind(4, i.zone)
      .Bind(5, i.vswitch_id).Bind(6, i.primary_eni).Bind(7, i.created_at)
      .Run();
}

Status StateStore::DeleteInstance(const std::string& id) {
  return Stmt(db_, "DELETE FROM instances WHERE id=?").Bind(1, id).Run();
}

Status StateStore::PutEni(const EniRecord& e) {
  TERWAY_TRY(Stmt(db_,
                  "INSERT OR REPLACE INTO enis(id,seq,status,type,vswitch_id,instance_id,device_index,"
                  "mac,primary_ip,security_groups,tags,name,description,created_at,transition_at_ms,"
                  "resource_group_id) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
                 .Bind(1, e.id).Bind(2, e.seq).Bind(3, e.status).Bind(4, e.type)
                 .Bind(5, e.vswitch_id).Bind(6, e.instance_id).Bind(7, int64_t{e.device_index})
                 .Bind(8, e.mac).Bind(9, e.primary_ip)
                 .Bind(10, DumpJson(nlohmann::json(e.security_groups))).Bind(11, DumpJson(TagsJson(e.tags)))
                 .Bind(12, e.name).Bind(13, e.description).Bind(14, e.created_at)
                 .Bind(15, e.transition_at_ms).Bind(16, e.resource_group_id)
                 .Run());
  TERWAY_TRY(Stmt(db_, "DELETE FROM private_ips WHERE eni_id=?").Bind(1, e.id).Run());
  TERWAY_TRY(Stmt(db_, "DELETE FROM ipv6_addresses WHERE eni_id=?").Bind(1, e.id).Run());
  int64_t ord = 0;
  auto put_ip = [&](const std::string& ip, bool primary) {
    return Stmt(db_, "INSERT INTO private_ips(address,eni_id,vswitch_id,is_primary,ord) VALUES(?,?,?,?,?)")
        .Bind(1, ip).Bind(2, e.id).Bind(3, e.vswitch_id).Bind(4, int64_t{primary}).Bind(5, ord++)
        .Run();
  };
  TERWAY_TRY_CTX(put_ip(e.primary_ip, true), "ENI " + e.id + " primary IP " + e.primary_ip);
  for (const auto& ip : e.secondary_ips) TERWAY_TRY_CTX(put_ip(ip, false), "ENI " + e.id + " IP " + ip);
  for (const auto& ip : e.ipv6s) {
    TERWAY_TRY(Stmt(db_, "INSERT INTO ipv6_addresses(address,eni_id,ord) VALUES(?,?,?)")
                   .Bind(1, ip).Bind(2, e.id).Bind(3, ord++).Run());
  }
  return Ok();
}

Status StateStore::DeleteEni(const std::string& id) {
  TERWAY_TRY(Stmt(db_, "DELETE FROM private_ips WHERE eni_id=?").Bind(1, id).Run());
  TERWAY_TRY(Stmt(db_, "DELETE FROM ipv6_addresses WHERE eni_id=?").Bind(1, id).Run());
  return Stmt(db_, "DELETE FROM enis WHERE id=?").Bind(1, id).Run();
}

Status StateStore::PutClientToken(const ClientTokenRecord& t) {
  return Stmt(db_,
              "INSERT OR REPLACE INTO client_tokens(token,action,fingerprint,result,created_at)"
              " VALUES(?,?,?,?,?)")
      .Bind(1, t.token).Bind(2, t.action).Bind(3, t.fingerprint).Bind(4, t.result)
      .Bind(5, t.created_at)
      .Run();
}

Result<bool> StateStore::InsertNonce(const std::string& nonce, int64_t expires_at, int64_t now) {
  Stmt q(db_, "SELECT expires_at FROM nonces WHERE nonce=?");
  q.Bind(1, nonce);
  TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (row && q.Int(0) > now) return false;
  TERWAY_TRY(Stmt(db_, "INSERT OR REPLACE INTO nonces(nonce,expires_at) VALUES(?,?)")
                 .Bind(1, nonce).Bind(2, expires_at).Run());
  return true;
}

Status StateStore::PutSts(const StsCredential& c) {
  return Stmt(db_,
              "INSERT OR REPLACE INTO sts_credentials(access_key_id,secret,token,instance_id,role,"
              "issued_at,expires_at) VALUES(?,?,?,?,?,?,?)")
      .Bind(1, c.access_key_id).Bind(2, c.access_key_secret).Bind(3, c.security_token)
      .Bind(4, c.instance_id).Bind(5, c.role).Bind(6, c.issued_at).Bind(7, c.expires_at)
      .Run();
}

Status StateStore::PruneExpired(int64_t now) {
  TERWAY_TRY(Stmt(db_, "DELETE FROM nonces WHERE expires_at<=?").Bind(1, now).Run());
  TERWAY_TRY(Stmt(db_, "DELETE FROM sts_credentials WHERE expires_at<=?").Bind(1, now).Run());
  // ClientTokens are remembered for a day, longer than any client retries.
  return Stmt(db_, "DELETE FROM client_tokens WHERE created_at<=?").Bind(1, now - 86400).Run();
}

Result<StateSnapshot> StateStore::Load() {
  StateSnapshot s;
  {
    Stmt q(db_, "SELECT key,value FROM meta");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.meta[q.Text(0)] = q.Text(1);
    }
  }
  {
    Stmt q(db_, "SELECT id,seq,instance_type,zone,vswitch_id,primary_eni,created_at FROM instances ORDER BY seq");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.instances.push_back({q.Text(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), q.Text(5), q.Int(6)});
    }
  }
  std::map<std::string, size_t> index;
  {
    Stmt q(db_,
           "SELECT id,seq,status,type,vswitch_id,instance_id,device_index,mac,primary_ip,"
           "security_groups,tags,name,description,created_at,transition_at_ms,resource_group_id "
           "FROM enis ORDER BY seq");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      EniRecord e;
      e.id = q.Text(0);
      e.seq = q.Int(1);
      e.status = q.Text(2);
      e.type = q.Text(3);
      e.vswitch_id = q.Text(4);
      e.instance_id = q.Text(5);
      e.device_index = static_cast<int>(q.Int(6));
      e.mac = q.Text(7);
      e.primary_ip = q.Text(8);
      try {
        e.security_groups = nlohmann::json::parse(q.Text(9)).get<std::vector<std::string>>();
        for (const auto& t : nlohmann::json::parse(q.Text(10))) {
          e.tags.push_back({t.at(0).get<std::string>(), t.at(1).get<std::string>()});
        }
      } catch (const std::exception& ex) {
        return Errorf(ErrorCode::kInternal, "state: ENI {} has corrupt JSON columns: {}", e.id, ex.what());
      }
      e.name = q.Text(11);
      e.description = q.Text(12);
      e.created_at = q.Int(13);
      e.transition_at_ms = q.Int(14);
      e.resource_group_id = q.Text(15);
      index[e.id] = s.enis.size();
      s.enis.push_back(std::move(e));
    }
  }
  {
    Stmt q(db_, "SELECT address,eni_id,is_primary FROM private_ips ORDER BY eni_id,ord");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      auto it = index.find(q.Text(1));
      if (it == index.end()) return Errorf(ErrorCode::kInternal, "state: IP {} of unknown ENI", q.Text(0));
      if (!q.Int(2)) s.enis[it->second].secondary_ips.push_back(q.Text(0));
    }
  }
  {
    Stmt q(db_, "SELECT address,eni_id FROM ipv6_addresses ORDER BY eni_id,ord");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      auto it = index.find(q.Text(1));
      if (it == index.end()) return Errorf(ErrorCode::kInternal, "state: IPv6 {} of unknown ENI", q.Text(0));
      s.enis[it->second].ipv6s.push_back(q.Text(0));
    }
  }
  {
    Stmt q(db_, "SELECT token,action,fingerprint,result,created_at FROM client_tokens");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.client_tokens.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Int(4)});
    }
  }
  {
    Stmt q(db_, "SELECT access_key_id,secret,token,instance_id,role,issued_at,expires_at FROM sts_credentials");
    while (true) {
      TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      s.sts.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4), q.Int(5), q.Int(6)});
    }
  }
  return s;
}

}  // namespace terway::vpcsim
