// netlink::Handle: one rtnetlink socket bound to one network namespace.
//
// A netlink socket talks to the namespace it was created in, for its whole
// life, whatever thread later uses it. OpenIn() therefore creates the socket
// on a short-lived thread inside the target namespace (see netns.h) and the
// handle then works from any thread, without anyone calling setns().
//
// A Handle is not thread-safe (one socket, one sequence of requests): use one
// per thread, or serialise.
//
// Errors name the object and the kernel's cause. The kernel's errno is kept in
// Error::sys_errno and mapped: EEXIST -> kAlreadyExists, ENODEV/ENOENT/ESRCH
// -> kNotFound. "...IfExists" / "Ensure..." variants are the idempotent forms.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "netlink/types.h"

namespace terway::netlink {

class Handle {
 public:
  // The calling thread's current namespace.
  static Result<Handle> Open();
  // A namespace by name ("/var/run/netns/<name>") or path ("/proc/<pid>/ns/net").
  static Result<Handle> OpenIn(const std::string& netns);

  Handle(Handle&&) noexcept;
  Handle& operator=(Handle&&) noexcept;
  ~Handle();

  // The namespace this handle was opened in (as given; "" for Open()).
  const std::string& netns() const { return netns_; }

  // ---- links ----
  Result<Link> GetLink(const std::string& name);
  Result<Link> GetLinkByIndex(int index);
  Result<Link> GetLinkByMac(const MacAddr& mac);  // first link with this MAC
  Result<std::vector<Link>> ListLinks();
  // The id this handle's namespace gives another namespace (a name under
  // /var/run/netns or a path): equal to Link::peer_netnsid of a veth whose
  // peer lives there. -1 when it has none (no link crosses to it).
  Result<int> NetnsIdOf(const std::string& netns);
  bool LinkExists(const std::string& name);

  // kAlreadyExists if a link with that name exists (in either namespace).
  Status CreateVeth(const VethSpec& spec);
  Status CreateBridge(const std::string& name, const std::optional<MacAddr>& mac = std::nullopt);
  Status SetLinkUp(int index);
  Status SetLinkDown(int index);
  Status SetMtu(int index, int mtu);
  Status SetMac(int index, const MacAddr& mac);
  Status SetName(int index, const std::string& name);   // the link must be down
  Status SetMaster(int index, int master_index);        // 0: release
  Status SetAlias(int index, const std::string& alias);
  Status SetBridgePortIsolated(int index, bool isolated);
  // Moves the link into another namespace (name or path). Its index may
  // change there; look it up again by name through a handle in that namespace.
  Status MoveToNetns(int index, const std::string& netns);
  Status DeleteLink(int index);
  // Success if no link of that name exists (DEL paths, replayed cleanups).
  Status DeleteLinkIfExists(const std::string& name);

  // ---- addresses ----
  Status AddAddress(const Address& a);        // kAlreadyExists if present
  Status EnsureAddress(const Address& a);     // add or replace
  Status DeleteAddress(const Address& a);
  Status DeleteAddressIfExists(const Address& a);
  // link_index 0: all links; family 0: both families.
  Result<std::vector<Address>> ListAddresses(int link_index = 0, int family = 0);

  // ---- routes ----
  Status AddRoute(const Route& r);            // kAlreadyExists if present
  Status ReplaceRoute(const Route& r);        // add or replace
  Status DeleteRoute(const Route& r);
  Status DeleteRouteIfExists(const Route& r);
  // table 0: all tables. family 0: both. Local/broadcast routes of the local
  // table are included only when asking for table 255.
  Result<std::vector<Route>> ListRoutes(int family = 0, uint32_t table = kMainTable);

  // ---- policy rules ----
  Status AddRule(const Rule& r);              // kAlreadyExists if an identical rule exists
  Status EnsureRule(const Rule& r);
  Status DeleteRule(const Rule& r);
  Status DeleteRuleIfExists(const Rule& r);
  Result<std::vector<Rule>> ListRules(int family = 0);

