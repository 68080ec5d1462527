// DatapathPrograms: the eBPF datapath's two tc programs (bpf/dp_*.c) loaded
// into the kernel, and their maps pinned in a bpffs directory.
//
// Restart: the maps are pinned (by name, under <bpffs>/<pin_subdir>/), and a
// loaded program is kept alive by the tc filters it is attached with. When
// terwayd dies, the attached programs keep forwarding with the pinned maps;
// a new DatapathPrograms::Load() reuses those very maps, so the entries the
// old terwayd wrote are there and what the new one writes reaches the old
// programs too. attach.h tells an old identical program from a stale one.
//
// Thread-safety: map operations are single syscalls and may run from any
// thread; the kernel serialises them per map.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "ebpf/endpoint.h"
#include "ebpf/policy_map.h"

struct terway_dp_from_pod;  // bpftool skeletons (dp_pod_veth_ingress.skel.h, dp_eni_ingress.skel.h)
struct terway_dp_from_eni;

namespace terway::ebpf {

struct LoaderOptions {
  std::string bpffs = "/sys/fs/bpf";  // a bpf filesystem
  std::string pin_subdir = "terway";  // the maps are pinned in <bpffs>/<pin_subdir>
  // Mount a bpf filesystem at `bpffs` when none is there (a node whose
  // /sys/fs/bpf nobody mounted). Off: such a node is an error.
  bool mount_bpffs = true;
  std::string PinDir() const { return bpffs + "/" + pin_subdir; }
};

class DatapathPrograms : public PolicyMap {
 public:
  // Loads and verifies both programs, reusing the pinned maps of an earlier
  // load when their layout matches this build's and replacing them (see
  // replaced_pins()) when it does not. Needs CAP_BPF/CAP_SYS_ADMIN; the
  // error says which step the kernel refused and why.
  static Result<std::unique_ptr<DatapathPrograms>> Load(const LoaderOptions& options = {});
  ~DatapathPrograms() override;
  DatapathPrograms(const DatapathPrograms&) = delete;
  DatapathPrograms& operator=(const DatapathPrograms&) = delete;

  // The program for the ingress hook of a pod's host veth (the pod's
  // packets), and for the ingress hook of an ENI.
  int from_pod_fd() const;
  int from_eni_fd() const;
  uint32_t from_pod_id() const { return from_pod_id_; }
  uint32_t from_eni_id() const { return from_eni_id_; }
  static constexpr const char* kFromPodName = "terway_from_pod";
  static constexpr const char* kFromEniName = "terway_from_eni";
  // The kernel's ids of the shared maps (endpoints, stack prefixes, policy,
  // policy state, counters), sorted: an attached program uses our maps iff it has these.
  const std::vector<uint32_t>& map_ids() const { return map_ids_; }

  const std::string& pin_dir() const { return pin_dir_; }
  // Pins whose maps had another layout (an upgrade changed the ABI) and
  // were replaced by fresh, empty maps. The caller says so and refills them
  // (restart repair re-upserts every endpoint); programs still attached
  // with the old maps are stale (attach.h) until re-attached.
  const std::vector<std::string>& replaced_pins() const { return replaced_pins_; }

  // ---- endpoints ----
  Status UpsertEndpoint(const Endpoint& ep);  // validated first: bad input changes nothing
  Status DeleteEndpoint(Ipv4Addr ip);          // success when there is none
  Result<std::optional<Endpoint>> GetEndpoint(Ipv4Addr ip) const;
  Result<std::vector<Endpoint>> ListEndpoints() const;  // for GC and CHECK

  // ---- destinations of the host stack ----
  // Makes the map hold exactly `prefixes` plus BuiltinStackPrefixes().
  Status SyncStackPrefixes(const std::vector<StackPrefix>& prefixes);
  // Adds (or re-kinds) one prefix; idempotent, deletes nothing.
  Status AddStackPrefix(const StackPrefix& prefix);
  Result<std::vector<StackPrefix>> ListStackPrefixes() const;

  // ---- policy isolation (terway_dp_policy, terway_dp_policy_state) ----
  // Pods a policy chain may isolate; single-entry, idempotent writes.
  Status AddPolicyPod(Ipv4Addr ip) override;
  Status DeletePolicyPod(Ipv4Addr ip) override;  // success when there is none
  Result<bool> HasPolicyPod(Ipv4Addr ip) const override;
  Result<std::set<Ipv4Addr>> ListPolicyPods() const override;
  // Whether the policy map is authoritative (false: every pod is policed).
  Status SetPolicySynced(bool synced) override;
  Result<bool> PolicySynced() const override;

  Result<Counters> ReadCounters() const;

  // Node cleanup: removes the pins (and the directory when empty). Maps
  // still used by attached programs live on until those are detached.
  static Status RemovePins(const LoaderOptions& options = {});

 private:
  DatapathPrograms() = default;
  int ep_fd() const;
  int stack_fd() const;
  int cnt_fd() const;
  int policy_fd() const;
  int policy_state_fd() const;

  terway_dp_from_pod* pod_ = nullptr;
  terway_dp_from_eni* eni_ = nullptr;
  uint32_t from_pod_id_ = 0;
  uint32_t from_eni_id_ = 0;
  std::vector<uint32_t> map_ids_;
  std::string pin_dir_;
  std::vector<std::string> replaced_pins_;
};

// Makes sure `dir`'s filesystem is bpffs: mounts one at `bpffs` when
// allowed, else says how to. Then creates <bpffs>/<pin_subdir>.
Status EnsurePinDir(const LoaderOptions& options);

}  // namespace terway::ebpf
