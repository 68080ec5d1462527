// Calico matches only the kernel can prove, with real packets across the
// fixture's node (policy_root_fixture.h): ICMP type and code (ping), IP
// protocol numbers (raw sockets), source ports and source notPorts (UDP from
// chosen ports), a tier's Pass into the next tier and its default deny, and
// a notSelector rendered as "not in set". Each flow is also asked of
// Explain on the same compiled model: the two must agree.
#include <sys/socket.h>

#include <cstring>

#include "policy_root_fixture.h"

namespace terway::policy {
namespace {

using ::terway::testing::Capture;
using ::terway::testing::L4;
using ::terway::testing::ProbeOne;
using testing::PolicyNftRoot;
using testing::Sh;
using testing::TestPod;

// One raw IP packet of protocol `proto` from `from` to `to`: true when a raw
// socket of that protocol in `to` received it (with our token) within 1 s.
bool RawDelivered(const TestPod& from, const TestPod& to, int proto) {
  static std::atomic<int> seq{0};
  const std::string token = fmt::format("terway-raw-{}-{}", getpid(), seq++);
  auto ready = std::make_shared<std::promise<bool>>();
  auto listening = ready->get_future();
  std::atomic<bool> got{false};
  auto rx = netlink::SpawnInNetns(to.netns, [&, ready] {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, proto);
    ready->set_value(fd >= 0);
    if (fd < 0) return;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!got && std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{fd, POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      char buf[2048];
      ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0 && std::string(buf, static_cast<size_t>(n)).find(token) != std::string::npos) got = true;
    }
    close(fd);
  });
  if (!rx.ok() || listening.wait_for(std::chrono::seconds(5)) != std::future_status::ready || !listening.get()) {
    ADD_FAILURE() << "raw receiver for protocol " << proto << " in " << to.netns;
    if (rx.ok()) rx->join();
    return false;
  }
  auto tx = netlink::SpawnInNetns(from.netns, [&] {
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, proto);
    if (fd < 0) return;
    sockaddr_in dst = terway::testing::SockAddr(Ipv4Addr::Parse(to.ip)->value(), 0);
    (void)sendto(fd, token.data(), token.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
    close(fd);
  });
  if (tx.ok()) tx->join();
  rx->join();
  return got;
}

class CalicoNftRoot : public PolicyNftRoot {
 protected:
  // The fixture's pods and namespaces, with no policy.
  PolicyInputs Bare() {
    PolicyInputs in = Inputs();
    in.policies.clear();
    in.tiers = {{"security", 100, false}};
    return in;
  }

  static Policy Parse(const std::string& text) {
    auto p = PolicyFromCalico(nlohmann::json::parse(text));
    EXPECT_TRUE(p.ok()) << p.error().ToString();
    return p.ok() ? *p : Policy{};
  }

