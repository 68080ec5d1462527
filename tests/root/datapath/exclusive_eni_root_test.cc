// ExclusiveEniDatapath on the emulated VPC's real Linux fabric (LinuxFabric,
// no vpcsim server): an ENI attached to instance a (a veth to the VPC router,
// down and unconfigured as ECS hot-plugs it) becomes a pod's eth0. The
// router delivers an IP only to the ENI holding it and drops packets whose
// source the ENI does not hold, so the pod reaching instance b proves its
// traffic left through its own ENI; reaching its node's IP proves the veth.
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "datapath/exclusive_eni.h"
#include "datapath/layout.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "qos/annotations.h"
#include "root/datapath/spoof_traffic.h"
#include "root/datapath/vpc_world.h"
#include "root/qos/iperf_meter.h"
#include "test_util.h"

namespace terway::datapath {
namespace {

using namespace std::chrono_literals;
using namespace vpc_world;

class ExclusiveEniRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    ASSERT_OK(w_.fabric.EnsureVpc("vpc-test", Ipv4Cidr::Parse("198.18.0.0/16").value()));
    ASSERT_OK(w_.fabric.EnsureVSwitch({"vsw-one", Ipv4Cidr::Parse("198.18.1.0/24").value(), Ip("198.18.1.253")}));
    ASSERT_OK(w_.fabric.EnsureInstance("i-a", eni_a_));
    ASSERT_OK(w_.fabric.EnsureInstance("i-b", eni_b_));
    ASSERT_OK(w_.fabric.AttachEni("i-a", eni_x_, 1));
    node_a_ = w_.fabric.InstanceNetns("i-a");
    node_b_ = w_.fabric.InstanceNetns("i-b");
    ExclusiveEniOptions o;
    o.host_netns = node_a_;
    o.node_ip = Ip("198.18.1.10");
    o.service_cidr = Ipv4Cidr::Parse("198.19.128.0/20").value();
    o.eni_network = VSwitchOne;
    dp_ = std::make_unique<ExclusiveEniDatapath>(o);
    pod_ns_ = "txp" + w_.s;
    w_.pod_netns.push_back(pod_ns_);
    ASSERT_OK(netlink::CreateNamedNetns(pod_ns_));
    pod_.container_id = "ctr-x-" + w_.s;
    pod_.netns = netlink::NetnsPath(pod_ns_);
    pod_.ifname = "eth0";
    pod_.pod_namespace = "default";
    pod_.pod_name = "x";
    pod_.ip.ip = "198.18.1.40";
    pod_.ip.eni_id = eni_x_.eni_id;
    pod_.ip.eni_mac = eni_x_.mac.ToString();
    pod_.ip.eni_primary_ip = "198.18.1.40";
    pod_.ip.vswitch_id = "vsw-one";
  }

  const vpcsim::FabricEni eni_a_ = Eni("eni-a", "00:16:3e:00:00:0a", {"198.18.1.10"});
  const vpcsim::FabricEni eni_b_ = Eni("eni-b", "00:16:3e:00:00:0b", {"198.18.1.11"});
  const vpcsim::FabricEni eni_x_ = Eni("eni-x", "00:16:3e:00:00:e1", {"198.18.1.40"});
  VpcWorld w_{"tx"};
  std::string node_a_, node_b_, pod_ns_;
  std::unique_ptr<ExclusiveEniDatapath> dp_;
  PodNetwork pod_;
};

