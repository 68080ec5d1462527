#include "ebpf/programs.h"

#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/magic.h>

#include "dp_eni_ingress.skel.h"       // generated at build time from bpf/dp_eni_ingress.c
#include "dp_pod_veth_ingress.skel.h"  // ... and bpf/dp_pod_veth_ingress.c

namespace terway::ebpf {

namespace {

bool IsBpffs(const std::string& path) {
  struct statfs st {};
  return statfs(path.c_str(), &st) == 0 && static_cast<unsigned long>(st.f_type) == BPF_FS_MAGIC;
}

// The pinned map at `path` matches `map`'s definition in this build: libbpf
// would reuse it. It refuses a mismatch at load with a bare EINVAL, so we
// look first and can say which pin and why.
Result<bool> PinMatches(const std::string& path, const bpf_map* map) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return SysError("opening pinned object " + path);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  int rc = bpf_obj_get_info_by_fd(fd, &info, &len);
  int err = errno;
  close(fd);
  if (rc != 0) return SysError("reading pinned object " + path + " (is it a map?)", err);
  return info.type == static_cast<uint32_t>(bpf_map__type(map)) && info.key_size == bpf_map__key_size(map) &&
         info.value_size == bpf_map__value_size(map) && info.max_entries == bpf_map__max_entries(map) &&
         info.map_flags == bpf_map__map_flags(map);
}

// Unpins every pinned map of `obj` whose layout differs from this build's;
// the load then creates it afresh. Appends the paths to *replaced.
Status ReplaceIncompatiblePins(bpf_object* obj, std::vector<std::string>* replaced) {
  bpf_map* map = nullptr;
  bpf_object__for_each_map(map, obj) {
    const char* p = bpf_map__pin_path(map);
    if (p == nullptr) continue;
    std::string path = p;
    if (access(path.c_str(), F_OK) != 0) continue;
    TERWAY_ASSIGN_OR_RETURN(bool same, PinMatches(path, map));
    if (same) continue;
    if (unlink(path.c_str()) != 0) {
      return SysError("removing pinned map " + path + " whose layout differs from this build's");
    }
    replaced->push_back(path);
  }
  return Ok();
}

template <typename Skel>
Status OpenSkeleton(Skel** out, Skel* (*open)(const bpf_object_open_opts*), int (*load)(Skel*),
                    const std::string& pin_dir, const char* what, std::vector<std::string>* replaced) {
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir.c_str());
  Skel* s = open(&opts);
  if (s == nullptr) return SysError(fmt::format("opening the BPF object of {}", what));
  *out = s;  // the caller destroys it, also on failure below
  TERWAY_TRY_CTX(ReplaceIncompatiblePins(s->obj, replaced), fmt::format("checking the pinned maps of {}", what));
  if (load(s) != 0) {
    int err = errno;
    return Errorf(ErrorCode::kUnsupported,
                  "loading {} failed: {} (needs CAP_BPF and a kernel with tc sched_cls programs, "
                  "bpf_redirect_peer, bpf_redirect_neigh and the conntrack kfunc bpf_skb_ct_lookup: Linux 6.0 or later "
                  "(DetectSupport says which is missing); the verifier's log is on stderr)",
                  what, std::strerror(err));
  }
  return Ok();
}

uint32_t ProgId(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.id;
}

uint32_t MapId(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return 0;
  return info.id;
}

}  // namespace

Status EnsurePinDir(const LoaderOptions& o) {
  if (!IsBpffs(o.bpffs)) {
    if (!o.mount_bpffs) {
      return Errorf(ErrorCode::kUnsupported,
                    "{} is not a bpf filesystem: mount one (mount -t bpf bpf {}) so the eBPF datapath's maps "
                    "survive a terwayd restart",
                    o.bpffs, o.bpffs);
    }
    std::error_code ec;
    std::filesystem::create_directories(o.bpffs, ec);
    if (ec) return Errorf(ErrorCode::kKernel, "creating bpffs mount point {}: {}", o.bpffs, ec.message());
    if (mount("bpf", o.bpffs.c_str(), "bpf", 0, "mode=0700") != 0) {
      return SysError(fmt::format("mounting a bpf filesystem at {} (does the kernel have CONFIG_BPF_SYSCALL, and "
                                  "are we root in the host's mount namespace?)",
                                  o.bpffs));
    }
  }
  if (mkdir(o.PinDir().c_str(), 0700) != 0 && errno != EEXIST) {
    return SysError("creating the eBPF datapath's pin directory " + o.PinDir());
  }
  return Ok();
}