  // ---- neighbours ----
  Status AddNeighbor(const Neighbor& n);      // permanent; kAlreadyExists if present
  Status ReplaceNeighbor(const Neighbor& n);  // permanent; add or replace
  Status DeleteNeighbor(const Neighbor& n);
  Status DeleteNeighborIfExists(const Neighbor& n);
  Result<std::vector<Neighbor>> ListNeighbors(int link_index = 0, int family = 0);
  // Proxy entries (message building in message.h). Replace is idempotent.
  Status ReplaceProxyNeighbor(const ProxyNeighbor& n);
  Status DeleteProxyNeighborIfExists(const ProxyNeighbor& n);
  // link_index 0: all links; family 0: both families.
  Result<std::vector<ProxyNeighbor>> ListProxyNeighbors(int link_index = 0, int family = 0);

  // ---- bridge forwarding database ----
  Status ReplaceFdb(const FdbEntry& e);       // static entry on the port's master bridge
  Status DeleteFdbIfExists(const FdbEntry& e);

  // ---- traffic control ----
  // clsact (the hook for tc eBPF programs on ingress and egress); present = ok.
  Status EnsureClsact(int index);
  // EnsureClsact telling whether it created the qdisc (true) or found it
  // (false): a clsact just created has no filters yet, and a link that lost
  // its clsact (moved between namespaces, recreated) lost its filters too.
  Result<bool> AddClsactIfMissing(int index);
  Status DeleteClsactIfExists(int index);
  // Replaces the root qdisc with a token bucket filter (64-bit rates).
  Status ReplaceRootTbf(int index, const TokenBucket& tb);
  // Back to the kernel's default root qdisc; success if it already is.
  Status DeleteRootQdiscIfExists(int index);
  Result<std::vector<Qdisc>> ListQdiscs(int link_index = 0);

  // ---- traffic shaping (messages in tc_message.h) ----
  // An IFB device (kAlreadyExists if a link of that name exists).
  Status CreateIfb(const std::string& name);
  // A link of `kind` on the parent link (ipvlan, macvlan, ...). A kind this
  // kernel was built without is kUnsupported naming it.
  Status CreateChildLink(const std::string& name, const std::string& kind, int parent_index);
  // A qdisc of `kind` with no options. kAlreadyExists if one is there;
  // kUnsupported when this kernel does not know the kind (module not built).
  Status AddQdisc(int index, const std::string& kind, uint32_t parent, uint32_t handle);
  // Success if no such qdisc.
  Status DeleteQdiscIfExists(int index, uint32_t parent, uint32_t handle);
  // The TBF at the link's root, nullopt if the root is something else.
  Result<std::optional<TbfInfo>> GetRootTbf(int index);
  // kAlreadyExists is not detected by the kernel for u32 (a second filter
  // is added): callers delete the priority first or check ListFilters.
  Status AddRedirectFilter(const RedirectFilter& f);
  // A direct-action cls_bpf filter (callers delete the priority first, as
  // for the redirect filter).
  Status AddBpfFilter(const BpfFilter& f);
  // Replaces the root qdisc by one of `kind` with default options (e.g. fq);
  // kUnsupported when this kernel does not know the kind.
  Status ReplaceRootQdisc(int index, const std::string& kind);
  // Deletes every filter at (parent, priority); success if none (or no clsact).
  Status DeleteFiltersIfExist(int index, uint32_t parent, uint16_t priority);
  // Filters on a hook (e.g. kTcClsactIngress); empty if the hook has no qdisc.
  Result<std::vector<FilterInfo>> ListFilters(int index, uint32_t parent);

 public:
  struct Socket;  // opaque: the libnl socket (defined in handle.cc)

 private:
  Handle(std::unique_ptr<Socket> s, std::string netns);
  static Result<Handle> OpenHere(const std::string& label);

  std::unique_ptr<Socket> s_;
  std::string netns_;
};

}  // namespace terway::netlink