  // x/b's ingress in two tiers. security (order 100, default Deny):
  //   0 Pass  TCP, from every address but pods labelled c (not in set)
  //   1 Allow ICMP type/code as given
  //   2 Allow protocol 253
  //   3 Allow UDP from c with source port 1024-65535 but not 40001
  //   4 Pass  UDP from a
  // default: Deny TCP from a, then Allow everything.
  // x/a's egress in both tiers too: security passes everything, default
  // allows everything -- which must `return` to the forward chain so b's
  // ingress still decides (a's TCP to b is denied there).
  PolicyInputs Tiered(const std::string& icmp) {
    PolicyInputs in = Bare();
    in.policies.push_back(Parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"sec"},"spec":{
        "tier":"security","selector":"pod == 'b'","ingress":[
          {"action":"Pass","protocol":"TCP","source":{"notSelector":"pod == 'c'"}},
          {"action":"Allow","protocol":"ICMP","icmp":)js" + icmp + R"js(},
          {"action":"Allow","protocol":253},
          {"action":"Allow","protocol":"UDP","source":{"selector":"pod == 'c'","ports":["1024:65535"],"notPorts":[40001]}},
          {"action":"Pass","protocol":"UDP","source":{"selector":"pod == 'a'"}}]}})js"));
    in.policies.push_back(Parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"sec-eg"},"spec":{
        "tier":"security","selector":"pod == 'a'","egress":[{"action":"Pass"}]}})js"));
    in.policies.push_back(Parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"a-eg","namespace":"x"},"spec":{
        "selector":"pod == 'a'","egress":[{"action":"Allow"}]}})js"));
    in.policies.push_back(Parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"dflt","namespace":"x"},"spec":{
        "selector":"pod == 'b'","ingress":[{"action":"Deny","protocol":"TCP","source":{"selector":"pod == 'a'"}},
                                           {"action":"Allow"}]}})js"));
    return in;
  }

  bool Ping(const TestPod& from, const TestPod& to) {
    return Sh("ip netns exec " + from.netns + " ping -c1 -W1 " + to.ip) == 0;
  }

  // A probe for real and the same packet through Explain.
  void Expect(const CompiledPolicy& cp, const char* what, const TestPod& from, const TestPod& to, const Packet& pkt,
              bool got, bool want) {
    EXPECT_EQ(got, want) << what << ": " << from.name << " -> " << to.name << " " << pkt.ToString() << "\n"
                         << Capture("ip netns exec " + node_ + " nft list table inet terway");
    auto e = cp.Explain(from.ns_name + "/" + from.name, to.ns_name + "/" + to.name, pkt);
    ASSERT_TRUE(e.ok()) << e.error().ToString();
    EXPECT_EQ(e->allowed, want) << what << ": Explain disagrees with the kernel\n" << e->ToString();
  }

  void Udp(const CompiledPolicy& cp, const char* what, const TestPod& from, uint16_t sport, bool want) {
    const TestPod& b = Pod("b");
    bool got = ProbeOne({from.netns, L4::kUdp, *Ipv4Addr::Parse(b.ip), 81, sport}, std::chrono::milliseconds(1500));
    Packet p;
    p.protocol = Protocol::kUDP;
    p.source_port = sport;
    p.destination_port = 81;
    Expect(cp, what, from, b, p, got, want);
  }

  void TcpFrom(const CompiledPolicy& cp, const char* what, const TestPod& from, uint16_t sport, bool want) {
    const TestPod& b = Pod("b");
    bool got = ProbeOne({from.netns, L4::kTcp, *Ipv4Addr::Parse(b.ip), 80, sport}, std::chrono::milliseconds(1500));
    Packet p;
    p.source_port = sport;
    p.destination_port = 80;
    Expect(cp, what, from, b, p, got, want);
  }

  void PingB(const CompiledPolicy& cp, const char* what, const TestPod& from, bool want) {
    Packet echo;
    echo.protocol = Protocol::kICMP;
    echo.icmp_type = 8;
    echo.icmp_code = 0;
    Expect(cp, what, from, Pod("b"), echo, Ping(from, Pod("b")), want);
  }

  void RawToB(const CompiledPolicy& cp, const char* what, const TestPod& from, int proto, bool want) {
    Packet p;
    p.protocol = Protocol(static_cast<uint8_t>(proto));
    Expect(cp, what, from, Pod("b"), p, RawDelivered(from, Pod("b"), proto), want);
  }
};

