#include "metadata/metadata_guard.h"

#include <cctype>

#include "common/log.h"
#include "netlink/handle.h"
#include "policy/nft_batch.h"

namespace terway::metadata {
namespace {

// RT_SCOPE_HOST: the address is only ever a destination on this node; the
// kernel never picks it as the source of a packet that leaves.
constexpr int kScopeHost = 254;
// Re-applies while other threads keep changing the same member; beyond
// this the table is marked for a whole re-apply by the next call.
constexpr int kMaxApplyRounds = 8;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

bool ExemptByAnnotations(const std::map<std::string, std::string>& annotations, std::string* warning) {
  auto it = annotations.find(kAllowNodeRamRoleAnnotation);
  if (it == annotations.end()) return false;
  std::string v = Lower(it->second);
  if (v == "true") return true;
  if (v != "false" && warning != nullptr) {
    *warning = fmt::format("annotation {}: \"{}\" is neither \"true\" nor \"false\"; the pod stays unable to "
                           "read the node's RAM role credentials",
                           kAllowNodeRamRoleAnnotation, it->second);
  }
  return false;
}

MetadataGuard::MetadataGuard(MetadataGuardOptions options) : options_(std::move(options)) {}

MetadataGuard::~MetadataGuard() { Stop(); }

GuardTableSpec MetadataGuard::TableSpec() const {
  GuardTableSpec s;
  s.metadata_ip = options_.metadata_ip;
  s.metadata_port = options_.metadata_port;
  s.proxy_ip = options_.proxy_ip;
  s.proxy_port = options_.proxy_port;
  s.guarded_prefixes = options_.guarded_prefixes;
  return s;
}

Status MetadataGuard::Start() {
  if (!options_.deny_credentials) {
    // A node switched from deny to allow: nothing of the guard may stay.
    TERWAY_TRY_CTX(policy::RunNftBatch(options_.netns, RenderRemoveGuardTable()),
                   fmt::format("removing nft table {} {} (metadata_credentials_for_pods: allow)", kGuardFamily,
                               kGuardTable));
    TERWAY_TRY(RemoveAddress());
    log::Warn("metadata guard off (eni_conf metadata_credentials_for_pods: allow): every pod on this node can read "
              "the node's RAM role credentials from the metadata service");
    return Ok();
  }
  TERWAY_TRY(ValidateSpec(TableSpec()));
  TERWAY_TRY(ValidateUpstream(options_.metadata_endpoint));
  TERWAY_TRY(InstallAddress());
  {
    std::lock_guard lock(mu_);
    if (proxy_) return Ok();  // started already
  }
  MetadataProxyOptions po;
  po.netns = options_.netns;
  po.listen_ip = options_.proxy_ip;
  po.listen_port = options_.proxy_port;
  po.upstream = options_.metadata_endpoint;
  po.workers = options_.workers;
  po.max_connections_per_client = options_.max_connections_per_pod;
  po.head_deadline = options_.head_deadline;
  po.upstream_timeout = options_.upstream_timeout;
  po.on_refusal = options_.on_refusal;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto proxy, MetadataProxy::Start(std::move(po)), "starting the metadata proxy");
  {
    std::lock_guard lock(mu_);
    proxy_ = std::move(proxy);
  }
  // Steer pods only once the proxy listens.
  TERWAY_TRY_CTX(ApplyTable(), fmt::format("installing nft table {} {}", kGuardFamily, kGuardTable));
  log::Info("metadata guard on (eni_conf metadata_credentials_for_pods: deny): pods' requests to {}:{} go through "
            "{}:{}, which refuses the RAM role credentials; exempt with annotation {}: \"true\"",
            options_.metadata_ip.ToString(), options_.metadata_port, options_.proxy_ip.ToString(),
            options_.proxy_port, kAllowNodeRamRoleAnnotation);
  return Ok();
}

void MetadataGuard::Stop() {
  std::unique_ptr<MetadataProxy> proxy;
  {
    std::lock_guard lock(mu_);
    proxy = std::move(proxy_);
  }
  if (proxy) proxy->Stop();  // joins its workers: outside the lock
}

MetadataProxyStats MetadataGuard::stats() const {
  std::lock_guard lock(mu_);
  return proxy_ ? proxy_->stats() : MetadataProxyStats{};
}

Status MetadataGuard::InstallAddress() {
  auto h = options_.netns.empty() ? netlink::Handle::Open() : netlink::Handle::OpenIn(options_.netns);
  if (!h.ok()) return std::move(h).error().Wrap("opening netlink for the metadata proxy's address");
  TERWAY_ASSIGN_OR_RETURN_CTX(auto lo, h->GetLink("lo"), "the metadata proxy's address goes on lo");
  netlink::Address a;
  a.link_index = lo.index;
  a.local = netlink::InetPrefix::Host(options_.proxy_ip);
  a.scope = kScopeHost;
  TERWAY_TRY_CTX(h->EnsureAddress(a), fmt::format("adding the metadata proxy's address {}/32 to lo",
                                                  options_.proxy_ip.ToString()));
  return Ok();
}

Status MetadataGuard::RemoveAddress() {
  auto h = options_.netns.empty() ? netlink::Handle::Open() : netlink::Handle::OpenIn(options_.netns);
  if (!h.ok()) return std::move(h).error().Wrap("opening netlink to remove the metadata proxy's address");
  auto lo = h->GetLink("lo");
  if (!lo.ok()) return Ok();
  netlink::Address a;
  a.link_index = lo->index;
  a.local = netlink::InetPrefix::Host(options_.proxy_ip);
  a.scope = kScopeHost;
  TERWAY_TRY_CTX(h->DeleteAddressIfExists(a), fmt::format("removing the metadata proxy's address {}/32 from lo",
                                                          options_.proxy_ip.ToString()));
  return Ok();
}

Status MetadataGuard::ApplyTable() {
  const GuardTableSpec spec = TableSpec();
  for (int round = 0; round < kMaxApplyRounds; round++) {
    GuardMembers snapshot;
    uint64_t gen = 0;
    {
      std::lock_guard lock(mu_);
      snapshot = members_;
      gen = generation_;
    }
    Status s = policy::RunNftBatch(options_.netns, RenderGuardTable(spec, snapshot));
    std::lock_guard lock(mu_);
    if (!s.ok()) {
      dirty_ = true;
      return s;
    }
    if (generation_ == gen) {
      installed_ = true;
      dirty_ = false;
      return Ok();
    }
  }
  std::lock_guard lock(mu_);
  dirty_ = true;
  return MakeError(ErrorCode::kConflict, "the guard's members kept changing while its table was applied; the next "
                                         "change applies it again");
}

Status MetadataGuard::Converge(const std::function<Status()>& element) {
  bool installed = false, dirty = false;
  {
    std::lock_guard lock(mu_);
    installed = installed_;
    dirty = dirty_;
  }
  if (!options_.deny_credentials || !installed) return Ok();  // Start renders what was recorded
  if (dirty) return ApplyTable();
  Status s = element();
  if (!s.ok()) {
    std::lock_guard lock(mu_);
    dirty_ = true;
  }
  return s;
}

Status MetadataGuard::ApplyExempt(Ipv4Addr ip) {
  for (int round = 0; round < kMaxApplyRounds; round++) {
    bool want = false;
    {
      std::lock_guard lock(mu_);
      want = members_.exempt_pods.count(ip) > 0;
    }
    TERWAY_TRY(policy::RunNftBatch(options_.netns, RenderExemptPod(ip, want)));
    std::lock_guard lock(mu_);
    // The last writer of the element re-reads what is wanted after its
    // write, so the kernel ends as the members say whatever the order.
    if ((members_.exempt_pods.count(ip) > 0) == want) return Ok();
  }
  return MakeError(ErrorCode::kConflict, "the exemption kept changing while it was applied");
}

Status MetadataGuard::ApplyInterface(const std::string& name) {
  for (int round = 0; round < kMaxApplyRounds; round++) {
    bool want = false;
    {
      std::lock_guard lock(mu_);
      want = members_.guarded_ifaces.count(name) > 0;
    }
    TERWAY_TRY(policy::RunNftBatch(options_.netns, RenderGuardedInterface(name, want)));
    std::lock_guard lock(mu_);
    if ((members_.guarded_ifaces.count(name) > 0) == want) return Ok();
  }
  return MakeError(ErrorCode::kConflict, "the guarded link kept changing while it was applied");
}

Status MetadataGuard::PodStarted(Ipv4Addr ip, std::string_view pod,
                                 const std::map<std::string, std::string>& annotations) {
  if (!options_.deny_credentials) return Ok();
  std::string warning;
  const bool exempt = ExemptByAnnotations(annotations, &warning);
  if (!warning.empty()) log::Warn("metadata guard: pod {}: {}", pod, warning);
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    changed = exempt ? members_.exempt_pods.insert(ip).second : members_.exempt_pods.erase(ip) > 0;
    if (changed) generation_++;
  }
  if (exempt && changed) {
    log::Info("metadata guard: pod {} ({}) may read the node's RAM role credentials (annotation {})", pod,
              ip.ToString(), kAllowNodeRamRoleAnnotation);
  }
  // Applied even when nothing changed in memory: after a restart the kernel
  // may hold an exemption for this IP that the records no longer do.
  Status s = Converge([&] { return ApplyExempt(ip); });
  if (!s.ok()) return std::move(s).error().Wrap(fmt::format("metadata guard: pod {} ({})", pod, ip.ToString()));
  return Ok();
}