TEST_F(ExclusiveEniRoot, EniBecomesThePodsEth0AndGoesBackOnRemove) {
  auto r = dp_->Ensure(pod_);
  ASSERT_OK(r);
  ASSERT_EQ(r->interfaces.size(), 3u);
  EXPECT_EQ(r->interfaces[1].name, "eth0");
  EXPECT_EQ(r->interfaces[1].mac, "00:16:3e:00:00:e1");
  EXPECT_EQ(r->interfaces[1].sandbox, pod_.netns);
  EXPECT_EQ(r->interfaces[2].name, "veth1");
  EXPECT_FALSE(r->interfaces[2].mac.empty());
  ASSERT_EQ(r->ips.size(), 1u);
  EXPECT_EQ(r->ips[0].address, "198.18.1.40/24");
  EXPECT_EQ(r->ips[0].gateway, "198.18.1.253");

  // The ENI left the node and is the pod's eth0.
  auto host = netlink::Handle::OpenIn(node_a_);
  ASSERT_OK(host);
  EXPECT_FALSE(host->GetLinkByMac(eni_x_.mac).ok());
  auto ph = netlink::Handle::OpenIn(pod_.netns);
  ASSERT_OK(ph);
  auto eth0 = ph->GetLink("eth0");
  ASSERT_OK(eth0);
  EXPECT_EQ(eth0->mac, eni_x_.mac);

  EXPECT_TRUE(PingFrom(pod_ns_, "198.18.1.11")) << "pod -> VPC host b through its ENI";
  EXPECT_TRUE(PingFrom(node_b_, "198.18.1.40")) << "VPC host b -> pod";
  EXPECT_TRUE(PingFrom(pod_ns_, "198.18.1.10")) << "pod -> its node through the veth";
  EXPECT_TRUE(PingFrom(node_a_, "198.18.1.40")) << "node -> its pod through the veth";
  // Services go to the node through the veth too; the rest of the VPC not.
  std::string svc = testing::Capture("ip -n " + pod_ns_ + " route get 198.19.128.10");
  EXPECT_NE(svc.find("dev veth1"), std::string::npos) << svc;
  EXPECT_NE(svc.find("src 198.18.1.40"), std::string::npos) << svc;
  std::string vpc = testing::Capture("ip -n " + pod_ns_ + " route get 198.18.1.11");
  EXPECT_NE(vpc.find("dev eth0"), std::string::npos) << vpc;
  ASSERT_OK(dp_->Check(pod_));

  // Idempotent, and Check names what is broken until Ensure repairs it.
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  ASSERT_EQ(std::system(("ip -n " + pod_ns_ + " route del default").c_str()), 0);
  auto broken = dp_->Check(pod_);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().ToString().find("default route"), std::string::npos) << broken.error().ToString();
  ASSERT_EQ(std::system(("ip -n " + node_a_ + " route del 198.18.1.40/32").c_str()), 0);
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  EXPECT_TRUE(PingFrom(pod_ns_, "198.18.1.11")) << "after repair";
  EXPECT_TRUE(PingFrom(node_a_, "198.18.1.40")) << "after repair";

  // Remove: the ENI is back on the node (parked, down, unaddressed), the
  // veth and the host route are gone; twice is fine.
  ASSERT_OK(dp_->Remove(pod_));
  ASSERT_OK(dp_->Remove(pod_));
  auto back = host->GetLinkByMac(eni_x_.mac);
  ASSERT_OK(back);
  EXPECT_EQ(back->name, ParkedEniLinkName("eni-x"));
  EXPECT_FALSE(back->admin_up);
  auto addrs = host->ListAddresses(back->index, AF_INET);
  ASSERT_OK(addrs);
  EXPECT_TRUE(addrs->empty());
  EXPECT_FALSE(host->LinkExists(HostVethName(pod_.container_id)));
  EXPECT_FALSE(ph->GetLinkByMac(eni_x_.mac).ok());
  EXPECT_FALSE(ph->LinkExists("veth1"));
  auto routes = host->ListRoutes(AF_INET, netlink::kMainTable);
  ASSERT_OK(routes);
  for (const auto& rt : *routes) EXPECT_NE(rt.dst.ToString(), "198.18.1.40/32");

  // A parked ENI is taken again by the next Ensure (a pod re-created with
  // the same ENI after a failed ADD, or the restart repair).
  ASSERT_OK(dp_->Ensure(pod_));
  EXPECT_TRUE(PingFrom(pod_ns_, "198.18.1.11")) << "ENI taken again from its parked name";
  ASSERT_OK(dp_->Remove(pod_));
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
  EXPECT_FALSE(host->GetLinkByMac(eni_x_.mac).ok()) << "the detach removes the ENI's link";
}

