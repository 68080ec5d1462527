#include "ebpf/endpoint.h"

#include <arpa/inet.h>

#include <gtest/gtest.h>

namespace terway::ebpf {
namespace {

Endpoint Sample() {
  Endpoint ep;
  ep.ip = *Ipv4Addr::Parse("198.18.0.20");
  ep.host_ifindex = 7;
  ep.eni_ifindex = 3;
  ep.gateway = *Ipv4Addr::Parse("198.18.0.1");
  ep.pod_mac = *MacAddr::Parse("02:00:00:00:00:14");
  ep.host_mac = *MacAddr::Parse("ee:ee:ee:ee:ee:07");
  ep.shaped = true;
  return ep;
}

TEST(EbpfEndpoint, AbiRoundTripKeepsEveryFieldInNetworkOrder) {
  Endpoint ep = Sample();
  terway_dp_endpoint v = ToAbi(ep);
  EXPECT_EQ(v.host_ifindex, 7u);
  EXPECT_EQ(v.eni_ifindex, 3u);
  const auto* gw = reinterpret_cast<const uint8_t*>(&v.gateway);
  EXPECT_EQ(gw[0], 198);  // as the IP header carries it
  EXPECT_EQ(gw[3], 1);
  EXPECT_EQ(v.flags, TERWAY_DP_EP_SHAPED);
  EXPECT_EQ(v.pod_mac[5], 0x14);
  EXPECT_EQ(v.host_mac[5], 0x07);
  uint32_t key = EndpointKey(ep.ip);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(&key)[3], 20);
  EXPECT_EQ(FromAbi(key, v), ep);
  ep.shaped = false;
  EXPECT_EQ(ToAbi(ep).flags, 0u);
}

TEST(EbpfEndpoint, ValidateNamesTheMissingField) {
  EXPECT_TRUE(Validate(Sample()).ok());
  auto bad = [](auto mutate) {
    Endpoint ep = Sample();
    mutate(ep);
    Status s = Validate(ep);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : s.error().ToString();
  };
  EXPECT_NE(bad([](Endpoint& e) { e.host_ifindex = 0; }).find("host veth"), std::string::npos);
  EXPECT_NE(bad([](Endpoint& e) { e.eni_ifindex = -1; }).find("ENI"), std::string::npos);
  EXPECT_NE(bad([](Endpoint& e) { e.gateway = Ipv4Addr(); }).find("gateway"), std::string::npos);
  EXPECT_NE(bad([](Endpoint& e) { e.pod_mac = MacAddr(); }).find("MAC"), std::string::npos);
  EXPECT_NE(bad([](Endpoint& e) { e.ip = Ipv4Addr(); }).find("pod IP"), std::string::npos);
}

TEST(EbpfEndpoint, StackPrefixKeysAreLpmKeys) {
  auto c = *Ipv4Cidr::Parse("10.96.0.0/12");
  terway_dp_stack_key k = ToAbi(c);
  EXPECT_EQ(k.prefixlen, 12u);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(&k.addr)[0], 10);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(&k.addr)[1], 96);
  auto back = FromAbi(k, TERWAY_DP_STACK_SERVICE);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->prefix, c);
  EXPECT_EQ(back->kind, StackPrefixKind::kService);
  EXPECT_FALSE(FromAbi(terway_dp_stack_key{33, 0}, TERWAY_DP_STACK_NODE).ok());
  EXPECT_FALSE(FromAbi(k, 0).ok()) << "an unknown kind is not silently accepted";
  auto builtin = BuiltinStackPrefixes();
  ASSERT_EQ(builtin.size(), 1u);
  EXPECT_EQ(builtin[0].prefix.ToString(), "100.100.100.200/32");
}

TEST(EbpfEndpoint, CountersSumOverCpus) {
  std::vector<std::vector<uint64_t>> per_cpu(TERWAY_DP_CNT_MAX, std::vector<uint64_t>{0, 0});
  per_cpu[TERWAY_DP_CNT_POD_TO_POD] = {2, 3};
  per_cpu[TERWAY_DP_CNT_DROP_SPOOF] = {0, 4};
  per_cpu[TERWAY_DP_CNT_ENI_TO_POD] = {1, 1};
  per_cpu[TERWAY_DP_CNT_CT_TO_STACK] = {7, 0};
  per_cpu[TERWAY_DP_CNT_CT_UNKNOWN_TO_STACK] = {0, 9};
  Counters c = SumCounters(per_cpu);
  EXPECT_EQ(c.ct_to_stack, 7u);
  EXPECT_EQ(c.ct_unknown_to_stack, 9u);
  EXPECT_NE(ToString(c).find("conntrack-tracked 7"), std::string::npos);
  EXPECT_EQ(c.pod_to_pod, 5u);
  EXPECT_EQ(c.drop_spoof, 4u);
  EXPECT_EQ(c.eni_to_pod, 2u);
  EXPECT_EQ(c.pod_to_eni, 0u);
  EXPECT_NE(ToString(c).find("spoof-drops 4"), std::string::npos);
  EXPECT_EQ(SumCounters({}).pod_to_pod, 0u) << "a short read is zeros, not a crash";
}

}  // namespace
}  // namespace terway::ebpf
