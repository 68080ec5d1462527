#include "store/state_store.h"

#include <string_view>

namespace terway::store {
namespace {

// Migrations[i] moves the schema from version i to i+1. Append only: a
// released migration is never edited, because databases in the field already
// ran it.
constexpr std::string_view kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE enis (
  eni_id       TEXT PRIMARY KEY,
  mac          TEXT NOT NULL,
  vswitch_id   TEXT NOT NULL,
  primary_ip   TEXT NOT NULL,
  is_primary   INTEGER NOT NULL DEFAULT 0,
  created_unix INTEGER NOT NULL
);
CREATE TABLE ips (
  ip              TEXT PRIMARY KEY,
  eni_id          TEXT NOT NULL REFERENCES enis(eni_id) ON DELETE CASCADE,
  idle_since_unix INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ips_eni ON ips(eni_id);
CREATE TABLE allocations (
  container_id  TEXT PRIMARY KEY,
  pod_namespace TEXT NOT NULL,
  pod_name      TEXT NOT NULL,
  pod_uid       TEXT NOT NULL,
  ip            TEXT NOT NULL UNIQUE,
  eni_id        TEXT NOT NULL,
  ifname        TEXT NOT NULL,
  created_unix  INTEGER NOT NULL,
  state         TEXT NOT NULL,
  sticky        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX allocations_pod ON allocations(pod_namespace, pod_name);
CREATE TABLE reservations (
  pod_namespace TEXT NOT NULL,
  pod_name      TEXT NOT NULL,
  ip            TEXT NOT NULL UNIQUE,
  eni_id        TEXT NOT NULL,
  expires_unix  INTEGER NOT NULL,
  PRIMARY KEY (pod_namespace, pod_name)
);
)sql",
    // 1 -> 2: where the pod's network lives, so a restarted terwayd can
    // verify and repair a live pod's wiring (or release a vanished one)
    // without the runtime calling again. Rows written by version 1 keep ''
    // (unknown): the daemon leaves them to DEL/GC.
    R"sql(
ALTER TABLE allocations ADD COLUMN netns TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN datapath_mode TEXT NOT NULL DEFAULT '';
)sql",
    // 2 -> 3: the bandwidth limit the pod's datapath was given, so restart
    // repair and CHECK rebuild and verify it (it may come from an annotation
    // that the runtime's requests never carry). '' = no limit / unknown.
    R"sql(
ALTER TABLE allocations ADD COLUMN bandwidth TEXT NOT NULL DEFAULT '';
)sql",
    // 3 -> 4: the network's host_stack_cidrs, which the CNI config carries
    // only on ADD: a restarted terwayd repairing an exclusive-ENI pod puts
    // those routes back. '' = none / unknown.
    R"sql(
ALTER TABLE allocations ADD COLUMN host_stack_cidrs TEXT NOT NULL DEFAULT '';
)sql",
    // 4 -> 5: where the allocation came from (pod GC frees a sandbox the
    // Kubernetes API never had only when its netns is gone) and, for pods
    // adopted at start from another plugin's wiring, their host veth.
    // '' = unknown / derived from the container id.
    R"sql(
ALTER TABLE allocations ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE allocations ADD COLUMN host_veth TEXT NOT NULL DEFAULT '';
)sql",
    // 5 -> 6: dual stack. An IP row pairs its IPv4 with one IPv6 of the same
    // ENI (the slot a pod gets); an allocation records the pod's IPv6. Rows
    // of an IPv4-only node keep '' and work as before.
    R"sql(
ALTER TABLE ips ADD COLUMN ipv6 TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX ips_ipv6 ON ips(ipv6) WHERE ipv6 <> '';
ALTER TABLE allocations ADD COLUMN ipv6 TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX allocations_ipv6 ON allocations(ipv6) WHERE ipv6 <> '';
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

constexpr const char* kAllocCols =
    "container_id, pod_namespace, pod_name, pod_uid, ip, eni_id, ifname, created_unix, state, sticky, netns, "
    "datapath_mode, bandwidth, host_stack_cidrs, origin, host_veth, ipv6";