TEST_F(ExclusiveEniRoot, HostStackCidrsAreReachedThroughTheNode) {
  // node-local DNS: a link-local address on the node. Only a host_stack_cidrs
  // route takes an exclusive-ENI pod there; its default route is the ENI.
  ASSERT_EQ(std::system(("ip -n " + node_a_ + " addr add 169.254.20.10/32 dev lo").c_str()), 0);
  ASSERT_OK(dp_->Ensure(pod_));
  std::string before = testing::Capture("ip -n " + pod_ns_ + " route get 169.254.20.10");
  EXPECT_NE(before.find("dev eth0"), std::string::npos) << before;
  EXPECT_FALSE(PingOnce(pod_ns_, "169.254.20.10")) << "without the route the VPC has no such address";

  pod_.host_stack_cidrs = {Ipv4Cidr::Parse("169.254.20.10/32").value(), Ipv4Cidr::Parse("172.31.0.0/16").value()};
  auto broken = dp_->Check(pod_);
  ASSERT_FALSE(broken.ok()) << "Check wants the routes Ensure would add";
  EXPECT_NE(broken.error().ToString().find("169.254.20.10/32"), std::string::npos) << broken.error().ToString();
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  std::string after = testing::Capture("ip -n " + pod_ns_ + " route get 169.254.20.10");
  EXPECT_NE(after.find("dev veth1"), std::string::npos) << after;
  EXPECT_NE(after.find("src 198.18.1.40"), std::string::npos) << after;
  EXPECT_TRUE(PingFrom(pod_ns_, "169.254.20.10")) << "pod -> node-local address through the veth";
  std::string other = testing::Capture("ip -n " + pod_ns_ + " route get 172.31.5.5");
  EXPECT_NE(other.find("dev veth1"), std::string::npos) << other;
  std::string vpc = testing::Capture("ip -n " + pod_ns_ + " route get 198.18.1.11");
  EXPECT_NE(vpc.find("dev eth0"), std::string::npos) << "the VPC stays on the ENI: " << vpc;

  // Remove takes the routes with the veth.
  ASSERT_OK(dp_->Remove(pod_));
  auto ph = netlink::Handle::OpenIn(pod_.netns);
  ASSERT_OK(ph);
  auto routes = ph->ListRoutes(AF_INET, netlink::kMainTable);
  ASSERT_OK(routes);
  for (const auto& rt : *routes) EXPECT_NE(rt.dst.ToString(), "172.31.0.0/16");
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
}

// An exclusive-ENI pod would read the metadata service through its own ENI,
// which the service attributes to the node: a pod the node's metadata guard
// covers reaches 100.100.100.200 through its veth instead, and an exempt one
// keeps its ENI.
TEST_F(ExclusiveEniRoot, GuardedPodsReachTheMetadataServiceThroughTheNode) {
  ASSERT_OK(dp_->Ensure(pod_));
  std::string direct = testing::Capture("ip -n " + pod_ns_ + " route get 100.100.100.200");
  EXPECT_NE(direct.find("dev eth0"), std::string::npos) << "an exempt pod uses its ENI: " << direct;

  pod_.metadata_via_node = true;
  auto broken = dp_->Check(pod_);
  ASSERT_FALSE(broken.ok()) << "Check wants the route Ensure would add";
  EXPECT_NE(broken.error().ToString().find("100.100.100.200/32"), std::string::npos) << broken.error().ToString();
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  std::string guarded = testing::Capture("ip -n " + pod_ns_ + " route get 100.100.100.200");
  EXPECT_NE(guarded.find("dev veth1"), std::string::npos) << guarded;
  EXPECT_NE(guarded.find("src 198.18.1.40"), std::string::npos) << guarded;
  ASSERT_OK(dp_->Remove(pod_));
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
}