bool MetadataGuard::Exempt(Ipv4Addr ip) const {
  if (!options_.deny_credentials) return true;
  std::lock_guard lock(mu_);
  return members_.exempt_pods.count(ip) > 0;
}

Status MetadataGuard::PodStopped(Ipv4Addr ip) {
  if (!options_.deny_credentials) return Ok();
  {
    std::lock_guard lock(mu_);
    if (members_.exempt_pods.erase(ip) > 0) generation_++;
  }
  Status s = Converge([&] { return ApplyExempt(ip); });
  if (!s.ok()) {
    return std::move(s).error().Wrap(fmt::format("metadata guard: withdrawing the exemption of {}", ip.ToString()));
  }
  return Ok();
}

Status MetadataGuard::GuardInterface(std::string_view name) {
  if (!options_.deny_credentials) return Ok();
  TERWAY_TRY(ValidateInterfaceName(name));
  std::string n(name);
  {
    std::lock_guard lock(mu_);
    if (members_.guarded_ifaces.insert(n).second) generation_++;
  }
  Status s = Converge([&] { return ApplyInterface(n); });
  if (!s.ok()) return std::move(s).error().Wrap("metadata guard: guarding link " + n);
  return Ok();
}

Status MetadataGuard::ForgetInterface(std::string_view name) {
  if (!options_.deny_credentials) return Ok();
  TERWAY_TRY(ValidateInterfaceName(name));
  std::string n(name);
  {
    std::lock_guard lock(mu_);
    if (members_.guarded_ifaces.erase(n) > 0) generation_++;
  }
  Status s = Converge([&] { return ApplyInterface(n); });
  if (!s.ok()) return std::move(s).error().Wrap("metadata guard: forgetting link " + n);
  return Ok();
}

}  // namespace terway::metadata