Result<std::unique_ptr<DatapathPrograms>> DatapathPrograms::Load(const LoaderOptions& options) {
  TERWAY_TRY_CTX(EnsurePinDir(options), "preparing the eBPF datapath's bpffs directory");
  std::unique_ptr<DatapathPrograms> p(new DatapathPrograms());
  p->pin_dir_ = options.PinDir();
  // The pod program first: it creates (or reuses) the pins; the ENI
  // program then reuses the same maps.
  TERWAY_TRY(OpenSkeleton(&p->pod_, terway_dp_from_pod__open_opts, terway_dp_from_pod__load, p->pin_dir_,
                          "the pod veth program (bpf/dp_pod_veth_ingress.c)", &p->replaced_pins_));
  TERWAY_TRY(OpenSkeleton(&p->eni_, terway_dp_from_eni__open_opts, terway_dp_from_eni__load, p->pin_dir_,
                          "the ENI program (bpf/dp_eni_ingress.c)", &p->replaced_pins_));
  p->from_pod_id_ = ProgId(p->from_pod_fd());
  p->from_eni_id_ = ProgId(p->from_eni_fd());
  p->map_ids_ = {MapId(p->ep_fd()), MapId(p->stack_fd()), MapId(p->policy_fd()), MapId(p->policy_state_fd()),
                 MapId(p->cnt_fd())};
  std::sort(p->map_ids_.begin(), p->map_ids_.end());
  if (p->from_pod_id_ == 0 || p->from_eni_id_ == 0 || p->map_ids_.front() == 0) {
    return SysError("reading the ids of the loaded eBPF datapath programs and maps");
  }
  // Both objects must share the maps: a second object with maps of its own
  // would forward with entries nobody writes.
  if (MapId(bpf_map__fd(p->eni_->maps.terway_dp_ep)) != MapId(p->ep_fd())) {
    return Errorf(ErrorCode::kInternal, "the ENI program did not reuse the endpoint map pinned in {}", p->pin_dir_);
  }
  return p;
}

DatapathPrograms::~DatapathPrograms() {
  if (eni_ != nullptr) terway_dp_from_eni__destroy(eni_);
  if (pod_ != nullptr) terway_dp_from_pod__destroy(pod_);
}

int DatapathPrograms::from_pod_fd() const { return bpf_program__fd(pod_->progs.terway_from_pod); }
int DatapathPrograms::from_eni_fd() const { return bpf_program__fd(eni_->progs.terway_from_eni); }
int DatapathPrograms::ep_fd() const { return bpf_map__fd(pod_->maps.terway_dp_ep); }
int DatapathPrograms::stack_fd() const { return bpf_map__fd(pod_->maps.terway_dp_stack); }
int DatapathPrograms::cnt_fd() const { return bpf_map__fd(pod_->maps.terway_dp_cnt); }
int DatapathPrograms::policy_fd() const { return bpf_map__fd(pod_->maps.terway_dp_policy); }
int DatapathPrograms::policy_state_fd() const { return bpf_map__fd(pod_->maps.terway_dp_policy_state); }

Status DatapathPrograms::UpsertEndpoint(const Endpoint& ep) {
  TERWAY_TRY(Validate(ep));
  uint32_t key = EndpointKey(ep.ip);
  terway_dp_endpoint v = ToAbi(ep);
  if (bpf_map_update_elem(ep_fd(), &key, &v, BPF_ANY) != 0) {
    Error e = SysError("writing eBPF endpoint " + ep.ip.ToString());
    if (e.sys_errno == E2BIG) e.message += fmt::format(" (the map is full: {} pods)", TERWAY_DP_MAX_ENDPOINTS);
    return e;
  }
  return Ok();
}