TEST_F(ExclusiveEniRoot, BandwidthShapesTheVpcTrafficOnThePodsOwnEni) {
  // 20 Mbit/s out of the pod, 10 Mbit/s into it: on the ENI the pod sends
  // through its root qdisc and receives through an IFB in its namespace.
  cni::Bandwidth bw;
  bw.ingress_rate = 10'000'000;
  bw.ingress_burst = qos::DefaultBurstBits(bw.ingress_rate);
  bw.egress_rate = 20'000'000;
  bw.egress_burst = qos::DefaultBurstBits(bw.egress_rate);
  pod_.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  auto ph = netlink::Handle::OpenIn(pod_.netns);
  ASSERT_OK(ph);
  auto eth0 = ph->GetLink("eth0");
  ASSERT_OK(eth0);
  auto out_tbf = ph->GetRootTbf(eth0->index);
  ASSERT_OK(out_tbf);
  ASSERT_TRUE(out_tbf->has_value()) << "no tbf at the ENI's root";
  EXPECT_EQ((*out_tbf)->rate_bytes_per_sec, 20'000'000u / 8);
  auto ifb = ph->GetLink(PodIfbName(pod_.container_id));
  ASSERT_OK(ifb);
  auto in_tbf = ph->GetRootTbf(ifb->index);
  ASSERT_OK(in_tbf);
  ASSERT_TRUE(in_tbf->has_value());
  EXPECT_EQ((*in_tbf)->rate_bytes_per_sec, 10'000'000u / 8);

  // Real traffic between the pod and a VPC host, through the ENI.
  testing::IperfServer server;
  ASSERT_OK(server.Start(node_b_, 5201));
  auto sent = testing::IperfShapedRate(pod_ns_, "198.18.1.11", server, /*reverse=*/false, 20e6, 1);
  ASSERT_OK(sent);
  EXPECT_NEAR(*sent / 1e6, 20.0, 2.0) << "pod -> VPC, Mbit/s";
  auto got = testing::IperfShapedRate(pod_ns_, "198.18.1.11", server, /*reverse=*/true, 10e6, 1);
  ASSERT_OK(got);
  EXPECT_NEAR(*got / 1e6, 10.0, 1.0) << "VPC -> pod, Mbit/s";
  server.Stop();

  // Check finds an ENI shaped otherwise, Ensure puts it right; dropping the
  // limit frees the ENI.
  ASSERT_EQ(std::system(("ip netns exec " + pod_ns_ +
                         " tc qdisc replace dev eth0 root tbf rate 5mbit burst 32kbit latency 50ms").c_str()),
            0);
  auto stale = dp_->Check(pod_);
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().ToString().find("on the ENI"), std::string::npos) << stale.error().ToString();
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  pod_.bandwidth.reset();
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  auto none = ph->GetRootTbf(eth0->index);
  ASSERT_OK(none);
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(ph->LinkExists(PodIfbName(pod_.container_id)));

  // DEL of a shaped pod leaves no IFB in the pod and no tbf on the parked ENI.
  pod_.bandwidth = bw;
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_TRUE(ph->LinkExists(PodIfbName(pod_.container_id)));
  ASSERT_OK(dp_->Remove(pod_));
  EXPECT_FALSE(ph->LinkExists(PodIfbName(pod_.container_id)));
  auto host = netlink::Handle::OpenIn(node_a_);
  ASSERT_OK(host);
  auto parked = host->GetLinkByMac(eni_x_.mac);
  ASSERT_OK(parked);
  auto parked_tbf = host->GetRootTbf(parked->index);
  ASSERT_OK(parked_tbf);
  EXPECT_FALSE(parked_tbf->has_value());
  EXPECT_FALSE(host->LinkExists(PodIfbName(pod_.container_id)));
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
}

TEST_F(ExclusiveEniRoot, RemoveAfterThePodNetnsIsGoneSucceedsAndGcCollectsTheVeth) {
  ASSERT_OK(dp_->Ensure(pod_));
  // The sandbox is destroyed without a DEL: the ENI's link (a veth here)
  // goes with it; the host veth goes too (its peer was in the pod).
  ASSERT_OK(netlink::DeleteNamedNetns(pod_ns_));
  ASSERT_OK(dp_->Remove(pod_));
  ASSERT_OK(dp_->Remove(pod_));
  auto host = netlink::Handle::OpenIn(node_a_);
  ASSERT_OK(host);
  EXPECT_FALSE(host->LinkExists(HostVethName(pod_.container_id)));
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));

  // GC: a host veth of a container nobody knows is removed, a live one kept.
  ASSERT_OK(w_.fabric.AttachEni("i-a", eni_x_, 1));
  ASSERT_OK(netlink::CreateNamedNetns(pod_ns_));
  ASSERT_OK(dp_->Ensure(pod_));
  auto kept = dp_->CollectGarbage({pod_.container_id});
  ASSERT_OK(kept);
  EXPECT_TRUE(kept->empty());
  EXPECT_TRUE(host->LinkExists(HostVethName(pod_.container_id)));
  auto removed = dp_->CollectGarbage({});
  ASSERT_OK(removed);
  // The veth, then its anti-spoofing element (its interface is gone).
  ASSERT_EQ(removed->size(), 2u);
  EXPECT_NE((*removed)[0].find("link " + HostVethName(pod_.container_id)), std::string::npos) << (*removed)[0];
  EXPECT_NE((*removed)[1].find("anti-spoofing element " + HostVethName(pod_.container_id) + " . 198.18.1.40"),
            std::string::npos)
      << (*removed)[1];
  EXPECT_FALSE(host->LinkExists(HostVethName(pod_.container_id)));
  auto table = AntiSpoofTable(node_a_).List();
  ASSERT_OK(table);
  EXPECT_TRUE(table->allowed.empty());
  ASSERT_OK(dp_->Remove(pod_));
}