AllocationRecord ReadAlloc(const Statement& s) {
  AllocationRecord r;
  r.container_id = s.Text(0);
  r.pod_namespace = s.Text(1);
  r.pod_name = s.Text(2);
  r.pod_uid = s.Text(3);
  r.ip = s.Text(4);
  r.eni_id = s.Text(5);
  r.ifname = s.Text(6);
  r.created_unix = s.Int(7);
  r.state = s.Text(8);
  r.sticky = s.Int(9) != 0;
  r.netns = s.Text(10);
  r.datapath_mode = s.Text(11);
  r.bandwidth = s.Text(12);
  r.host_stack_cidrs = s.Text(13);
  r.origin = s.Text(14);
  r.host_veth = s.Text(15);
  r.ipv6 = s.Text(16);
  return r;
}

ReservationRecord ReadReservation(const Statement& s) {
  ReservationRecord r;
  r.pod_namespace = s.Text(0);
  r.pod_name = s.Text(1);
  r.ip = s.Text(2);
  r.eni_id = s.Text(3);
  r.expires_unix = s.Int(4);
  return r;
}

template <typename T, typename F>
Result<std::vector<T>> Collect(Statement& s, F read) {
  std::vector<T> out;
  while (true) {
    TERWAY_ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return out;
    out.push_back(read(s));
  }
}

}  // namespace

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path) {
  TERWAY_ASSIGN_OR_RETURN(auto db, Database::Open(path));
  std::unique_ptr<StateStore> s(new StateStore(std::move(db)));
  TERWAY_TRY_CTX(s->Migrate(), fmt::format("migrating state database {}", path));
  return s;
}

Status StateStore::Migrate() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db_.get()));
  TERWAY_TRY(db_->Exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT version FROM schema_version"));
  TERWAY_ASSIGN_OR_RETURN(bool has, q.Step());
  int version = has ? static_cast<int>(q.Int(0)) : 0;
  if (!has) TERWAY_TRY(db_->Exec("INSERT INTO schema_version(version) VALUES (0)"));
  if (version > kSchemaVersion) {
    return Errorf(ErrorCode::kUnsupported,
                  "database schema version {} is newer than this terwayd supports ({}); "
                  "upgrade terwayd or move the state file away",
                  version, kSchemaVersion);
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    TERWAY_TRY_CTX(db_->Exec(std::string(kMigrations[v])),
                   fmt::format("migration {} -> {}", v, v + 1));
  }
  TERWAY_ASSIGN_OR_RETURN(auto up, db_->Prepare("UPDATE schema_version SET version = ?"));
  TERWAY_TRY(up.Bind(1, int64_t{kSchemaVersion}).Run());
  return tx.Commit();
}

int StateStore::SchemaVersion() {
  std::lock_guard l(mu_);
  auto q = db_->Prepare("SELECT version FROM schema_version");
  if (!q.ok()) return -1;
  auto row = q->Step();
  return row.ok() && *row ? static_cast<int>(q->Int(0)) : -1;
}

Result<std::optional<AllocationRecord>> StateStore::FindByContainerLocked(
    const std::string& container_id) {
  TERWAY_ASSIGN_OR_RETURN(
      auto q, db_->Prepare(fmt::format("SELECT {} FROM allocations WHERE container_id = ?", kAllocCols)));
  q.Bind(1, container_id);
  TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<AllocationRecord>();
  return std::optional<AllocationRecord>(ReadAlloc(q));
}

