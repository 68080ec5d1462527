// What a running lab holds for its pods, read from every place that records
// them -- the cloud (DescribeNetworkInterfaces over the signed API), each
// node's kernel (host veths, routes, policy rules), its nftables tables
// (anti-spoofing, NetworkPolicy, metadata guard), terwayd's state database,
// the pod sandboxes, the Kubernetes API and lab.json -- and where they
// disagree with the pods a test expects. Used by the chaos test to prove
// that after crashes and cloud faults everything converges and nothing
// leaked.
#pragma once

#include <arpa/inet.h>
#include <dirent.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cloud/cloud_clients.h"
#include "e2e/lab/lab_fixture.h"
#include "netlink/handle.h"

namespace terway::testing {

// A pod the test expects to run: "ns/name", its node and its IP.
struct ExpectedPod {
  std::string key;
  std::string node;
  std::string ip;
};

// The IPv4 addresses (loopback left out) configured in a namespace, as a
// sandbox's own processes would see them; an error when it cannot be entered
// (e.g. deleted meanwhile).
inline Result<std::set<std::string>> NetnsIpv4(const std::string& netns) {
  TERWAY_ASSIGN_OR_RETURN(auto h, netlink::Handle::OpenIn(netns));
  TERWAY_ASSIGN_OR_RETURN(auto addrs, h.ListAddresses(0, AF_INET));
  std::set<std::string> out;
  for (const auto& a : addrs) {
    const std::string ip = a.local.addr.ToString();
    if (ip.rfind("127.", 0) != 0) out.insert(ip);
  }
  return out;
}

// Named namespaces starting with prefix (read from /var/run/netns).
inline std::vector<std::string> NetnsWithPrefix(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* d = opendir("/var/run/netns");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  }
  closedir(d);
  return out;
}

// Pool settings the leak bound depends on (the eni_conf the test set).
struct PoolBound {
  int max_pool_size = 0;
  int min_pool_size = 0;
};

class LabInventory : public LabTest {
 protected:
  // Every disagreement between the expected pods and what the lab holds,
  // one line each; empty when all agree. Also checks the pool's leak bound:
  // per node, the idle IPs the pool could give back (all but the primary IPs
  // of ENIs that carry a pod, which go only with their ENI) are at most
  // max(max_pool_size, min_pool_size).
  std::vector<std::string> Disagreements(const std::vector<ExpectedPod>& pods, const PoolBound& bound) {
    std::vector<std::string> out;
    const nlohmann::json state = State();
    CheckLabRecords(state, pods, &out);
    CheckSandboxes(pods, &out);
    CheckApi(pods, &out);
    auto enis = AllEnis();
    if (!enis.ok()) {
      out.push_back("cloud: DescribeNetworkInterfaces failed: " + enis.error().ToString());
      return out;
    }
    CheckCloud(state, *enis, pods, bound, &out);
    for (const auto& n : state["nodes"]) {
      std::vector<ExpectedPod> mine;
      for (const auto& p : pods) {
        if (p.node == n["name"]) mine.push_back(p);
      }
      CheckNode(n, *enis, mine, &out);
    }
    return out;
  }

  static std::string Join(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += "  " + l + "\n";
    return s;
  }

  // All ENIs of the lab's VPC, through the signed OpenAPI.
  Result<std::vector<cloud::NetworkInterface>> AllEnis() {
    nlohmann::json st = State();
    cloud::CloudOptions o;
    o.region_id = "cn-hangzhou";
    o.ecs_endpoint = fmt::format("http://127.0.0.1:{}", st["vpcsim"]["port"].get<int>());
    o.vpc_endpoint = o.ecs_endpoint;
    o.credential_kind = cloud::CredentialKind::kStatic;
    o.access_key = st["access_key"];
    o.access_secret = st["access_secret"];
    TERWAY_ASSIGN_OR_RETURN(auto clients, cloud::CloudClients::Create(o));
    cloud::DescribeEnisFilter f;
    f.vpc_id = "vpc-" + world_;
    return clients->ecs()->DescribeNetworkInterfaces(f);
  }