// The veth carries node and Service traffic with the pod's source: a pod
// must not reach its node (kubelet, hostNetwork pods, node ports) under
// another address. Its VPC traffic leaves through its own ENI, where the VPC
// checks the source (the fabric's router does, as the real VPC).
TEST_F(ExclusiveEniRoot, ForgedSourcesThroughTheVethToTheNodeAreDropped) {
  ASSERT_OK(dp_->Ensure(pod_));
  AntiSpoofTable table(node_a_);
  auto before = table.ReadDrops();
  ASSERT_OK(before);
  testing::UdpReceiver node;
  ASSERT_OK(node.Open(node_a_, 7002));
  const Ipv4Addr pod_ip = Ip("198.18.1.40"), node_ip = Ip("198.18.1.10");
  const Ipv4Addr forged = Ip("198.18.1.11");  // instance b: a node the pod's own would trust
  std::string route = testing::Capture("ip -n " + pod_ns_ + " route get 198.18.1.10");
  ASSERT_NE(route.find("dev veth1"), std::string::npos) << "the node is reached through the veth: " << route;

  // Forged first, honest after on the same path: once the honest ones are
  // in, forged ones that passed would be too.
  ASSERT_OK(testing::SendForgedUdp(pod_ns_, forged, node_ip, 7002, 5));
  ASSERT_OK(testing::SendForgedUdp(pod_ns_, pod_ip, node_ip, 7002, 5));
  EXPECT_EQ(node.WaitFor(pod_ip, 5), 5) << "the pod's own source passes";
  EXPECT_EQ(node.From(forged), 0) << "the node received a forged source from the pod";
  auto after = table.ReadDrops();
  ASSERT_OK(after);
  EXPECT_EQ((*after)[0].family, "ipv4");
  EXPECT_EQ((*after)[0].packets - (*before)[0].packets, 5u);

  // Without its element the pod is cut off (fail closed); Check says so and
  // Ensure repairs it.
  ASSERT_OK(table.Revoke(HostVethName(pod_.container_id), {netlink::InetAddr(pod_ip)}));
  auto broken = dp_->Check(pod_);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().ToString().find("anti-spoofing"), std::string::npos) << broken.error().ToString();
  EXPECT_FALSE(PingOnce(pod_ns_, "198.18.1.10")) << "a guarded veth without an element passes nothing";
  ASSERT_OK(dp_->Ensure(pod_));
  ASSERT_OK(dp_->Check(pod_));
  EXPECT_TRUE(PingFrom(pod_ns_, "198.18.1.10")) << "after repair";

  ASSERT_OK(dp_->Remove(pod_));
  auto left = table.List();
  ASSERT_OK(left);
  EXPECT_TRUE(left->allowed.empty()) << "Remove takes the pod's element";
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
}

TEST_F(ExclusiveEniRoot, EnsureRefusesAnEniThatIsNotAttached) {
  ASSERT_OK(w_.fabric.DetachEni("i-a", "eni-x"));
  auto r = dp_->Ensure(pod_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("attached"), std::string::npos) << r.error().ToString();
  auto ph = netlink::Handle::OpenIn(pod_.netns);
  ASSERT_OK(ph);
  EXPECT_FALSE(ph->LinkExists("veth1")) << "a failed Ensure leaves nothing in the pod";
}

}  // namespace
}  // namespace terway::datapath
