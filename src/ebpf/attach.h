// Attaching the eBPF datapath's programs to links: direct-action cls_bpf
// filters on the clsact ingress hook (through src/netlink's tc calls).
//
// Restart: a filter keeps its program alive after terwayd dies. A new
// terwayd loads programs of its own, but an attached program that is the
// same code (the kernel's tag) using the same maps is as good as ours, so
// Inspect() calls it current and Attach() leaves it alone: restart repair
// does not cut a pod's traffic. Anything else at our priority is stale and
// Attach() replaces it. Between deleting the old filter and adding the new
// one, packets meet no program and take the host stack (which still routes
// pods, as in veth mode): slower, not lost.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "ebpf/programs.h"
#include "netlink/handle.h"

namespace terway::ebpf {

// Our filter's priority on the ingress hook: before qos's redirect to an
// IFB (0xC000, pod egress shaping) and after filters people attach at the
// usual low priorities.
inline constexpr uint16_t kDatapathFilterPriority = 0xA000;

enum class Hook {
  kPodVeth,  // ingress of a pod's host veth: terway_from_pod
  kEni,      // ingress of an ENI: terway_from_eni
};
const char* HookName(Hook h);

enum class AttachState {
  kMissing,  // no filter at our priority
  kCurrent,  // our program, or an identical one with the same maps
  kStale,    // something else at our priority (another build, other maps, more than one filter)
};

struct AttachStatus {
  AttachState state = AttachState::kMissing;
  std::string detail;  // for kStale: what is there instead
};

// The link's ingress hook as seen through `h` (the namespace of the link).
Result<AttachStatus> Inspect(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs);
// Makes the link run our program at its ingress: adds clsact when missing,
// keeps a current filter, replaces a stale one.
Status Attach(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs);
// Removes our filter (success when none, or no link): the clsact qdisc stays
// (qos's filters may share it) and so does every other filter.
Status Detach(netlink::Handle& h, int ifindex);

// At start, before policy: removes every filter of ours (our priority, a
// program named terway_from_pod / terway_from_eni) on the links of `h`'s
// namespace that does not run `current`'s code on its maps -- all of them
// when `current` is null (this run has no eBPF datapath, or loaded none
// because no pins were left). Such a filter is an earlier terwayd's, reading
// maps this run never writes: its policy map would stay frozen, so
// a policy applied now would not police them. Their links' packets then take
// the host stack, which still routes every pod; restart repair re-attaches
// this run's programs to the pods that have entries.
//
// A link whose filter cannot be removed (or whose filters cannot be read)
// does not stop the sweep: it is listed in `left` with the cause, and the
// caller sweeps again later. Only a failure to list the links is an error
// (then nothing was checked).
struct ForeignSweep {
  std::vector<std::string> removed;  // "<link>: <program> (id N)"
  std::vector<std::string> left;     // "<link>: <what> -- <cause>": possibly still attached
};
// remove: deletes our priority's filters on a link (tests inject failures);
// unset: the handle's DeleteFiltersIfExist.
using RemoveFilters = std::function<Status(netlink::Handle& h, int ifindex)>;
Result<ForeignSweep> DetachForeign(netlink::Handle& h, const DatapathPrograms* current,
                                   const RemoveFilters& remove = {});

}  // namespace terway::ebpf