 private:
  template <class Set>
  static std::string Show(const Set& s) {
    std::string out = "{";
    for (const auto& x : s) out += (out.size() > 1 ? ", " : "") + fmt::format("{}", x);
    return out + "}";
  }
  // "what: got {..}, want {..}" when they differ.
  template <class Set>
  static void Compare(const std::string& what, const Set& got, const Set& want, std::vector<std::string>* out) {
    if (got != want) out->push_back(fmt::format("{}: got {}, want {}", what, Show(got), Show(want)));
  }

  static bool InVpc(const std::string& ip) {
    in_addr a{};
    if (inet_pton(AF_INET, ip.c_str(), &a) != 1) return false;
    return (ntohl(a.s_addr) & 0xffff0000u) == 0xc6120000u;  // 198.18.0.0/16, the lab's VPC
  }

  void CheckLabRecords(const nlohmann::json& state, const std::vector<ExpectedPod>& pods,
                       std::vector<std::string>* out) {
    std::set<std::string> got, want;
    for (const auto& p : state["pods"]) {
      got.insert(fmt::format("{}/{}@{}={}", p["namespace"].get<std::string>(), p["name"].get<std::string>(),
                             p["node"].get<std::string>(), p.value("ip", "")));
    }
    for (const auto& p : pods) want.insert(fmt::format("{}@{}={}", p.key, p.node, p.ip));
    Compare("lab.json pods", got, want, out);
  }

  void CheckSandboxes(const std::vector<ExpectedPod>& pods, std::vector<std::string>* out) {
    std::map<std::string, std::set<std::string>> got, want;
    for (const auto& p : pods) {
      std::string ns = world_ + "-pod-" + p.key.substr(0, p.key.find('/')) + "-" + p.key.substr(p.key.find('/') + 1);
      want[ns] = {p.ip};
    }
    for (const auto& ns : NetnsWithPrefix(world_ + "-pod-")) {
      auto ips = NetnsIpv4(ns);
      got[ns] = ips.ok() ? *ips : std::set<std::string>{"(unreadable: " + ips.error().ToString() + ")"};
    }
    for (const auto& [ns, ips] : got) {
      if (!want.count(ns)) {
        out->push_back(fmt::format("sandbox {} exists but no pod expects it (holds {})", ns, Show(ips)));
      }
    }
    for (const auto& [ns, ips] : want) {
      if (!got.count(ns)) {
        out->push_back(fmt::format("sandbox {} is missing", ns));
      } else if (got[ns] != ips) {
        out->push_back(fmt::format("sandbox {} holds {}, want {}", ns, Show(got[ns]), Show(ips)));
      }
    }
  }

  void CheckApi(const std::vector<ExpectedPod>& pods, std::vector<std::string>* out) {
    auto r = Kubectl({"get", "pods", "--all-namespaces", "-o", "json"});
    nlohmann::json list = nlohmann::json::parse(r.output, nullptr, false);
    if (r.exit_code != 0 || !list.is_object()) {
      out->push_back("API: kubectl get pods failed: " + r.output);
      return;
    }
    std::set<std::string> got, want;
    for (const auto& p : list.value("items", nlohmann::json::array())) {
      const auto& st = p.value("status", nlohmann::json::object());
      got.insert(fmt::format("{}/{}@{} {} {}", p["metadata"].value("namespace", ""), p["metadata"].value("name", ""),
                             p["spec"].value("nodeName", ""), st.value("phase", "(no phase)"),
                             st.value("podIP", "(no IP)")));
    }
    for (const auto& p : pods) want.insert(fmt::format("{}@{} Running {}", p.key, p.node, p.ip));
    Compare("API pods", got, want, out);
  }

  static bool Ours(const cloud::NetworkInterface& e) {
    for (const auto& t : e.tags) {
      if (t.key == "creator" && t.value == "terway") return true;
    }
    return false;
  }
  static std::string TaggedInstance(const cloud::NetworkInterface& e) {
    for (const auto& t : e.tags) {
      if (t.key == "terway.instance-id") return t.value;
    }
    return "";
  }

