// EdtProgram: the EDT pacing program (bpf/edt_egress.c) loaded into the
// kernel, and its map of per-pod egress rates. One per terwayd: the program
// is attached (as a cls_bpf filter, see BandwidthShaper) to the ingress hook
// of every limited pod's host veth, and the map, keyed by that veth's
// ifindex, says how fast each pod may send. The fq qdisc of the device the
// packets leave through enforces the departure times the program stamps.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "bpf/include/edt_abi.h"
#include "common/result.h"

struct terway_edt;  // the bpftool skeleton (edt_egress.skel.h)

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
  static constexpr const char* kName = "terway_edt_egress";

  // The pod behind host veth `ifindex` may send `bytes_per_sec`. Keeps the
  // pacing state of an existing entry (a rate change does not reset it).
  Status SetRate(int ifindex, uint64_t bytes_per_sec, uint64_t horizon_ns = kEdtHorizonNs);
  // Success when there was no entry.
  Status Clear(int ifindex);
  Result<std::optional<terway_edt_state>> Get(int ifindex) const;
  // Every ifindex with an entry (for garbage collection).
  Result<std::vector<int>> Links() const;

 private:
  EdtProgram() = default;
  terway_edt* skel_ = nullptr;
};

}  // namespace terway::qos
