// Pods as a container runtime makes them, for the terwayd e2e tests: a pod
// network namespace the test owns (removed also when the test fails), and
// the real `terway` plugin exec'd inside the node's namespace with the CNI
// environment and the network configuration on stdin.
#pragma once

#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "e2e/harness/world.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::testing {

struct PodNs {
  std::string name;
  std::string pod;
  ~PodNs() {
    if (!name.empty()) (void)netlink::DeleteNamedNetns(name);
  }
  std::string path() const { return "/var/run/netns/" + name; }
};

// What a network configuration adds to the defaults (e.g. eniip_virtual_type).
struct CniConf {
  std::string version = "1.0.0";
  const nlohmann::json* prev_result = nullptr;  // the ADD result a runtime passes to CHECK (and DEL)
  nlohmann::json extra = nlohmann::json::object();
};

inline CommandResult CniExec(const std::string& command, TerwaydNode* node, const PodNs& ns,
                             const CniConf& cc = {}) {
  nlohmann::json c{{"cniVersion", cc.version}, {"name", "terway"}, {"type", "terway"}, {"daemon_socket", node->socket()}};
  if (cc.prev_result) c["prevResult"] = *cc.prev_result;
  for (const auto& [k, v] : cc.extra.items()) c[k] = v;
  std::string conf = c.dump();
  return RunCommand({"/usr/bin/env", "CNI_COMMAND=" + command, "CNI_CONTAINERID=ctr-" + ns.pod,
                     "CNI_NETNS=" + ns.path(), "CNI_IFNAME=eth0",
                     "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=e2e;K8S_POD_NAME=" + ns.pod,
                     "CNI_PATH=" + BinaryDir() + "/cmd/terway", BinaryPath("terway")},
                    node->netns(), std::chrono::seconds(90), conf);
}

// Creates the pod's namespace and runs ADD; the pod IP, or "" (with a test
// failure recorded) when ADD failed. *result gets the plugin's stdout.
inline std::string AddPod(TerwaydNode* node, const std::string& world, PodNs* ns, const std::string& pod,
                          nlohmann::json* result = nullptr, const CniConf& cc = {}) {
  ns->pod = pod;
  ns->name = world + "-" + pod;
  Status st = netlink::CreateNamedNetns(ns->name);
  EXPECT_TRUE(st.ok()) << st.error().ToString();
  auto r = CniExec("ADD", node, *ns, cc);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return "";
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  if (j.is_discarded() || !j.contains("ips") || j["ips"].empty()) {
    ADD_FAILURE() << "no IP in the ADD result: " << r.output;
    return "";
  }
  if (result) *result = j;
  std::string addr = j["ips"][0]["address"];
  return addr.substr(0, addr.find('/'));
}

inline bool Ping(const std::string& from_ns, const std::string& ip) {
  return RunCommand({"/usr/bin/ping", "-c", "2", "-W", "2", "-q", ip}, from_ns, std::chrono::seconds(20))
             .exit_code == 0;
}

// The first IPv4 address of eth0 in a namespace (a VPC host's own IP).
inline std::string Eth0Ip(const std::string& ns) {
  auto r = RunCommand({"/usr/sbin/ip", "-4", "-o", "addr", "show", "dev", "eth0"}, ns);
  auto at = r.output.find("inet ");
  if (at == std::string::npos) return "";
  std::string ip = r.output.substr(at + 5);
  return ip.substr(0, ip.find('/'));
}

}  // namespace terway::testing