  void CheckCloud(const nlohmann::json& state, const std::vector<cloud::NetworkInterface>& enis,
                  const std::vector<ExpectedPod>& pods, const PoolBound& bound, std::vector<std::string>* out) {
    std::map<std::string, std::string> node_of_instance;
    for (const auto& n : state["nodes"]) node_of_instance[n["instance_id"]] = n["name"];
    std::map<std::string, std::string> pod_of_ip;
    for (const auto& p : pods) pod_of_ip[p.ip] = p.key;
    std::map<std::string, std::string> holder;  // pod IP -> "node eni"
    std::map<std::string, int> reclaimable;     // node -> idle IPs the pool could give back
    for (const auto& e : enis) {
      if (e.type == "Primary") {
        for (const auto& ip : e.private_ip_sets) {
          if (ip.primary) continue;
          out->push_back(fmt::format("cloud: primary ENI {} holds secondary IP {}", e.network_interface_id, ip.address));
        }
        continue;
      }
      const std::string node = node_of_instance.count(e.instance_id) ? node_of_instance[e.instance_id] : "";
      if (e.status != "InUse" || node.empty()) {
        // Made for a node but not attached (a crash between create and
        // attach, a failed delete after detach): a leak once converged.
        out->push_back(fmt::format("cloud: ENI {} is {} (instance '{}', tagged for '{}', {} IPs): not serving any node",
                                   e.network_interface_id, e.status, e.instance_id, TaggedInstance(e),
                                   e.private_ip_sets.size()));
        continue;
      }
      if (!Ours(e)) {
        out->push_back(fmt::format("cloud: ENI {} on {} lacks the creator=terway tag", e.network_interface_id, node));
      }
      bool carries_pod = false;
      for (const auto& ip : e.private_ip_sets) carries_pod |= pod_of_ip.count(ip.address) > 0;
      for (const auto& ip : e.private_ip_sets) {
        if (pod_of_ip.count(ip.address)) {
          holder[ip.address] = node + " " + e.network_interface_id;
        } else if (!(ip.primary && carries_pod)) {
          reclaimable[node]++;
        }
      }
    }
    for (const auto& p : pods) {
      if (!holder.count(p.ip)) {
        out->push_back(fmt::format("cloud: pod {}'s IP {} is on no ENI of a node", p.key, p.ip));
      } else if (holder[p.ip].rfind(p.node + " ", 0) != 0) {
        out->push_back(
            fmt::format("cloud: pod {}'s IP {} is on {}, not on its node {}", p.key, p.ip, holder[p.ip], p.node));
      }
    }
    const int limit = std::max(bound.max_pool_size, bound.min_pool_size);
    for (const auto& [node, idle] : reclaimable) {
      if (idle > limit) {
        out->push_back(fmt::format("cloud: {} holds {} idle IPs the pool could give back, above max(max_pool_size, "
                                   "min_pool_size) = {}: leaked addresses or ENIs",
                                   node, idle, limit));
      }
    }
  }

  // Elements of a named set or map of an nft table, as JSON values.
  static std::vector<nlohmann::json> NftElements(const nlohmann::json& table, const std::string& name) {
    std::vector<nlohmann::json> out;
    for (const auto& o : table.value("nftables", nlohmann::json::array())) {
      for (const char* kind : {"set", "map"}) {
        if (!o.contains(kind) || (*o.find(kind)).value("name", "") != name) continue;
        for (auto e : (*o.find(kind)).value("elem", nlohmann::json::array())) {
          if (e.is_object() && e.contains("elem")) e = e["elem"]["val"];
          out.push_back(e);
        }
      }
    }
    return out;
  }
  nlohmann::json NftTable(const std::string& netns, const std::string& family, const std::string& name,
                          std::vector<std::string>* out) {
    auto r = RunCommand({"/usr/sbin/nft", "-j", "list", "table", family, name}, netns);
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (r.exit_code != 0 || !j.is_object()) {
      out->push_back(fmt::format("{}: nft table {} {} unreadable: {}", netns, family, name, r.output));
      return nlohmann::json::object();
    }
    return j;
  }