Status DatapathPrograms::DeleteEndpoint(Ipv4Addr ip) {
  uint32_t key = EndpointKey(ip);
  if (bpf_map_delete_elem(ep_fd(), &key) != 0 && errno != ENOENT) {
    return SysError("deleting eBPF endpoint " + ip.ToString());
  }
  return Ok();
}

Result<std::optional<Endpoint>> DatapathPrograms::GetEndpoint(Ipv4Addr ip) const {
  uint32_t key = EndpointKey(ip);
  terway_dp_endpoint v{};
  if (bpf_map_lookup_elem(ep_fd(), &key, &v) != 0) {
    if (errno == ENOENT) return std::optional<Endpoint>();
    return SysError("reading eBPF endpoint " + ip.ToString());
  }
  return std::optional<Endpoint>(FromAbi(key, v));
}

Result<std::vector<Endpoint>> DatapathPrograms::ListEndpoints() const {
  std::vector<Endpoint> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(ep_fd(), prev, &next) == 0) {
    terway_dp_endpoint v{};
    // An entry deleted between the two calls is simply not listed.
    if (bpf_map_lookup_elem(ep_fd(), &next, &v) == 0) out.push_back(FromAbi(next, v));
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the eBPF endpoint map in " + pin_dir_);
  return out;
}

Status DatapathPrograms::SyncStackPrefixes(const std::vector<StackPrefix>& prefixes) {
  std::map<std::pair<uint32_t, uint32_t>, std::pair<terway_dp_stack_key, uint32_t>> want;
  auto add = [&](const StackPrefix& sp) {
    terway_dp_stack_key k = ToAbi(sp.prefix);
    want[{k.prefixlen, k.addr}] = {k, static_cast<uint32_t>(sp.kind)};
  };
  for (const auto& sp : BuiltinStackPrefixes()) add(sp);
  for (const auto& sp : prefixes) add(sp);
  if (want.size() > TERWAY_DP_MAX_STACK_PREFIXES) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "{} host-stack prefixes for the eBPF datapath, at most {} fit: merge host_stack_cidrs", want.size(),
                  TERWAY_DP_MAX_STACK_PREFIXES);
  }
  // Add before deleting: a prefix that only changes kind is never missing.
  for (auto& [_, kv] : want) {
    if (bpf_map_update_elem(stack_fd(), &kv.first, &kv.second, BPF_ANY) != 0) {
      return SysError(fmt::format("adding host-stack prefix {}/{} to the eBPF datapath",
                                  Ipv4Addr(ntohl(kv.first.addr)).ToString(), kv.first.prefixlen));
    }
  }
  std::vector<terway_dp_stack_key> stale;
  terway_dp_stack_key key{}, next{};
  terway_dp_stack_key* prev = nullptr;
  while (bpf_map_get_next_key(stack_fd(), prev, &next) == 0) {
    if (!want.count({next.prefixlen, next.addr})) stale.push_back(next);
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the eBPF datapath's host-stack prefixes");
  for (auto& k : stale) {
    if (bpf_map_delete_elem(stack_fd(), &k) != 0 && errno != ENOENT) {
      return SysError(fmt::format("removing host-stack prefix {}/{} from the eBPF datapath",
                                  Ipv4Addr(ntohl(k.addr)).ToString(), k.prefixlen));
    }
  }
  return Ok();
}

Status DatapathPrograms::AddStackPrefix(const StackPrefix& sp) {
  terway_dp_stack_key k = ToAbi(sp.prefix);
  uint32_t kind = static_cast<uint32_t>(sp.kind);
  if (bpf_map_update_elem(stack_fd(), &k, &kind, BPF_ANY) != 0) {
    Error e = SysError("adding host-stack prefix " + sp.prefix.ToString() + " to the eBPF datapath");
    if (e.sys_errno == ENOSPC || e.sys_errno == E2BIG) {
      e.message += fmt::format(" (at most {} fit: merge host_stack_cidrs)", TERWAY_DP_MAX_STACK_PREFIXES);
    }
    return e;
  }
  return Ok();
}

