// The eBPF datapath's pure parts: which flavour a network's
// eniip_virtual_type asks for, the endpoint entry a pod gets, when a pod is
// shaped, the policy map's writes, and the node's host-stack prefixes.
#include "datapath/ebpf_eni.h"

#include <gtest/gtest.h>

namespace terway::datapath {
namespace {

TEST(ParseVirtualType, UpstreamSpellingsInAnyCase) {
  for (const char* t : {"", "veth", "Veth", "VETH"}) {
    auto v = ParseVirtualType(t);
    ASSERT_TRUE(v.ok()) << t;
    EXPECT_EQ(*v, VirtualType::kVeth) << t;
  }
  for (const char* t : {"IPVlan", "ipvlan", "IPVLAN", "datapathv2", "Datapathv2", "DataPathV2"}) {
    auto v = ParseVirtualType(t);
    ASSERT_TRUE(v.ok()) << t;
    EXPECT_EQ(*v, VirtualType::kEbpf) << t;
  }
}

TEST(ParseVirtualType, OthersAreNamedErrors) {
  auto v = ParseVirtualType("macvlan");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(v.error().message.find("macvlan"), std::string::npos) << v.error().message;
  EXPECT_NE(v.error().message.find("IPVlan"), std::string::npos) << v.error().message;
}

TEST(EndpointFor, CarriesEveryFact) {
  EndpointFacts f{7, MacAddr::Parse("ee:ee:ee:ee:ee:01").value(), MacAddr::Parse("02:00:00:00:00:14").value(), 3,
                  Ipv4Addr::Parse("198.18.0.253").value()};
  ebpf::Endpoint ep = EndpointFor(Ipv4Addr::Parse("198.18.0.10").value(), f, true);
  EXPECT_EQ(ep.ip.ToString(), "198.18.0.10");
  EXPECT_EQ(ep.host_ifindex, 7);
  EXPECT_EQ(ep.eni_ifindex, 3);
  EXPECT_EQ(ep.gateway.ToString(), "198.18.0.253");
  EXPECT_EQ(ep.host_mac.ToString(), "ee:ee:ee:ee:ee:01");
  EXPECT_EQ(ep.pod_mac.ToString(), "02:00:00:00:00:14");
  EXPECT_TRUE(ep.shaped);
  EXPECT_TRUE(ebpf::Validate(ep).ok());
}

TEST(DescribeEndpointDifference, NamesEachDifferingField) {
  EndpointFacts f{7, MacAddr::Parse("ee:ee:ee:ee:ee:01").value(), MacAddr::Parse("02:00:00:00:00:14").value(), 3,
                  Ipv4Addr::Parse("198.18.0.253").value()};
  const auto ip = Ipv4Addr::Parse("198.18.0.10").value();
  ebpf::Endpoint want = EndpointFor(ip, f, true);
  EXPECT_EQ(DescribeEndpointDifference(want, want), "");
  f.host_ifindex = 9;
  ebpf::Endpoint have = EndpointFor(ip, f, false);
  EXPECT_EQ(DescribeEndpointDifference(have, want), "host_ifindex 9, want 7; shaped false, want true");
}

std::vector<std::string> Strings(const std::vector<Ipv4Addr>& ips) {
  std::vector<std::string> out;
  for (const auto& ip : ips) out.push_back(ip.ToString());
  return out;
}

// Before the chains: only additions (the map may keep extras, which are
// policed: the safe side). After: exactly the set.
TEST(PlanPolicyMap, BeforeTheChainsOnlyAddsAfterThemMakesItExact) {
  auto ip = [](const char* s) { return Ipv4Addr::Parse(s).value(); };
  const std::set<Ipv4Addr> in_map = {ip("198.18.0.10"), ip("198.18.0.11")};
  const std::set<Ipv4Addr> isolated = {ip("198.18.0.11"), ip("198.18.0.12")};
  PolicyMapPlan before = PlanPolicyMap(in_map, isolated, false);
  EXPECT_EQ(Strings(before.add), std::vector<std::string>{"198.18.0.12"});
  EXPECT_TRUE(before.remove.empty()) << "an extra goes only once its chain left the kernel";
  PolicyMapPlan after = PlanPolicyMap(in_map, isolated, true);
  EXPECT_EQ(Strings(after.add), std::vector<std::string>{"198.18.0.12"}) << "also repairs a missed addition";
  EXPECT_EQ(Strings(after.remove), std::vector<std::string>{"198.18.0.10"});
  PolicyMapPlan same = PlanPolicyMap(isolated, isolated, true);
  EXPECT_TRUE(same.add.empty() && same.remove.empty()) << "idempotent: nothing to write";
}

TEST(WithPodStackPrefixes, AddsThePodsNetworkOnceAndKeepsAKnownServiceCidr) {
  NodeStackFacts known;
  known.service_cidr = Ipv4Cidr::Parse("172.16.0.0/16").value();
  known.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value()};
  PodNetwork pod;
  pod.service_cidr = Ipv4Cidr::Parse("172.21.0.0/20").value();
  pod.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value(), Ipv4Cidr::Parse("10.9.0.0/16").value()};
  NodeStackFacts got = WithPodStackPrefixes(known, pod);
  EXPECT_EQ(got.service_cidr->ToString(), "172.16.0.0/16") << "the configured one wins";
  ASSERT_EQ(got.host_stack_cidrs.size(), 2u);
  EXPECT_EQ(got.host_stack_cidrs[1].ToString(), "10.9.0.0/16");
  NodeStackFacts none;
  EXPECT_EQ(WithPodStackPrefixes(none, pod).service_cidr->ToString(), "172.21.0.0/20");
}