Result<AllocationRecord> StateStore::Allocate(const AllocationRecord& rec, bool consume_reservation) {
  std::lock_guard l(mu_);
  auto ctx = fmt::format("recording allocation of {} to pod {}/{}", rec.ip, rec.pod_namespace,
                         rec.pod_name);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), ctx);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto existing, FindByContainerLocked(rec.container_id), ctx);
  if (existing) return *existing;  // idempotent retry of the same ADD

  // A reserved IP belongs to its pod for the whole window.
  TERWAY_ASSIGN_OR_RETURN(auto rq, db_->Prepare(
      "SELECT pod_namespace, pod_name FROM reservations WHERE ip = ?"));
  rq.Bind(1, rec.ip);
  TERWAY_ASSIGN_OR_RETURN(bool reserved, rq.Step());
  if (reserved && (rq.Text(0) != rec.pod_namespace || rq.Text(1) != rec.pod_name)) {
    return Errorf(ErrorCode::kConflict, "IP {} is reserved for pod {}/{}", rec.ip, rq.Text(0),
                  rq.Text(1))
        .Wrap(ctx);
  }

  TERWAY_ASSIGN_OR_RETURN(auto ins, db_->Prepare(fmt::format(
      "INSERT INTO allocations({}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", kAllocCols)));
  ins.Bind(1, rec.container_id).Bind(2, rec.pod_namespace).Bind(3, rec.pod_name)
      .Bind(4, rec.pod_uid).Bind(5, rec.ip).Bind(6, rec.eni_id).Bind(7, rec.ifname)
      .Bind(8, rec.created_unix).Bind(9, rec.state).Bind(10, int64_t{rec.sticky ? 1 : 0})
      .Bind(11, rec.netns).Bind(12, rec.datapath_mode).Bind(13, rec.bandwidth)
      .Bind(14, rec.host_stack_cidrs).Bind(15, rec.origin).Bind(16, rec.host_veth).Bind(17, rec.ipv6);
  TERWAY_TRY_CTX(ins.Run(), ctx);
  TERWAY_ASSIGN_OR_RETURN(auto busy, db_->Prepare("UPDATE ips SET idle_since_unix = 0 WHERE ip = ?"));
  TERWAY_TRY_CTX(busy.Bind(1, rec.ip).Run(), ctx);
  if (consume_reservation) {
    TERWAY_ASSIGN_OR_RETURN(auto del, db_->Prepare(
        "DELETE FROM reservations WHERE pod_namespace = ? AND pod_name = ?"));
    TERWAY_TRY_CTX(del.Bind(1, rec.pod_namespace).Bind(2, rec.pod_name).Run(), ctx);
  }
  TERWAY_TRY_CTX(tx.Commit(), ctx);
  return rec;
}

Result<std::optional<AllocationRecord>> StateStore::Release(
    const std::string& container_id, int64_t idle_since_unix,
    const std::optional<ReservationRecord>& reservation) {
  std::lock_guard l(mu_);
  auto ctx = fmt::format("releasing allocation of container {}", container_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), ctx);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto existing, FindByContainerLocked(container_id), ctx);
  if (!existing) return existing;
  TERWAY_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM allocations WHERE container_id = ?"));
  TERWAY_TRY_CTX(del.Bind(1, container_id).Run(), ctx);
  TERWAY_ASSIGN_OR_RETURN(auto idle, db_->Prepare("UPDATE ips SET idle_since_unix = ? WHERE ip = ?"));
  TERWAY_TRY_CTX(idle.Bind(1, idle_since_unix).Bind(2, existing->ip).Run(), ctx);
  if (reservation) {
    TERWAY_ASSIGN_OR_RETURN(auto put, db_->Prepare(
        "INSERT OR REPLACE INTO reservations(pod_namespace, pod_name, ip, eni_id, expires_unix) "
        "VALUES (?,?,?,?,?)"));
    put.Bind(1, reservation->pod_namespace).Bind(2, reservation->pod_name).Bind(3, reservation->ip)
        .Bind(4, reservation->eni_id).Bind(5, reservation->expires_unix);
    TERWAY_TRY_CTX(put.Run(), ctx);
  }
  TERWAY_TRY_CTX(tx.Commit(), ctx);
  return existing;
}

Result<std::optional<AllocationRecord>> StateStore::FindByContainer(const std::string& container_id) {
  std::lock_guard l(mu_);
  return FindByContainerLocked(container_id);
}

Status StateStore::SetBandwidth(const std::string& container_id, const std::string& bandwidth) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("UPDATE allocations SET bandwidth = ? WHERE container_id = ?"));
  TERWAY_TRY_CTX(q.Bind(1, bandwidth).Bind(2, container_id).Run(),
                 fmt::format("recording the bandwidth of container {}", container_id));
  if (db_->Changes() == 0) {
    return Errorf(ErrorCode::kNotFound, "no allocation for container {} (released meanwhile?)", container_id);
  }
  return Ok();
}

Result<std::vector<AllocationRecord>> StateStore::FindByPod(const PodKey& pod) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(fmt::format(
      "SELECT {} FROM allocations WHERE pod_namespace = ? AND pod_name = ? ORDER BY created_unix",
      kAllocCols)));
  q.Bind(1, pod.namespace_).Bind(2, pod.name);
  return Collect<AllocationRecord>(q, ReadAlloc);
}