Status DatapathPrograms::AddPolicyPod(Ipv4Addr ip) {
  uint32_t key = EndpointKey(ip);
  uint8_t one = 1;
  if (bpf_map_update_elem(policy_fd(), &key, &one, BPF_ANY) != 0) {
    Error e = SysError("marking " + ip.ToString() + " isolated by policy in the eBPF datapath");
    if (e.sys_errno == E2BIG) e.message += fmt::format(" (the map is full: {} pods)", TERWAY_DP_MAX_POLICY_PODS);
    return e;
  }
  return Ok();
}

Status DatapathPrograms::DeletePolicyPod(Ipv4Addr ip) {
  uint32_t key = EndpointKey(ip);
  if (bpf_map_delete_elem(policy_fd(), &key) != 0 && errno != ENOENT) {
    return SysError("unmarking " + ip.ToString() + " isolated by policy in the eBPF datapath");
  }
  return Ok();
}

Result<bool> DatapathPrograms::HasPolicyPod(Ipv4Addr ip) const {
  uint32_t key = EndpointKey(ip);
  uint8_t v = 0;
  if (bpf_map_lookup_elem(policy_fd(), &key, &v) != 0) {
    if (errno == ENOENT) return false;
    return SysError("reading whether " + ip.ToString() + " is isolated by policy in the eBPF datapath");
  }
  return true;
}

Result<std::set<Ipv4Addr>> DatapathPrograms::ListPolicyPods() const {
  std::set<Ipv4Addr> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(policy_fd(), prev, &next) == 0) {
    out.insert(Ipv4Addr(ntohl(next)));
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the eBPF datapath's policy map in " + pin_dir_);
  return out;
}

Status DatapathPrograms::SetPolicySynced(bool synced) {
  uint32_t key = 0;
  uint32_t v = synced ? TERWAY_DP_POLICY_SYNCED : TERWAY_DP_POLICY_NOT_SYNCED;
  if (bpf_map_update_elem(policy_state_fd(), &key, &v, BPF_ANY) != 0) {
    return SysError(fmt::format("setting the eBPF datapath's policy state to {}", synced ? "synced" : "not synced"));
  }
  return Ok();
}

Result<bool> DatapathPrograms::PolicySynced() const {
  uint32_t key = 0, v = 0;
  if (bpf_map_lookup_elem(policy_state_fd(), &key, &v) != 0) {
    return SysError("reading the eBPF datapath's policy state");
  }
  return v == TERWAY_DP_POLICY_SYNCED;
}

Result<std::vector<StackPrefix>> DatapathPrograms::ListStackPrefixes() const {
  std::vector<StackPrefix> out;
  terway_dp_stack_key key{}, next{};
  terway_dp_stack_key* prev = nullptr;
  while (bpf_map_get_next_key(stack_fd(), prev, &next) == 0) {
    uint32_t kind = 0;
    if (bpf_map_lookup_elem(stack_fd(), &next, &kind) == 0) {
      TERWAY_ASSIGN_OR_RETURN(StackPrefix sp, FromAbi(next, kind));
      out.push_back(sp);
    }
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the eBPF datapath's host-stack prefixes");
  std::sort(out.begin(), out.end());
  return out;
}

Result<Counters> DatapathPrograms::ReadCounters() const {
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return SysError("counting possible CPUs for the eBPF datapath counters", -cpus);
  std::vector<std::vector<uint64_t>> per_cpu(TERWAY_DP_CNT_MAX, std::vector<uint64_t>(static_cast<size_t>(cpus)));
  for (uint32_t i = 0; i < TERWAY_DP_CNT_MAX; ++i) {
    if (bpf_map_lookup_elem(cnt_fd(), &i, per_cpu[i].data()) != 0) {
      return SysError(fmt::format("reading eBPF datapath counter {}", i));
    }
  }
  return SumCounters(per_cpu);
}

Status DatapathPrograms::RemovePins(const LoaderOptions& options) {
  const std::string dir = options.PinDir();
  for (const char* name :
       {"terway_dp_ep", "terway_dp_stack", "terway_dp_policy", "terway_dp_policy_state", "terway_dp_cnt"}) {
    std::string path = dir + "/" + name;
    if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("removing pinned map " + path);
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT && errno != ENOTEMPTY) {
    return SysError("removing the eBPF datapath's pin directory " + dir);
  }
  return Ok();
}

}  // namespace terway::ebpf
