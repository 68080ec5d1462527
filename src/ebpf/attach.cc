#include "ebpf/attach.h"

#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstring>
#include <optional>
#include <vector>

#include <bpf/bpf.h>
#include <fmt/format.h>

namespace terway::ebpf {

namespace {

struct ProgFacts {
  std::string tag;  // the kernel's hash of the instructions (map references left out)
  std::vector<uint32_t> map_ids;
};

Result<ProgFacts> FactsOfFd(int fd) {
  std::vector<uint32_t> ids(8);
  bpf_prog_info info{};
  info.nr_map_ids = static_cast<uint32_t>(ids.size());
  info.map_ids = reinterpret_cast<uint64_t>(ids.data());
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return SysError("reading a BPF program's info");
  ids.resize(std::min<size_t>(info.nr_map_ids, ids.size()));
  std::sort(ids.begin(), ids.end());
  return ProgFacts{std::string(reinterpret_cast<const char*>(info.tag), sizeof(info.tag)), ids};
}

Result<ProgFacts> FactsOfId(uint32_t id) {
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return SysError(fmt::format("opening BPF program id {}", id));
  auto f = FactsOfFd(fd);
  close(fd);
  return f;
}

int ProgFd(Hook hook, const DatapathPrograms& p) {
  return hook == Hook::kPodVeth ? p.from_pod_fd() : p.from_eni_fd();
}
uint32_t ProgId(Hook hook, const DatapathPrograms& p) {
  return hook == Hook::kPodVeth ? p.from_pod_id() : p.from_eni_id();
}
const char* ProgName(Hook hook) {
  return hook == Hook::kPodVeth ? DatapathPrograms::kFromPodName : DatapathPrograms::kFromEniName;
}

}  // namespace

const char* HookName(Hook h) { return h == Hook::kPodVeth ? "pod veth ingress" : "ENI ingress"; }

Result<AttachStatus> Inspect(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs) {
  const std::string what = fmt::format("the eBPF datapath's {} filter on link {}", HookName(hook), ifindex);
  TERWAY_ASSIGN_OR_RETURN_CTX(auto filters, h.ListFilters(ifindex, netlink::kTcClsactIngress), "inspecting " + what);
  std::vector<netlink::FilterInfo> ours;
  for (auto& f : filters) {
    if (f.priority == kDatapathFilterPriority) ours.push_back(f);
  }
  if (ours.empty()) return AttachStatus{AttachState::kMissing, ""};
  if (ours.size() > 1) {
    return AttachStatus{AttachState::kStale, fmt::format("{} filters at priority {:#x}", ours.size(),
                                                         kDatapathFilterPriority)};
  }
  const auto& f = ours[0];
  if (f.kind != "bpf" || f.bpf_id == 0) {
    return AttachStatus{AttachState::kStale, fmt::format("a {} filter at priority {:#x}", f.kind,
                                                         kDatapathFilterPriority)};
  }
  if (f.bpf_id == ProgId(hook, programs)) return AttachStatus{AttachState::kCurrent, ""};
  // Another program: current if it is the same code using the same maps
  // (the program an earlier terwayd of this build attached).
  auto theirs = FactsOfId(f.bpf_id);
  if (!theirs.ok()) {
    return AttachStatus{AttachState::kStale, fmt::format("program id {} ({})", f.bpf_id, theirs.error().ToString())};
  }
  TERWAY_ASSIGN_OR_RETURN_CTX(ProgFacts mine, FactsOfFd(ProgFd(hook, programs)), "inspecting " + what);
  if (theirs->tag != mine.tag) {
    return AttachStatus{AttachState::kStale,
                        fmt::format("program id {} ({}) is other code than this build's", f.bpf_id, f.bpf_name)};
  }
  // Compared with this build's own copy of the same program, not with every
  // pinned map: each program references only the maps it uses (the ENI's
  // uses fewer than the pod's), and ours were loaded onto the same pins.
  if (theirs->map_ids != mine.map_ids) {
    return AttachStatus{AttachState::kStale,
                        fmt::format("program id {} uses other maps than those pinned in {}", f.bpf_id,
                                    programs.pin_dir())};
  }
  return AttachStatus{AttachState::kCurrent, ""};
}

namespace {

// After the hook's clsact is there; clsact_created: this call created it,
// so no filter can be on the hook yet and reading it is skipped.
Status AttachFilter(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs,
                    bool clsact_created, const std::string& what) {
  if (!clsact_created) {
    TERWAY_ASSIGN_OR_RETURN_CTX(AttachStatus st, Inspect(h, ifindex, hook, programs), what);
    if (st.state == AttachState::kCurrent) return Ok();
    if (st.state == AttachState::kStale) {
      TERWAY_TRY_CTX(h.DeleteFiltersIfExist(ifindex, netlink::kTcClsactIngress, kDatapathFilterPriority),
                     what + ": removing the stale filter (" + st.detail + ")");
    }
  }
  netlink::BpfFilter f;
  f.link_index = ifindex;
  f.parent = netlink::kTcClsactIngress;
  f.priority = kDatapathFilterPriority;
  f.prog_fd = ProgFd(hook, programs);
  f.name = ProgName(hook);
  TERWAY_TRY_CTX(h.AddBpfFilter(f), what);
  return Ok();
}

std::string AttachingWhat(int ifindex, Hook hook) {
  return fmt::format("attaching the eBPF datapath's {} program to link {}", HookName(hook), ifindex);
}

}  // namespace

Status Attach(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs) {
  const std::string what = AttachingWhat(ifindex, hook);
  TERWAY_ASSIGN_OR_RETURN_CTX(bool created, h.AddClsactIfMissing(ifindex), what);
  return AttachFilter(h, ifindex, hook, programs, created, what);
}

Status AttachRecord::Attach(netlink::Handle& h, int ifindex, Hook hook, const DatapathPrograms& programs) {
  const std::string what = AttachingWhat(ifindex, hook);
  auto created = h.AddClsactIfMissing(ifindex);
  if (created.ok() && !*created && Remembers(ifindex, hook, programs)) return Ok();
  Forget(ifindex);
  if (!created.ok()) return std::move(created).error().Wrap(what);
  TERWAY_TRY(AttachFilter(h, ifindex, hook, programs, *created, what));
  std::lock_guard l(mu_);
  attached_[ifindex] = ProgId(hook, programs);
  return Ok();
}

void AttachRecord::Forget(int ifindex) {
  std::lock_guard l(mu_);
  attached_.erase(ifindex);
}

void AttachRecord::ForgetAll() {
  std::lock_guard l(mu_);
  attached_.clear();
}

bool AttachRecord::Remembers(int ifindex, Hook hook, const DatapathPrograms& programs) {
  std::lock_guard l(mu_);
  auto it = attached_.find(ifindex);
  return it != attached_.end() && it->second == ProgId(hook, programs);
}

Status Detach(netlink::Handle& h, int ifindex) {
  Status s = h.DeleteFiltersIfExist(ifindex, netlink::kTcClsactIngress, kDatapathFilterPriority);
  if (!s.ok() && s.error().code == ErrorCode::kNotFound) return Ok();  // the link is gone, and its filters with it
  TERWAY_TRY_CTX(std::move(s), fmt::format("detaching the eBPF datapath from link {}", ifindex));
  return Ok();
}

Result<ForeignSweep> DetachForeign(netlink::Handle& h, const DatapathPrograms* current, const RemoveFilters& remove) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto links, h.ListLinks(), "listing links for an earlier run's eBPF filters");
  ForeignSweep sweep;
  for (const auto& link : links) {
    auto filters = h.ListFilters(link.index, netlink::kTcClsactIngress);
    if (!filters.ok()) {
      // No clsact (EINVAL, ENOENT) or the link went away: nothing of ours.
      // Anything else leaves the link unchecked.
      const Error& e = filters.error();
      if (e.code != ErrorCode::kNotFound && e.sys_errno != EINVAL && e.sys_errno != ENODEV) {
        sweep.left.push_back(fmt::format("{}: filters unreadable -- {}", link.name, e.ToString()));
      }
      continue;
    }
    for (const auto& f : *filters) {
      if (f.priority != kDatapathFilterPriority || f.kind != "bpf") continue;
      std::optional<Hook> hook;
      if (f.bpf_name == DatapathPrograms::kFromPodName) hook = Hook::kPodVeth;
      if (f.bpf_name == DatapathPrograms::kFromEniName) hook = Hook::kEni;
      if (!hook) continue;  // someone else's program at our priority: not ours to judge
      if (current != nullptr) {
        auto st = Inspect(h, link.index, *hook, *current);
        if (st.ok() && st->state == AttachState::kCurrent) continue;
      }
      const std::string what = fmt::format("{}: {} (id {})", link.name, f.bpf_name, f.bpf_id);
      Status s = remove ? remove(h, link.index)
                        : h.DeleteFiltersIfExist(link.index, netlink::kTcClsactIngress, kDatapathFilterPriority);
      if (!s.ok()) {
        sweep.left.push_back(what + " -- " + s.error().ToString());
      } else {
        sweep.removed.push_back(what);
      }
      break;  // the priority is gone from this link (or could not be removed)
    }
  }
  return sweep;
}

}  // namespace terway::ebpf