  // The node's kernel, nftables and database against its expected pods and
  // the cloud.
  void CheckNode(const nlohmann::json& n, const std::vector<cloud::NetworkInterface>& enis,
                 const std::vector<ExpectedPod>& pods, std::vector<std::string>* out) {
    const std::string node = n["name"], netns = n["netns"];
    std::multiset<std::string> want_ips;
    std::map<std::string, std::string> want_db;
    for (const auto& p : pods) {
      want_ips.insert(p.ip);
      want_db[p.key] = p.ip;
    }
    auto h = netlink::Handle::OpenIn(netns);
    if (!h.ok()) {
      out->push_back(node + ": cannot open namespace " + netns + ": " + h.error().ToString());
      return;
    }
    // Host veths: tw* with alias terway-pod:<ip>:<container>.
    auto links = h->ListLinks();
    auto rts = h->ListRoutes(AF_INET, 0);
    auto rules = h->ListRules(AF_INET);
    if (!links.ok()) out->push_back(node + ": listing links: " + links.error().ToString());
    if (!rts.ok()) out->push_back(node + ": listing routes: " + rts.error().ToString());
    if (!rules.ok()) out->push_back(node + ": listing rules: " + rules.error().ToString());
    std::set<std::string> link_names;
    std::map<std::string, std::string> veth_of_ip;
    std::multiset<std::string> veth_ips;
    for (const auto& l : links.ok() ? *links : std::vector<netlink::Link>{}) {
      link_names.insert(l.name);
      if (l.name.rfind("tw", 0) != 0) continue;
      std::string ip = "(no alias)";
      if (l.alias.rfind("terway-pod:", 0) == 0) ip = l.alias.substr(11, l.alias.find(':', 11) - 11);
      veth_ips.insert(ip);
      veth_of_ip[ip] = l.name;
    }
    Compare(node + ": host veths (tw*) by pod IP", veth_ips, want_ips, out);
    // /32 routes into the VPC (every table but local) and the pod rules.
    std::multiset<std::string> routes, to_rules, from_rules;
    for (const auto& r : rts.ok() ? *rts : std::vector<netlink::Route>{}) {
      // The local table holds the node's own addresses, never a pod's.
      if (r.table == netlink::kLocalTable) continue;
      if (r.dst.prefix_len == 32 && InVpc(r.dst.addr.ToString())) routes.insert(r.dst.addr.ToString());
    }
    for (const auto& r : rules.ok() ? *rules : std::vector<netlink::Rule>{}) {
      if (r.priority == 512 && r.dst) to_rules.insert(r.dst->addr.ToString());
      if (r.priority == 2048 && r.src) from_rules.insert(r.src->addr.ToString());
    }
    Compare(node + ": /32 routes to VPC addresses", routes, want_ips, out);
    Compare(node + ": rules 512 (to pod IP)", to_rules, want_ips, out);
    Compare(node + ": rules 2048 (from pod IP)", from_rules, want_ips, out);
    CheckNodeNft(node, netns, link_names, veth_of_ip, want_ips, out);
    CheckNodeDatabase(n, enis, want_db, out);
  }

