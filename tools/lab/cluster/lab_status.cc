// terway-lab status: the lab's world, nodes, ENIs and pods as the cloud
// (vpcsim describe) and lab.json see them.
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tools/lab/cluster/lab.h"

namespace terway::lab {

using nlohmann::json;

Status Lab::PrintStatus(const std::string& dir) {
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(dir));
  bool vpcsim_up = DaemonAlive(s.vpcsim);
  out_ << fmt::format("lab {}  world {}  ({})\n", dir, s.world, s.phase);
  out_ << fmt::format("vpcsim: pid {} {}, API/metadata/admin on 127.0.0.1:{}; in the VPC the API is "
                      "100.100.0.1\n",
                      s.vpcsim.pid, vpcsim_up ? "running" : "NOT RUNNING", s.vpcsim_port);
  out_ << fmt::format("VPC vpc-{} {}, vSwitch {} {} ({})\n", s.world, kLabVpcCidr, s.vswitch,
                      s.vswitch_cidr, s.zone);
  if (s.ip_stack == "dual") {
    out_ << fmt::format("IP stack: dual (eni_conf ip_stack dual; VPC IPv6 {}, vSwitch IPv6 {})\n", s.vpc_ipv6_cidr,
                        s.vswitch_ipv6_cidr);
  } else {
    out_ << fmt::format("IP stack: {} (`up --ip-stack dual` for IPv6)\n", s.ip_stack);
  }
  // The cloud's view: which ENI of which instance holds each address.
  json world;
  if (vpcsim_up) {
    auto r = RunCommand({bins_.vpcsim, "describe", "--json", "--state", s.vpcsim_state});
    if (r.ok() && r->exit_code == 0) world = json::parse(r->out, nullptr, false);
  }
  std::map<std::string, std::string> eni_of_ip;  // ip -> "eni-x (ethN)"
  auto enis_of = [&](const std::string& instance) {
    std::vector<json> out;
    if (!world.is_object()) return out;
    for (const auto& i : world.value("instances", json::array())) {
      if (i.value("id", "") == instance) {
        for (const auto& e : i.value("enis", json::array())) out.push_back(e);
      }
    }
    return out;
  };
  for (const auto& i : (world.is_object() ? world.value("instances", json::array()) : json::array())) {
    for (const auto& e : i.value("enis", json::array())) {
      std::string tag = fmt::format("{} (eth{})", e.value("id", ""), e.value("device_index", 0));
      for (const auto& ip : e.value("secondary_ips", json::array())) eni_of_ip[ip.get<std::string>()] = tag;
      for (const auto& ip : e.value("ipv6s", json::array())) eni_of_ip[ip.get<std::string>()] = tag;
      // In shared-ENI mode a secondary ENI's own primary IP serves a pod too
      // (max pods = (EniQuantity - 1) x EniPrivateIpAddressQuantity).
      if (e.value("device_index", 0) > 0) eni_of_ip[e.value("primary_ip", "")] = tag;
    }
  }
  std::map<std::string, std::string> pod_of_ip;
  std::map<std::string, std::string> ipv6_of_pod;  // key -> its IPv6, from its ADD result
  for (const auto& p : s.pods) {
    if (!p.ip.empty()) pod_of_ip[p.ip] = p.Key();
    if (auto ips = PodIpsOfCniResult(p.result); ips.ok()) {
      for (const auto& ip : *ips) {
        pod_of_ip[ip] = p.Key();
        if (ip.find(':') != std::string::npos) ipv6_of_pod[p.Key()] = ip;
      }
    }
  }
  out_ << "\nNodes (ECS instances running terwayd):\n";
  for (const auto& n : s.nodes) {
    int pods = 0;
    for (const auto& p : s.pods) pods += p.node == n.name ? 1 : 0;
    out_ << fmt::format("  {}  {}  {}  pods {}/{}  terwayd pid {} {}  namespace {}\n", n.name,
                        n.instance_id, n.instance_type, pods, n.max_pods, n.terwayd.pid,
                        DaemonAlive(n.terwayd) ? "running" : "NOT RUNNING", n.netns);
    out_ << fmt::format("    datapath: {}\n", DescribeNodeDatapath(n));
    for (const auto& e : enis_of(n.instance_id)) {
      std::string role = e.value("device_index", 0) == 0 ? "primary ENI" : "secondary ENI";
      std::string primary = e.value("primary_ip", "");
      out_ << fmt::format("    eth{} {}  {}  {}  primary IP {}{}\n", e.value("device_index", 0),
                          e.value("id", ""), role, e.value("status", ""), primary,
                          pod_of_ip.count(primary) ? "  pod " + pod_of_ip[primary] : "");
      // The primary ENI's IPv6 is the node's own (on eth0, as its primary
      // IP): terwayd never serves pods from the primary ENI.
      const std::string idle = e.value("device_index", 0) == 0 ? "the node's own (eth0)" : "warm pool (idle)";
      for (const char* family : {"secondary_ips", "ipv6s"}) {
        for (const auto& ip : e.value(family, json::array())) {
          std::string a = ip.get<std::string>();
          out_ << fmt::format("        {:<15}  {}\n", a, pod_of_ip.count(a) ? "pod " + pod_of_ip[a] : idle);
        }
      }
    }
  }
  if (!s.hosts.empty()) {
    out_ << "\nVPC hosts (instances without terwayd):\n";
    for (const auto& h : s.hosts) {
      out_ << fmt::format("  {}  {}  {}{}  namespace {}\n", h.name, h.instance_id, h.ip,
                          h.ipv6.empty() ? "" : "  IPv6 " + h.ipv6, h.netns);
    }
  }
  out_ << "\nPods:\n";
  if (s.pods.empty()) out_ << "  (none)  add one: terway-lab pod add default/web-1 --node node1\n";
  for (const auto& p : s.pods) {
    std::string eni = eni_of_ip.count(p.ip) ? eni_of_ip[p.ip] : "?";
    out_ << fmt::format("  {:<24} {:<6} {:<15} ENI {:<30} namespace {}{}\n", p.Key(), p.node,
                        p.ip.empty() ? "(adding)" : p.ip, eni, p.netns,
                        ipv6_of_pod.count(p.Key()) ? "  IPv6 " + ipv6_of_pod[p.Key()] : "");
  }
  return Ok();
}

}  // namespace terway::lab
