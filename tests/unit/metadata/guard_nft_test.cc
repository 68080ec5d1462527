#include "metadata/guard_nft.h"

#include <gtest/gtest.h>

#include "metadata/metadata_guard.h"

namespace terway::metadata {
namespace {

GuardTableSpec Spec() {
  GuardTableSpec s;
  s.metadata_ip = Ipv4Addr::Parse("100.100.100.200").value();
  s.proxy_ip = Ipv4Addr::Parse("169.254.100.200").value();
  s.proxy_port = 80;
  s.guarded_prefixes = {"tw"};
  return s;
}

bool Has(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(MetadataGuardNft, TableSteersPodsFencesTheRestAndHidesTheProxy) {
  GuardMembers m;
  m.exempt_pods = {Ipv4Addr::Parse("198.18.1.7").value(), Ipv4Addr::Parse("198.18.1.3").value()};
  m.guarded_ifaces = {"cali12345"};
  std::string t = RenderGuardTable(Spec(), m);
  // Replaced whole in one transaction (a restart never leaves pods unguarded).
  EXPECT_EQ(t.rfind("add table ip terway_metadata\ndelete table ip terway_metadata\ntable ip terway_metadata {\n", 0),
            0u)
      << t;
  EXPECT_TRUE(Has(t, "elements = { 198.18.1.3, 198.18.1.7 }")) << t;
  EXPECT_TRUE(Has(t, "elements = { \"cali12345\" }")) << t;
  // Exempt pods first, then every pod link is DNAT'd to the proxy.
  size_t exempt = t.find("ip daddr 100.100.100.200 tcp dport 80 ip saddr @exempt_pods return");
  size_t steer = t.find("iifname \"tw*\" ip daddr 100.100.100.200 tcp dport 80 dnat to 169.254.100.200:80");
  ASSERT_NE(exempt, std::string::npos) << t;
  ASSERT_NE(steer, std::string::npos) << t;
  EXPECT_LT(exempt, steer);
  EXPECT_TRUE(Has(t, "iifname @guarded_ifaces ip daddr 100.100.100.200 tcp dport 80 dnat to 169.254.100.200:80"));
  EXPECT_TRUE(Has(t, "type nat hook prerouting priority dstnat; policy accept;"));
  // Everything else from pods to the service is rejected in forward.
  EXPECT_TRUE(Has(t, "type filter hook forward priority filter; policy accept;"));
  EXPECT_TRUE(Has(t, "iifname \"tw*\" ip daddr 100.100.100.200 reject"));
  EXPECT_TRUE(Has(t, "iifname @guarded_ifaces ip daddr 100.100.100.200 reject"));
  // The proxy answers pods' links and lo only.
  EXPECT_TRUE(Has(t, "ip daddr 169.254.100.200 tcp dport 80 iifname \"lo\" accept"));
  EXPECT_TRUE(Has(t, "iifname \"tw*\" ip daddr 169.254.100.200 tcp dport 80 accept"));
  EXPECT_TRUE(Has(t, "iifname @guarded_ifaces ip daddr 169.254.100.200 tcp dport 80 accept"));
  EXPECT_TRUE(Has(t, "    ip daddr 169.254.100.200 drop\n"));
}

TEST(MetadataGuardNft, EmptySetsHaveNoElementsLine) {
  std::string t = RenderGuardTable(Spec(), {});
  EXPECT_FALSE(Has(t, "elements")) << t;
}

TEST(MetadataGuardNft, ElementChangesAreIdempotent) {
  auto ip = Ipv4Addr::Parse("198.18.1.7").value();
  EXPECT_EQ(RenderExemptPod(ip, true), "add element ip terway_metadata exempt_pods { 198.18.1.7 }\n");
  EXPECT_EQ(RenderExemptPod(ip, false),
            "add element ip terway_metadata exempt_pods { 198.18.1.7 }\n"
            "delete element ip terway_metadata exempt_pods { 198.18.1.7 }\n");
  EXPECT_EQ(RenderGuardedInterface("veth1", false),
            "add element ip terway_metadata guarded_ifaces { \"veth1\" }\n"
            "delete element ip terway_metadata guarded_ifaces { \"veth1\" }\n");
  EXPECT_EQ(RenderRemoveGuardTable(), "add table ip terway_metadata\ndelete table ip terway_metadata\n");
}

TEST(MetadataGuardNft, BadNamesAndSpecsAreRefused) {
  for (const char* bad : {"", "sixteen-bytes-xx", "a b", "a\"b", "tw*", "a/b", "a:b"}) {
    EXPECT_FALSE(ValidateInterfaceName(bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateInterfaceName("cali1234567890a").ok());
  GuardTableSpec s = Spec();
  s.guarded_prefixes = {};
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.guarded_prefixes = {"t\"w"};
  EXPECT_FALSE(ValidateSpec(s).ok());
  s = Spec();
  s.proxy_ip = s.metadata_ip;
  EXPECT_FALSE(ValidateSpec(s).ok());
  EXPECT_TRUE(ValidateSpec(Spec()).ok());
}

TEST(MetadataGuardNft, AnnotationExemptsOnlyOnTrue) {
  std::string w;
  EXPECT_TRUE(ExemptByAnnotations({{"k8s.aliyun.com/allow-node-ram-role", "true"}}, &w));
  EXPECT_TRUE(ExemptByAnnotations({{"k8s.aliyun.com/allow-node-ram-role", "True"}}, &w));
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(ExemptByAnnotations({}, &w));
  EXPECT_FALSE(ExemptByAnnotations({{"k8s.aliyun.com/allow-node-ram-role", "false"}}, &w));
  EXPECT_TRUE(w.empty());
  EXPECT_FALSE(ExemptByAnnotations({{"k8s.aliyun.com/allow-node-ram-role", "yes"}}, &w));  // fail closed
  EXPECT_NE(w.find("neither \"true\" nor \"false\""), std::string::npos) << w;
}

}  // namespace
}  // namespace terway::metadata