  void CheckNodeNft(const std::string& node, const std::string& netns, const std::set<std::string>& link_names,
                    const std::map<std::string, std::string>& veth_of_ip, const std::multiset<std::string>& want_ips,
                    std::vector<std::string>* out) {
    auto antispoof = NftTable(netns, "inet", "terway_antispoof", out);
    std::multiset<std::string> allowed, want_allowed;
    for (const auto& e : NftElements(antispoof, "allowed_ipv4")) {
      if (e.contains("concat") && e["concat"].size() == 2) {
        allowed.insert(e["concat"][0].get<std::string>() + " " + e["concat"][1].get<std::string>());
      } else {
        allowed.insert(e.dump());
      }
    }
    for (const auto& ip : want_ips) {
      auto v = veth_of_ip.find(ip);
      want_allowed.insert((v == veth_of_ip.end() ? "(no veth)" : v->second) + " " + ip);
    }
    Compare(node + ": anti-spoofing allowed_ipv4", allowed, want_allowed, out);
    for (const auto& e : NftElements(antispoof, "guarded_ifnames")) {
      if (!e.is_string() || !link_names.count(e.get<std::string>())) {
        out->push_back(fmt::format("{}: anti-spoofing guards {}, which is no link of the node", node, e.dump()));
      }
    }
    auto policy = NftTable(netns, "inet", "terway", out);
    std::set<std::string> targets, chains;
    for (const char* map : {"pod_ingress", "pod_egress"}) {
      std::multiset<std::string> keys;
      for (const auto& e : NftElements(policy, map)) {
        if (e.is_array() && e.size() == 2 && e[0].is_string()) {
          keys.insert(e[0].get<std::string>());
          if (e[1].contains("jump")) targets.insert(e[1]["jump"].value("target", ""));
        } else {
          keys.insert(e.dump());
        }
      }
      // The test's allow-all policy selects every pod.
      Compare(fmt::format("{}: policy map {} keys", node, map), keys, want_ips, out);
    }
    for (const auto& o : policy.value("nftables", nlohmann::json::array())) {
      if (!o.contains("chain")) continue;
      std::string c = o["chain"].value("name", "");
      if (c.rfind("in_", 0) == 0 || c.rfind("eg_", 0) == 0) chains.insert(c);
    }
    Compare(node + ": per-pod policy chains vs the chains the maps jump to", chains, targets, out);
    auto metadata = NftTable(netns, "ip", "terway_metadata", out);
    for (const auto& e : NftElements(metadata, "exempt_pods")) {
      out->push_back(fmt::format("{}: metadata guard exempts {}, but no pod asked for it", node, e.dump()));
    }
    for (const auto& e : NftElements(metadata, "guarded_ifaces")) {
      if (!e.is_string() || !link_names.count(e.get<std::string>())) {
        out->push_back(fmt::format("{}: metadata guard lists {}, which is no link of the node", node, e.dump()));
      }
    }
  }

  // terway-cli's view of the state database: pods, IPs and ENIs, against
  // the expected pods and the cloud.
  void CheckNodeDatabase(const nlohmann::json& n, const std::vector<cloud::NetworkInterface>& enis,
                         const std::map<std::string, std::string>& want_db, std::vector<std::string>* out) {
    const std::string node = n["name"], db = n["state_db"], instance = n["instance_id"];
    auto rows = [&](const char* what) {
      std::vector<std::vector<std::string>> table;
      auto r = RunCommand({BinaryPath("terway-cli"), what, "--state", db});
      if (r.exit_code != 0) {
        out->push_back(fmt::format("{}: terway-cli {} failed: {}", node, what, r.output));
        return table;
      }
      for (const auto& line : Split(r.output)) {
        std::istringstream in(line);
        std::vector<std::string> f;
        for (std::string w; in >> w;) f.push_back(w);
        if (!f.empty() && f[0] != "POD" && f[0] != "IP") table.push_back(f);
      }
      return table;
    };
    std::map<std::string, std::string> db_pods;
    for (const auto& f : rows("pods")) db_pods[f[0]] = f.size() > 1 ? f[1] : "";
    if (db_pods != want_db) {
      std::set<std::string> got, want;
      for (const auto& [k, v] : db_pods) got.insert(k + "=" + v);
      for (const auto& [k, v] : want_db) want.insert(k + "=" + v);
      Compare(node + ": database allocations", got, want, out);
    }
    std::set<std::string> db_ips, db_in_use, db_enis, cloud_ips, cloud_enis, want_in_use;
    for (const auto& f : rows("ips")) {
      db_ips.insert(f[0]);
      if (f.size() > 3 && f[2] == "in" && f[3] == "use") db_in_use.insert(f[0]);
    }
    for (const auto& f : rows("enis")) {
      if (f.size() > 4 && f[4] == "(primary") continue;  // the instance's own ENI, if recorded
      db_enis.insert(f[0]);
    }
    for (const auto& e : enis) {
      if (e.type != "Secondary" || e.status != "InUse" || e.instance_id != instance) continue;
      cloud_enis.insert(e.network_interface_id);
      for (const auto& ip : e.private_ip_sets) cloud_ips.insert(ip.address);
    }
    for (const auto& [k, ip] : want_db) want_in_use.insert(ip);
    Compare(node + ": database IPs in use", db_in_use, want_in_use, out);
    Compare(node + ": database IPs vs the cloud's IPs on the node's ENIs", db_ips, cloud_ips, out);
    Compare(node + ": database ENIs vs the cloud's ENIs attached to the node", db_enis, cloud_enis, out);
  }
};

}  // namespace terway::testing