TEST(NodeStackPrefixes, FromConfigAndNodeAddressesOnceEachSorted) {
  NodeStackFacts f;
  f.service_cidr = Ipv4Cidr::Parse("172.16.0.0/16").value();
  f.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value(), Ipv4Cidr::Parse("172.16.0.0/16").value()};
  f.node_ips = {Ipv4Addr::Parse("10.0.0.5").value(), Ipv4Addr::Parse("10.0.0.6").value(),
                Ipv4Addr::Parse("10.0.0.5").value()};
  auto p = NodeStackPrefixes(f);
  std::vector<std::string> got;
  for (const auto& s : p) got.push_back(s.prefix.ToString() + " " + ebpf::StackPrefixKindName(s.kind));
  std::vector<std::string> want;
  std::vector<ebpf::StackPrefix> expect = {
      {Ipv4Cidr::Parse("10.0.0.5/32").value(), ebpf::StackPrefixKind::kNode},
      {Ipv4Cidr::Parse("10.0.0.6/32").value(), ebpf::StackPrefixKind::kNode},
      {Ipv4Cidr::Parse("169.254.20.10/32").value(), ebpf::StackPrefixKind::kHostCidr},
      {Ipv4Cidr::Parse("172.16.0.0/16").value(), ebpf::StackPrefixKind::kService}};
  std::sort(expect.begin(), expect.end());
  for (const auto& s : expect) want.push_back(s.prefix.ToString() + " " + ebpf::StackPrefixKindName(s.kind));
  EXPECT_EQ(got, want);
  EXPECT_TRUE(NodeStackPrefixes(NodeStackFacts{}).empty()) << "the builtins are the loader's";
}

// A restart must not forget what the earlier run learned from pods'
// networks: running pods' Service traffic would leave through their ENI.
TEST(KeepLearnedStackPrefixes, ARestartKeepsTheLearnedServiceCidrAndHostCidrs) {
  auto cidr = [](const char* t) { return Ipv4Cidr::Parse(t).value(); };
  std::vector<ebpf::StackPrefix> in_map = {{cidr("172.21.0.0/20"), ebpf::StackPrefixKind::kService},
                                           {cidr("169.254.20.10/32"), ebpf::StackPrefixKind::kHostCidr},
                                           {cidr("10.0.0.5/32"), ebpf::StackPrefixKind::kNode},
                                           {cidr("100.100.100.200/32"), ebpf::StackPrefixKind::kMetadata}};
  NodeStackFacts configured;
  configured.node_ips = {Ipv4Addr::Parse("10.0.0.7").value()};
  configured.host_stack_cidrs = {cidr("169.254.20.10/32")};
  NodeStackFacts kept = KeepLearnedStackPrefixes(configured, in_map);
  ASSERT_TRUE(kept.service_cidr.has_value());
  EXPECT_EQ(kept.service_cidr->ToString(), "172.21.0.0/20");
  EXPECT_EQ(kept.host_stack_cidrs.size(), 1u) << "each once";
  ASSERT_EQ(kept.node_ips.size(), 1u) << "node addresses are this run's, not the map's";
  EXPECT_EQ(kept.node_ips[0].ToString(), "10.0.0.7");

  configured.service_cidr = cidr("192.168.0.0/16");
  kept = KeepLearnedStackPrefixes(configured, in_map);
  EXPECT_EQ(kept.service_cidr->ToString(), "192.168.0.0/16") << "the configured Service CIDR wins";
}

}  // namespace
}  // namespace terway::datapath
