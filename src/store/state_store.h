// terwayd's durable state: which pod holds which IP, the ENIs and IPs the
// node owns, and IP reservations for sticky pods.
//
// Invariants the schema itself enforces (so no code path can break them):
//   - one IP belongs to at most one allocation      (allocations.ip UNIQUE)
//   - one IP is reserved for at most one pod        (reservations.ip UNIQUE)
//   - a container id has at most one allocation     (PRIMARY KEY)
//   - one IPv6 belongs to at most one allocation and is paired with at most
//     one IPv4 (partial UNIQUE indexes on the non-empty ipv6 columns)
// Every mutating call is one transaction. The store is safe to call from many
// threads (calls are serialized); it is the caller's job to keep its in-memory
// view in step (see ipam::IpPool).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "store/sqlite.h"

namespace terway::store {

// 1: allocations, ENIs, IPs, reservations. 2: allocations carry the pod's
// netns and datapath mode (restart repair). 3: and its bandwidth limit.
// 4: and the CIDRs its network routes through the host stack. 5: and its
// origin and, for adopted pods, their host veth. 6: dual stack: an IP row
// and an allocation carry the IPv6 address paired with the IPv4 (one slot =
// one IPv4 + one IPv6 of the same ENI; '' in IPv4-only rows).
inline constexpr int kSchemaVersion = 6;

// AllocationRecord::origin values.
inline constexpr const char* kOriginApi = "api";          // an ADD of a pod the Kubernetes API had
inline constexpr const char* kOriginRuntime = "runtime";  // an ADD of a sandbox the API did not have
inline constexpr const char* kOriginRebuilt = "rebuilt";  // found at start without a record

struct PodKey {
  std::string namespace_;
  std::string name;
  bool operator==(const PodKey&) const = default;
};

struct AllocationRecord {
  std::string container_id;   // the CNI's CNI_CONTAINERID: the idempotency key
  std::string pod_namespace;
  std::string pod_name;
  std::string pod_uid;
  std::string ip;
  std::string eni_id;
  std::string ifname;         // CNI_IFNAME, "eth0"
  int64_t created_unix = 0;
  std::string state = "allocated";
  bool sticky = false;        // StatefulSet / pod-ip-reservation: reserve the IP on release
  // CNI_NETNS of the ADD ("" in rows written before schema 2, or by callers
  // that wire nothing): where a restarted daemon verifies the pod.
  std::string netns;
  // Which datapath wired the pod ("shared", "exclusive"; "" if none/unknown).
  std::string datapath_mode;
  // The limit the datapath applies (JSON, see daemon's EncodeBandwidth); ""
  // when the pod is unlimited (or the row predates schema 3).
  std::string bandwidth;
  // The network's host_stack_cidrs at ADD, comma-separated ("" when none or
  // the row predates schema 4): exclusive-ENI pods route them via their veth.
  std::string host_stack_cidrs;
  // kOriginApi / kOriginRuntime / kOriginRebuilt; "" in rows older than
  // schema 5 (and from callers that do not know).
  std::string origin;
  // The pod's host-side veth when it is not the one derived from the
  // container id (a pod wired by upstream Terway and adopted at start).
  std::string host_veth;
  // Dual stack: the IPv6 of the pod, paired with `ip` on the same ENI ("" on
  // an IPv4-only node and in rows older than schema 6).
  std::string ipv6 = "";
  bool operator==(const AllocationRecord&) const = default;
};

struct EniRecord {
  std::string eni_id;
  std::string mac;
  std::string vswitch_id;
  std::string primary_ip;
  bool is_primary = false;   // the instance's primary ENI: never deleted
  int64_t created_unix = 0;
  bool operator==(const EniRecord&) const = default;
};

// An IP the node owns (a private IP of one of its ENIs) with idle bookkeeping.
struct IpRecord {
  std::string ip;
  std::string eni_id;
  int64_t idle_since_unix = 0;  // 0 while in use
  // Dual stack: the IPv6 of the same ENI paired with this IPv4 (the slot a
  // pod gets is the pair); "" when unpaired or on an IPv4-only node.
  std::string ipv6 = "";
  bool operator==(const IpRecord&) const = default;
};

struct ReservationRecord {
  std::string pod_namespace;
  std::string pod_name;
  std::string ip;
  std::string eni_id;
  int64_t expires_unix = 0;
  bool operator==(const ReservationRecord&) const = default;
};

class StateStore {
 public:
  // Opens or creates the database at path and migrates it to kSchemaVersion.
  // A database written by a newer terwayd (higher version) is refused.
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path);

  int SchemaVersion();

  // --- allocations ---
  // Records an allocation. Idempotent: if container_id already holds an
  // allocation, that record is returned unchanged (same IP). kConflict if the
  // IP belongs to another allocation. If consume_reservation is set, the
  // pod's reservation is deleted in the same transaction. The IP row (if any)
  // is marked in use.
  Result<AllocationRecord> Allocate(const AllocationRecord& rec, bool consume_reservation = false);
  // Removes the allocation of container_id and returns it (nullopt if none:
  // release is idempotent). If reservation is given, it is written in the same
  // transaction so a crash never loses a sticky IP. The IP row becomes idle at
  // idle_since_unix.
  Result<std::optional<AllocationRecord>> Release(const std::string& container_id,
                                                  int64_t idle_since_unix,
                                                  const std::optional<ReservationRecord>& reservation);
  Result<std::optional<AllocationRecord>> FindByContainer(const std::string& container_id);
  Result<std::vector<AllocationRecord>> FindByPod(const PodKey& pod);
  // Records the limit now applied to the container's pod; kNotFound when the
  // allocation is gone.
  Status SetBandwidth(const std::string& container_id, const std::string& bandwidth);
  Result<std::vector<AllocationRecord>> ListAllocations();

  // --- ENIs and their IPs ---
  Status UpsertEni(const EniRecord& eni);
  // Deletes the ENI and its IP rows. Refuses (kConflict) while an allocation
  // still uses one of its IPs.
  Status DeleteEni(const std::string& eni_id);
  Result<std::vector<EniRecord>> ListEnis();
  // Adds IPs (idle since the given time); existing rows are left unchanged.
  Status AddIps(const std::vector<IpRecord>& ips);
  // Pairs the IPv4 `ip` with `ipv6` ("" unpairs it). Refuses (kConflict)
  // while an allocation holds the IPv4 (a pod's pair never changes under
  // it) or when another IPv4 is paired with that IPv6; kNotFound when the
  // IPv4 has no row.
  Status SetIpv6(const std::string& ip, const std::string& ipv6);
  // Removes IP rows; refuses (kConflict) if one is allocated.
  Status RemoveIps(const std::vector<std::string>& ips);
  Result<std::vector<IpRecord>> ListIps();

  // --- reservations (sticky IPs) ---
  Status PutReservation(const ReservationRecord& r);
  Result<std::optional<ReservationRecord>> FindReservation(const PodKey& pod);
  Status DeleteReservation(const PodKey& pod);
  Result<std::vector<ReservationRecord>> ListReservations();
  // Deletes reservations that expired at or before now; returns them.
  Result<std::vector<ReservationRecord>> ExpireReservations(int64_t now_unix);

  // PRAGMA integrity_check == "ok" (tests and `terway-cli` diagnostics).
  Status CheckIntegrity();

 private:
  explicit StateStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}
  Status Migrate();
  Result<std::optional<AllocationRecord>> FindByContainerLocked(const std::string& container_id);

  std::mutex mu_;
  std::unique_ptr<Database> db_;
};

}  // namespace terway::store