TEST_F(CalicoNftRoot, TiersPassNotInSetPortsProtocolsAndIcmpInTheKernel) {
  // Without policy every probe passes: the probes can tell.
  PolicyCompiler compiler(CompileOptions{"node-1"});
  CompiledPolicy open = compiler.Compile(Bare());
  ASSERT_TRUE(Ping(Pod("a"), Pod("b")));
  ASSERT_TRUE(RawDelivered(Pod("a"), Pod("b"), 254));
  ASSERT_TRUE(ProbeOne({Pod("c").netns, L4::kUdp, *Ipv4Addr::Parse(Pod("b").ip), 81, 1000}, std::chrono::seconds(2)));

  CompiledPolicy cp = compiler.Compile(Tiered(R"({"type":8})"));
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(cp));
  const TestPod& a = Pod("a");
  const TestPod& c = Pod("c");
  // Pass goes on to the next tier, where a's TCP is denied and its UDP
  // allowed: Pass is neither an accept nor a drop. (a's own egress passes
  // and allows both: its chains return, b's ingress decides.)
  TcpFrom(cp, "Pass, then the default tier's Deny", a, 41001, false);
  Udp(cp, "Pass, then the default tier's Allow", a, 41002, true);
  // c is in the notSelector's set: its TCP is not passed; nothing in
  // security allows it, and security's default action denies.
  TcpFrom(cp, "not in set, then security's default Deny", c, 41003, false);
  // Source ports and source notPorts.
  Udp(cp, "source port in 1024-65535", c, 40000, true);
  Udp(cp, "source notPorts 40001", c, 40001, false);
  Udp(cp, "source port below 1024", c, 1000, false);
  // Protocol numbers.
  RawToB(cp, "protocol 253 allowed", a, 253, true);
  RawToB(cp, "protocol 254 not", a, 254, false);
  // ICMP type 8 (echo request): ping works; its reply rides conntrack.
  PingB(cp, "icmp type 8", a, true);

  // Only echo replies (type 0): a ping's request is dropped. Applied as a
  // difference (the handle knows the table).
  cp = compiler.Compile(Tiered(R"({"type":0})"));
  ASSERT_OK(table.Apply(cp));
  PingB(cp, "icmp type 0 lets no echo request in", a, false);
  // Type 8 with code 1: ping's code 0 does not match.
  cp = compiler.Compile(Tiered(R"({"type":8,"code":1})"));
  ASSERT_OK(table.Apply(cp));
  PingB(cp, "icmp type 8 code 1", c, false);
  cp = compiler.Compile(Tiered(R"({"type":8,"code":0})"));
  ASSERT_OK(table.Apply(cp));
  PingB(cp, "icmp type 8 code 0", c, true);
  // The delta kept the kernel equal to the model; a fresh handle (whole
  // replacement) renders the same.
  ASSERT_OK(table.Verify());
  ASSERT_OK(table.Remove());
  EXPECT_EQ(Capture("ip netns exec " + node_ + " nft list ruleset"), "");
}

// notICMP (two nft rules), notProtocol and notPorts on both sides.
TEST_F(CalicoNftRoot, NegationsInTheKernel) {
  PolicyInputs in = Bare();
  in.policies.push_back(Parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"neg","namespace":"x"},"spec":{
      "selector":"pod == 'b'","ingress":[
        {"action":"Deny","notICMP":{"type":8,"code":0}},
        {"action":"Deny","notProtocol":"UDP","source":{"selector":"pod == 'a'"}},
        {"action":"Allow","protocol":"UDP","destination":{"notPorts":[81]}},
        {"action":"Allow","protocol":"ICMP"},
        {"action":"Allow","protocol":"TCP","source":{"notPorts":["1:1023"]}}]}})js"));
  CompiledPolicy cp = PolicyCompiler(CompileOptions{"node-1"}).Compile(in);
  NftPolicyTable table(node_);
  ASSERT_OK(table.Apply(cp));
  const TestPod& a = Pod("a");
  const TestPod& c = Pod("c");
  PingB(cp, "an echo request is not excluded by notICMP {8, 0}", c, true);
  PingB(cp, "ICMP from a is not UDP: denied", a, false);
  TcpFrom(cp, "TCP from a is not UDP: denied", a, 42001, false);
  Udp(cp, "UDP to 81: destination notPorts, then the end", a, 42002, false);
  TcpFrom(cp, "TCP from c from an unprivileged port", c, 42003, true);
  TcpFrom(cp, "TCP from c from port 1000 (source notPorts)", c, 1000, false);
  ASSERT_OK(table.Remove());
}

}  // namespace
}  // namespace terway::policy