Result<std::vector<AllocationRecord>> StateStore::ListAllocations() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(fmt::format(
      "SELECT {} FROM allocations ORDER BY container_id", kAllocCols)));
  return Collect<AllocationRecord>(q, ReadAlloc);
}

Status StateStore::UpsertEni(const EniRecord& e) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "INSERT INTO enis(eni_id, mac, vswitch_id, primary_ip, is_primary, created_unix) "
      "VALUES (?,?,?,?,?,?) ON CONFLICT(eni_id) DO UPDATE SET mac=excluded.mac, "
      "vswitch_id=excluded.vswitch_id, primary_ip=excluded.primary_ip, is_primary=excluded.is_primary"));
  q.Bind(1, e.eni_id).Bind(2, e.mac).Bind(3, e.vswitch_id).Bind(4, e.primary_ip)
      .Bind(5, int64_t{e.is_primary ? 1 : 0}).Bind(6, e.created_unix);
  TERWAY_TRY_CTX(q.Run(), fmt::format("recording ENI {}", e.eni_id));
  return Ok();
}

Status StateStore::DeleteEni(const std::string& eni_id) {
  std::lock_guard l(mu_);
  auto ctx = fmt::format("forgetting ENI {}", eni_id);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), ctx);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT ip FROM allocations WHERE eni_id = ? LIMIT 1"));
  q.Bind(1, eni_id);
  TERWAY_ASSIGN_OR_RETURN(bool used, q.Step());
  if (used) {
    return Errorf(ErrorCode::kConflict, "IP {} of the ENI is still allocated to a pod", q.Text(0))
        .Wrap(ctx);
  }
  TERWAY_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM enis WHERE eni_id = ?"));
  TERWAY_TRY_CTX(del.Bind(1, eni_id).Run(), ctx);
  return tx.Commit();
}

Result<std::vector<EniRecord>> StateStore::ListEnis() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT eni_id, mac, vswitch_id, primary_ip, is_primary, created_unix FROM enis ORDER BY eni_id"));
  return Collect<EniRecord>(q, [](const Statement& s) {
    return EniRecord{s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4) != 0, s.Int(5)};
  });
}

Status StateStore::AddIps(const std::vector<IpRecord>& ips) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), "recording IPs");
  for (const auto& ip : ips) {
    TERWAY_ASSIGN_OR_RETURN(auto q1, db_->Prepare(
        "INSERT OR IGNORE INTO ips(ip, eni_id, idle_since_unix, ipv6) VALUES (?,?,?,?)"));
    q1.Bind(1, ip.ip).Bind(2, ip.eni_id).Bind(3, ip.idle_since_unix).Bind(4, ip.ipv6);
    TERWAY_TRY_CTX(q1.Run(), fmt::format("recording IP {} of {}", ip.ip, ip.eni_id));
  }
  return tx.Commit();
}

Status StateStore::SetIpv6(const std::string& ip, const std::string& ipv6) {
  std::lock_guard l(mu_);
  auto ctx = ipv6.empty() ? fmt::format("unpairing IP {} from its IPv6", ip)
                          : fmt::format("pairing IP {} with IPv6 {}", ip, ipv6);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), ctx);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT container_id FROM allocations WHERE ip = ?"));
  q.Bind(1, ip);
  TERWAY_ASSIGN_OR_RETURN(bool used, q.Step());
  if (used) {
    return Errorf(ErrorCode::kConflict, "allocated to container {}; release it first", q.Text(0)).Wrap(ctx);
  }
  if (!ipv6.empty()) {
    TERWAY_ASSIGN_OR_RETURN(auto other, db_->Prepare("SELECT ip FROM ips WHERE ipv6 = ? AND ip <> ?"));
    other.Bind(1, ipv6).Bind(2, ip);
    TERWAY_ASSIGN_OR_RETURN(bool taken, other.Step());
    if (taken) return Errorf(ErrorCode::kConflict, "the IPv6 is paired with {}", other.Text(0)).Wrap(ctx);
  }
  TERWAY_ASSIGN_OR_RETURN(auto up, db_->Prepare("UPDATE ips SET ipv6 = ? WHERE ip = ?"));
  TERWAY_TRY_CTX(up.Bind(1, ipv6).Bind(2, ip).Run(), ctx);
  if (db_->Changes() == 0) return Errorf(ErrorCode::kNotFound, "no row for IP {}", ip).Wrap(ctx);
  return tx.Commit();
}

