// EdtProgram: the EDT pacing program (bpf/edt_eni_egress.c) loaded into the
// kernel, and its map of per-pod egress rates keyed by the pod's IPv4
// address. One per terwayd: the program is attached (a direct-action
// cls_bpf filter, see BandwidthShaper) to the egress hook of each ENI that
// carries a limited pod's traffic, and the fq qdisc at that ENI's root
// enforces the departure times it stamps.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bpf/include/edt_abi.h"
#include "common/ip.h"
#include "common/result.h"

struct terway_edt;  // the bpftool skeleton (edt_eni_egress.skel.h)

namespace terway::qos {

// How far ahead a packet may be scheduled before it is dropped instead:
// a TCP flow above its rate sees drops, as it would at a full TBF queue,
// rather than an ever longer queue (Cilium uses 2 s; shorter keeps latency
// down for pods that exceed their limit).
inline constexpr uint64_t kEdtHorizonNs = 500'000'000;

class EdtProgram {
 public:
  // Loads and verifies the program (needs CAP_BPF/CAP_SYS_ADMIN). The error
  // says why when the kernel refuses it.
  static Result<std::unique_ptr<EdtProgram>> Load();
  ~EdtProgram();
  EdtProgram(const EdtProgram&) = delete;
  EdtProgram& operator=(const EdtProgram&) = delete;

  int prog_fd() const;
  int map_fd() const;
  // The kernel's id of this program: a filter found attached runs ours only
  // if its id is this one (a restarted terwayd loads a new program).
  uint32_t prog_id() const;
  static constexpr const char* kName = "terway_edt_eni_egress";

  // The pod at `pod_ip` may send `bytes_per_sec`. Keeps the pacing state of
  // an existing entry (a rate change does not reset it).
  Status SetRate(Ipv4Addr pod_ip, uint64_t bytes_per_sec, uint64_t horizon_ns = kEdtHorizonNs);
  // Success when there was no entry.
  Status Clear(Ipv4Addr pod_ip);
  Result<std::optional<terway_edt_state>> Get(Ipv4Addr pod_ip) const;
  // Every address with an entry (for garbage collection).
  Result<std::vector<Ipv4Addr>> Addresses() const;

 private:
  EdtProgram() = default;
  terway_edt* skel_ = nullptr;
  uint32_t prog_id_ = 0;
};

}  // namespace terway::qos
