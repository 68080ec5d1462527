// Keeps the node's cloud identity from its pods (eni_conf
// `metadata_credentials_for_pods: deny`): pods' TCP traffic to the ECS
// metadata service (100.100.100.200:80) is DNAT'd, on arrival from a pod's
// host link, to a filtering proxy that terwayd runs on a node-local address;
// the proxy serves every metadata path except the RAM role's credentials.
// Pods annotated k8s.aliyun.com/allow-node-ram-role: "true" are exempt and
// reach the service directly. See README.md for the whole design.
//
// How terwayd uses it:
//   MetadataGuard guard(options);                 // from eni_conf
//   for each pod the daemon knows at start:       // state database + API
//     guard.PodStarted(ip, "ns/name", annotations);
//   guard.Start();                                // address, proxy, nft table
//   ADD (before the pod is wired):  guard.PodStarted(...)   -- a failure fails the ADD
//   teardown (before the release):  guard.PodStopped(ip)    -- a failure fails the DEL
//   a host link not named tw*:      guard.GuardInterface(name) / ForgetInterface(name)
//   shutdown:                       guard.Stop()
// Thread-safe; no lock is held while the kernel is called.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip.h"
#include "common/result.h"
#include "metadata/guard_nft.h"
#include "metadata/metadata_proxy.h"

namespace terway::metadata {

struct MetadataGuardOptions {
  // false (metadata_credentials_for_pods: allow): Start removes what an
  // earlier deny left (table, address) and every other call does nothing.
  bool deny_credentials = true;
  std::string netns;  // the node's namespace; "" = terwayd's own
  std::string metadata_endpoint = "http://100.100.100.200";  // eni_conf metadata_endpoint
  Ipv4Addr metadata_ip{0x646464c8};  // 100.100.100.200: what pods' packets are matched on
  uint16_t metadata_port = 80;
  // The proxy's address: link-local, a /32 on lo, so a DNAT'd packet is
  // delivered locally without route_localnet (which 127.0.0.1 would need)
  // and no other host routes to it; the table's input chain also drops
  // anything for it that did not come from a pod's host link or lo.
  Ipv4Addr proxy_ip{0xa9fe64c8};  // 169.254.100.200
  uint16_t proxy_port = 80;
  std::vector<std::string> guarded_prefixes = {"tw"};
  // Connections one pod may have in service at once (the rest are answered
  // 429 at once), below workers so one pod never holds them all.
  int max_connections_per_pod = 4;
  int workers = 16;
  std::chrono::milliseconds head_deadline{3000};
  std::chrono::milliseconds upstream_timeout{3000};
  // Each request not forwarded (metrics): Verdict names the reason.
  std::function<void(Verdict)> on_refusal;
};

// Whether a pod's annotations exempt it: k8s.aliyun.com/allow-node-ram-role
// "true" (any case). Any value but true/false sets *warning and does not
// exempt: a typo keeps the pod guarded (fail closed).
bool ExemptByAnnotations(const std::map<std::string, std::string>& annotations, std::string* warning);

class MetadataGuard {
 public:
  explicit MetadataGuard(MetadataGuardOptions options);
  ~MetadataGuard();
  MetadataGuard(const MetadataGuard&) = delete;
  MetadataGuard& operator=(const MetadataGuard&) = delete;

  // deny: puts the proxy's address on lo, starts the proxy, then installs
  // (or atomically replaces, after a restart) the nft table with the
  // exemptions and guarded links recorded so far. allow: removes both.
  Status Start();
  // Stops the proxy. The table and the address stay on purpose: while
  // terwayd is down (an upgrade, a crash loop) pods' connections to the
  // metadata service are refused by the node instead of reaching the
  // credentials. Start again or switch to allow to change that.
  void Stop();

  // Records the pod's exemption (from its annotations) for its IP and
  // applies it. Also clears a stale exemption of a previous holder of the
  // IP, so an error here must fail the ADD. Before Start: recorded only.
  Status PodStarted(Ipv4Addr ip, std::string_view pod, const std::map<std::string, std::string>& annotations);
  // Withdraws the IP's exemption (idempotent). An error must fail the
  // teardown before the address is released: the next holder of the IP
  // would inherit the exemption.
  Status PodStopped(Ipv4Addr ip);
  // A pod's host link named outside guarded_prefixes (e.g. one adopted
  // from another CNI's naming).
  Status GuardInterface(std::string_view name);
  Status ForgetInterface(std::string_view name);

  bool enabled() const { return options_.deny_credentials; }
  // Whether the pod holding ip may read the credentials (recorded by
  // PodStarted); always true in allow mode.
  bool Exempt(Ipv4Addr ip) const;
  // Zero before Start and in allow mode.
  MetadataProxyStats stats() const;
  // The table's spec as rendered (tests, terway-cli).
  GuardTableSpec TableSpec() const;

 private:
  Status InstallAddress();
  Status RemoveAddress();
  // Whole table from the recorded members, repeated while they change under
  // it (bounded), so a concurrent PodStarted is never lost.
  Status ApplyTable();
  // One element, re-applied while its wanted state changes under it.
  Status ApplyExempt(Ipv4Addr ip);
  Status ApplyInterface(const std::string& name);
  // After a member changed: the element, or the whole table when an earlier
  // apply failed (the kernel's state is then unknown).
  Status Converge(const std::function<Status()>& element);

  MetadataGuardOptions options_;
  mutable std::mutex mu_;  // everything below; never held across a kernel call
  GuardMembers members_;
  uint64_t generation_ = 0;
  bool installed_ = false;
  bool dirty_ = false;
  std::unique_ptr<MetadataProxy> proxy_;
};

}  // namespace terway::metadata
