// Hostile input never crashes or throws: seeded random mutations of valid
// frames and configurations go through every decoder. (The seed is fixed so
// a failure reproduces; the mutation count keeps the test well under 1 s.)
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cni/config.h"
#include "cni/protocol.h"
#include "cni/result.h"

namespace terway::cni {
namespace {

std::string Mutate(std::string s, std::mt19937& rng) {
  static const char kAlphabet[] = "{}[]\",:0123456789-.eE truefalsnul\\\n\xff";
  std::uniform_int_distribution<int> op(0, 3);
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits && !s.empty(); i++) {
    size_t pos = rng() % s.size();
    char c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
    switch (op(rng)) {
      case 0: s[pos] = c; break;
      case 1: s.insert(s.begin() + static_cast<long>(pos), c); break;
      case 2: s.erase(pos, 1 + rng() % 8); break;
      default: s = s.substr(0, pos); break;
    }
  }
  return s;
}

TEST(Robustness, RandomlyMutatedInputs) {
  protocol::Request req;
  req.op = protocol::Op::kAllocate;
  req.container_id = "c1";
  req.pod = protocol::PodRef{"ns", "p", "u", ""};
  req.bandwidth = Bandwidth{1, 2, 3, 4};
  req.network = protocol::NetworkOptions{"terway", "veth", 1500, "172.21.0.0/20", {"10.0.0.0/8"}};
  CniResult res;
  res.interfaces.push_back(Interface{"eth0", "02:00:00:00:00:02", "/ns", 1500});
  res.ips.push_back(IpConfig{"198.18.0.10/32", "169.254.1.1", 0});
  res.routes.push_back(Route{"0.0.0.0/0", "169.254.1.1", 1500, {}, {}, {}, {}});
  req.prev_result = res;
  protocol::Reply reply;
  reply.result = res;
  reply.status = protocol::DaemonStatus{true, true, ""};
  const std::string seeds[] = {
      protocol::EncodeRequest(req),
      protocol::EncodeReply(reply),
      R"({"cniVersion":"1.1.0","name":"terway","type":"terway","mtu":1500,"service_cidr":"172.21.0.0/20",
          "host_stack_cidrs":["10.0.0.0/8"],"runtimeConfig":{"bandwidth":{"ingressRate":1,"ingressBurst":2}},
          "cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],
          "prevResult":)" + RenderResult(res, SpecVersion::k040).dump() + "}",
  };
  std::mt19937 rng(20261125);
  int decoded = 0;
  for (int i = 0; i < 3000; i++) {
    std::string input = Mutate(seeds[i % 3], rng);
    // Each decoder either succeeds or returns an Error; an exception fails
    // the test (gtest reports it), a crash kills it.
    decoded += protocol::DecodeRequest(input).ok();
    decoded += protocol::DecodeReply(input).ok();
    auto j = DecodeConfigJson(input);
    if (j.ok()) {
      decoded += ParseNetConf(*j).ok();
      decoded += ParseResult(*j).ok();
    }
  }
  // Some mutations stay valid (e.g. a changed digit); if none did, the
  // mutator would be testing nothing but the JSON parser.
  EXPECT_GT(decoded, 0);
}

}  // namespace
}  // namespace terway::cni