Status StateStore::RemoveIps(const std::vector<std::string>& ips) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), "forgetting IPs");
  for (const auto& ip : ips) {
    TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT container_id FROM allocations WHERE ip = ?"));
    q.Bind(1, ip);
    TERWAY_ASSIGN_OR_RETURN(bool used, q.Step());
    if (used) {
      return Errorf(ErrorCode::kConflict, "forgetting IP {}: still allocated to container {}", ip,
                    q.Text(0));
    }
    TERWAY_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM ips WHERE ip = ?"));
    TERWAY_TRY(del.Bind(1, ip).Run());
  }
  return tx.Commit();
}

Result<std::vector<IpRecord>> StateStore::ListIps() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT ip, eni_id, idle_since_unix, ipv6 FROM ips ORDER BY eni_id, ip"));
  return Collect<IpRecord>(q, [](const Statement& s) {
    return IpRecord{s.Text(0), s.Text(1), s.Int(2), s.Text(3)};
  });
}

Status StateStore::PutReservation(const ReservationRecord& r) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "INSERT OR REPLACE INTO reservations(pod_namespace, pod_name, ip, eni_id, expires_unix) "
      "VALUES (?,?,?,?,?)"));
  q.Bind(1, r.pod_namespace).Bind(2, r.pod_name).Bind(3, r.ip).Bind(4, r.eni_id)
      .Bind(5, r.expires_unix);
  TERWAY_TRY_CTX(q.Run(), fmt::format("reserving {} for pod {}/{}", r.ip, r.pod_namespace, r.pod_name));
  return Ok();
}

Result<std::optional<ReservationRecord>> StateStore::FindReservation(const PodKey& pod) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT pod_namespace, pod_name, ip, eni_id, expires_unix FROM reservations "
      "WHERE pod_namespace = ? AND pod_name = ?"));
  q.Bind(1, pod.namespace_).Bind(2, pod.name);
  TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row) return std::optional<ReservationRecord>();
  return std::optional<ReservationRecord>(ReadReservation(q));
}

Status StateStore::DeleteReservation(const PodKey& pod) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "DELETE FROM reservations WHERE pod_namespace = ? AND pod_name = ?"));
  return q.Bind(1, pod.namespace_).Bind(2, pod.name).Run();
}

Result<std::vector<ReservationRecord>> StateStore::ListReservations() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT pod_namespace, pod_name, ip, eni_id, expires_unix FROM reservations "
      "ORDER BY pod_namespace, pod_name"));
  return Collect<ReservationRecord>(q, ReadReservation);
}

Result<std::vector<ReservationRecord>> StateStore::ExpireReservations(int64_t now_unix) {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto tx, Transaction::Begin(db_.get()), "expiring reservations");
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare(
      "SELECT pod_namespace, pod_name, ip, eni_id, expires_unix FROM reservations "
      "WHERE expires_unix <= ?"));
  q.Bind(1, now_unix);
  TERWAY_ASSIGN_OR_RETURN(auto expired, Collect<ReservationRecord>(q, ReadReservation));
  TERWAY_ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM reservations WHERE expires_unix <= ?"));
  TERWAY_TRY(del.Bind(1, now_unix).Run());
  TERWAY_TRY(tx.Commit());
  return expired;
}

Status StateStore::CheckIntegrity() {
  std::lock_guard l(mu_);
  TERWAY_ASSIGN_OR_RETURN(auto q, db_->Prepare("PRAGMA integrity_check"));
  TERWAY_ASSIGN_OR_RETURN(bool row, q.Step());
  if (!row || q.Text(0) != "ok") {
    return Errorf(ErrorCode::kInternal, "state database {} failed integrity check: {}", db_->path(),
                  row ? q.Text(0) : "no answer");
  }
  TERWAY_ASSIGN_OR_RETURN(auto fk, db_->Prepare("PRAGMA foreign_key_check"));
  TERWAY_ASSIGN_OR_RETURN(bool bad, fk.Step());
  if (bad) {
    return Errorf(ErrorCode::kInternal, "state database {}: dangling reference in table {}",
                  db_->path(), fk.Text(0));
  }
  return Ok();
}

}  // namespace terway::store
