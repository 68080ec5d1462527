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
#include <map>
#include <mutex>
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
// Makes the link run our program at its ingress: adds clsact when missing
// (then adds the filter without reading the hook: a new clsact has none),
// keeps a current filter, replaces a stale one.
Status Attach(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs);

// Attach for a link many ADDs attach to (an ENI): remembers the links this
// process attached the current program to, and then skips reading the
// filters, which costs a netlink dump on every ADD of the ENI's pods.
// Trusted only while the link's clsact stays: AddClsactIfMissing is still
// asked each time, and a link that lost its clsact (moved out of the
// namespace and back, recreated, clsact deleted) lost our filter with it,
// so it is attached afresh. A filter deleted alone (tc filter del) is not
// noticed here: Check inspects the kernel, calls Forget, and repair's
// Ensure attaches again. One record per namespace (ifindexes are).
// Thread-safe: the mutex guards the map, never a kernel call.
class AttachRecord {
 public:
  Status Attach(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs);
  // The next Attach of ifindex reads the kernel (Check found it not current).
  void Forget(int ifindex);
  // Every next Attach reads the kernel (filters may have been swept).
  void ForgetAll();
  // Whether Attach would trust the link's filter (tests).
  bool Remembers(int ifindex, Hook hook, const DatapathPrograms& programs);

 private:
  std::mutex mu_;
  std::map<int, uint32_t> attached_;  // ifindex -> id of the program this process attached
};
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
