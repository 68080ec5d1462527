// The emulated VPC's real Linux fabric (LinuxFabric, no vpcsim server) for the
// datapath root tests: one vSwitch 198.18.1.0/24 with its gateway at .253,
// instances whose ENIs are veths to the VPC router. The router delivers an IP
// only to the ENI holding it and drops packets whose source the ENI does not
// hold. The world and every pod namespace are removed whatever happens.
#pragma once

#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "datapath/shared_eni.h"
#include "netlink/netns.h"
#include "test_util.h"
#include "tools/vpcsim/fabric/linux_fabric.h"

namespace terway::datapath::vpc_world {

inline Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }

inline vpcsim::FabricEni Eni(const char* id, const char* mac, std::vector<const char*> ips) {
  vpcsim::FabricEni e{id, MacAddr::Parse(mac).value(), "vsw-one", {}};
  for (auto* ip : ips) e.ips.push_back(Ip(ip));
  return e;
}

inline bool PingOnce(const std::string& ns, const std::string& dst) {
  int rc = std::system(("ip netns exec " + ns + " ping -n -q -c 1 -W 1 " + dst + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

// Waits up to 8 s for a reply (the first packets also resolve neighbours).
inline bool PingFrom(const std::string& ns, const std::string& dst) {
  using namespace std::chrono_literals;
  auto end = std::chrono::steady_clock::now() + 8s;
  do {
    if (PingOnce(ns, dst)) return true;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < end);
  return false;
}

struct VpcWorld {
  explicit VpcWorld(const std::string& prefix) : fabric(prefix + s) {}
  std::string s = testing::UniqueSuffix();
  vpcsim::LinuxFabric fabric;
  std::vector<std::string> pod_netns;
  ~VpcWorld() {
    for (const auto& ns : pod_netns) (void)netlink::DeleteNamedNetns(ns);
    Status d = fabric.Destroy();
    EXPECT_TRUE(d.ok()) << d.error().ToString();
  }
};

// The metadata service's answer for every ENI of the vSwitch.
inline Result<EniNetwork> VSwitchOne(const std::string&, const MacAddr&) {
  return EniNetwork{Ip("198.18.1.253"), Ipv4Cidr::Parse("198.18.1.0/24").value()};
}

}  // namespace terway::datapath::vpc_world
