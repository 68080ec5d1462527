// The daemon's CNI service behind its real unix socket server, driven by the
// plugin's real client, on a fake cloud: the protocol end to end without a
// kernel or a cloud.
#include "daemon/cni_service.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "cni/daemon_client.h"
#include "daemon/rpc_server.h"
#include "ipam/exclusive.h"
#include "ipam/pool.h"
#include "qos/annotations.h"
#include "unit/ipam/fake_cloud.h"

namespace terway::daemon {
namespace {

namespace proto = cni::protocol;
using ipam::testing::FakeCloud;

class CniServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/terway-svc-XXXXXX";
    dir_ = mkdtemp(tmpl);
    cloud_ = std::make_unique<FakeCloud>(ipam::InstanceLimits{3, 4}, "i-test",
                                         std::vector<FakeCloud::VSwitchSpec>{{"vsw-a", 100}});
    auto st = store::StateStore::Open(dir_ + "/state.db");
    ASSERT_TRUE(st.ok()) << st.error().ToString();
    store_ = std::move(st).value();
    ipam::PoolOptions po;
    po.instance_id = "i-test";
    po.instance_type = "ecs.test";
    po.vswitch_ids = {"vsw-a"};
    po.config.eni_tags["creator"] = "terway";
    po.config.max_pool_size = 2;
    auto pool = ipam::IpPool::Create(po, cloud_.get(), store_.get(), &RealClock::Instance());
    ASSERT_TRUE(pool.ok()) << pool.error().ToString();
    pool_ = std::move(pool).value();
    pool_->Start();
    service_ = std::make_unique<CniService>(CniServiceOptions{}, pool_.get(), store_.get(), nullptr,
                                            &metrics_);
    RpcServerOptions ro;
    ro.socket_path = dir_ + "/eni.socket";
    server_ = std::make_unique<RpcServer>(ro, service_.get());
    ASSERT_TRUE(server_->Start().ok());
    client_ = cni::MakeUnixDaemonClient(ro.socket_path, std::chrono::seconds(20));
  }
  void TearDown() override {
    server_.reset();
    service_.reset();
    pool_.reset();
    std::filesystem::remove_all(dir_);
  }

  proto::Request Req(proto::Op op, const std::string& cid, const std::string& pod = "web") {
    proto::Request r;
    r.op = op;
    r.container_id = cid;
    r.ifname = "eth0";
    r.netns = "/var/run/netns/none";
    r.pod.namespace_ = "default";
    r.pod.name = pod;
    return r;
  }
  proto::Reply Call(const proto::Request& r) {
    auto reply = client_->Call(r);
    EXPECT_TRUE(reply.ok()) << reply.error().ToString();
    return reply.ok() ? *reply : proto::Reply::Fail(proto::ErrorClass::kInternal, "transport");
  }

  std::string dir_;
  Metrics metrics_;
  std::unique_ptr<FakeCloud> cloud_;
  std::unique_ptr<store::StateStore> store_;
  std::unique_ptr<ipam::IpPool> pool_;
  std::unique_ptr<CniService> service_;
  std::unique_ptr<RpcServer> server_;
  std::unique_ptr<cni::DaemonClient> client_;
};

TEST_F(CniServiceTest, NotReadyRefusesAddAndReportsStatus) {
  auto st = Call(Req(proto::Op::kStatus, ""));
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st.status.has_value());
  EXPECT_FALSE(st.status->ready);
  auto add = Call(Req(proto::Op::kAllocate, "c1"));
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.error->cls, proto::ErrorClass::kUnavailable);
  EXPECT_NE(add.error->message.find("not ready"), std::string::npos);
}

TEST_F(CniServiceTest, AllocateIsIdempotentAndReleaseFreesOnce) {
  service_->SetReady(true);
  auto a1 = Call(Req(proto::Op::kAllocate, "c1"));
  ASSERT_TRUE(a1.ok()) << a1.error->message;
  ASSERT_TRUE(a1.result.has_value());
  ASSERT_EQ(a1.result->ips.size(), 1u);
  auto a2 = Call(Req(proto::Op::kAllocate, "c1"));
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a1.result->ips[0].address, a2.result->ips[0].address);
  EXPECT_EQ(a1.result->ips[0].address.substr(a1.result->ips[0].address.size() - 3), "/32");
  ASSERT_TRUE(a1.eni.has_value());
  EXPECT_NE(a1.eni->id, "eni-primary");  // pods never use the primary ENI's IPs

  auto get = Call(Req(proto::Op::kGet, "c1"));
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get.result->ips[0].address, a1.result->ips[0].address);

  EXPECT_TRUE(Call(Req(proto::Op::kRelease, "c1")).ok());
  auto again = Call(Req(proto::Op::kRelease, "c1"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error->cls, proto::ErrorClass::kNotFound);  // the plugin maps this to success
  auto gone = Call(Req(proto::Op::kGet, "c1"));
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error->cls, proto::ErrorClass::kNotFound);
}

TEST_F(CniServiceTest, ConcurrentPodsGetDistinctIpsUpToMaxPods) {
  service_->SetReady(true);
  // (3 ENIs - 1) x 4 IPs = 8 pods.
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ips;
  int failures = 0;
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([&, i] {
      auto c = cni::MakeUnixDaemonClient(dir_ + "/eni.socket", std::chrono::seconds(20));
      auto r = c->Call(Req(proto::Op::kAllocate, "c" + std::to_string(i), "p" + std::to_string(i)));
      std::lock_guard l(mu);
      if (r.ok() && r->ok()) {
        ips.insert(r->result->ips[0].address);
      } else {
        failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ips.size(), 8u);
  auto ninth = Call(Req(proto::Op::kAllocate, "c9", "p9"));
  ASSERT_FALSE(ninth.ok());
  EXPECT_EQ(ninth.error->cls, proto::ErrorClass::kExhausted) << ninth.error->message;
  EXPECT_NE(ninth.error->message.find("p9"), std::string::npos) << ninth.error->message;
}

TEST_F(CniServiceTest, GcFreesAllocationsTheRuntimeNoLongerKnows) {
  service_->SetReady(true);
  ASSERT_TRUE(Call(Req(proto::Op::kAllocate, "keep", "a")).ok());
  ASSERT_TRUE(Call(Req(proto::Op::kAllocate, "drop", "b")).ok());
  auto gc = Req(proto::Op::kGc, "");
  gc.valid_attachments.push_back({"keep", "eth0"});
  ASSERT_TRUE(Call(gc).ok());
  EXPECT_TRUE(Call(Req(proto::Op::kGet, "keep", "a")).ok());
  auto dropped = Call(Req(proto::Op::kGet, "drop", "b"));
  ASSERT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.error->cls, proto::ErrorClass::kNotFound);
}

TEST_F(CniServiceTest, SocketIsRootOnlyAndASecondServerIsRefused) {
  struct stat st {};
  ASSERT_EQ(stat((dir_ + "/eni.socket").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  RpcServerOptions ro;
  ro.socket_path = dir_ + "/eni.socket";
  RpcServer second(ro, service_.get());
  auto s = second.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kAlreadyExists);
}

TEST_F(CniServiceTest, MalformedFrameGetsAnInvalidReply) {
  auto fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string path = dir_ + "/eni.socket";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  ASSERT_TRUE(cni::WriteFrame(fd, "{not json\n", deadline).ok());
  auto frame = cni::ReadFrame(fd, deadline);
  close(fd);
  ASSERT_TRUE(frame.ok()) << frame.error().ToString();
  auto reply = proto::DecodeReply(*frame);
  ASSERT_TRUE(reply.ok());
  ASSERT_FALSE(reply->ok());
  EXPECT_EQ(reply->error->cls, proto::ErrorClass::kInvalid);
}

// A datapath that wires nothing but records what it was asked, and checks on
// Remove that the address is still held (DEL: datapath first, then the
// address: an exclusive ENI must be back on the node before it is detached).
class RecordingDatapath : public PodDatapath {
 public:
  explicit RecordingDatapath(store::StateStore* store) : store_(store) {}
  Result<cni::CniResult> Ensure(const PodNetwork& pod) override {
    ensured.push_back(pod);
    cni::CniResult r;
    r.ips.push_back({pod.ip.ip + "/32", "169.254.1.1", std::nullopt});
    return r;
  }
  Status Remove(const PodNetwork& pod) override {
    auto held = store_->FindByContainer(pod.container_id);
    removed_while_held.push_back(held.ok() && held->has_value());
    removed_netns.push_back(pod.netns);
    return Ok();
  }
  Result<cni::CniResult> Check(const PodNetwork& pod) override {
    checked.push_back(pod);
    return cni::CniResult{};
  }
  Status GuardAdopted(const PodNetwork&) override { return Ok(); }
  Result<std::vector<std::string>> CollectGarbage(const std::set<std::string>&, const std::set<Ipv4Addr>&) override {
    return std::vector<std::string>{};
  }
  std::vector<PodNetwork> ensured, checked;
  std::vector<bool> removed_while_held;
  std::vector<std::string> removed_netns;

 private:
  store::StateStore* store_;
};

// The network's eniip_virtual_type picks the shared-ENI flavour the datapath
// wires (upstream's spellings, any case), only when terwayd has the eBPF
// datapath; its service_cidr travels along for the stack prefixes.
TEST_F(CniServiceTest, TheNetworksVirtualTypeSelectsTheFlavour) {
  for (bool ebpf : {true, false}) {
    RecordingDatapath dp(store_.get());
    CniServiceOptions o;
    o.datapath_mode = "shared";
    o.ebpf_datapath = ebpf;
    CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
    svc.SetReady(true);
    const std::vector<std::pair<std::string, datapath::VirtualType>> cases = {
        {"", datapath::VirtualType::kVeth},       {"veth", datapath::VirtualType::kVeth},
        {"ipvlan", datapath::VirtualType::kEbpf}, {"IPVlan", datapath::VirtualType::kEbpf},
        {"datapathv2", datapath::VirtualType::kEbpf}};
    int n = 0;
    for (const auto& [vt, want] : cases) {
      const std::string cid = "vt" + std::to_string(ebpf) + "-" + std::to_string(n++);
      auto req = Req(proto::Op::kAllocate, cid);
      req.network.eniip_virtual_type = vt;
      req.network.service_cidr = "172.21.0.0/20";
      auto add = svc.Handle(req);
      ASSERT_TRUE(add.ok()) << add.error->message;
      ASSERT_FALSE(dp.ensured.empty());
      EXPECT_EQ(dp.ensured.back().virtual_type, ebpf ? want : datapath::VirtualType::kVeth)
          << "'" << vt << "' with the eBPF datapath " << (ebpf ? "loaded" : "unavailable");
      ASSERT_TRUE(dp.ensured.back().service_cidr.has_value());
      EXPECT_EQ(dp.ensured.back().service_cidr->ToString(), "172.21.0.0/20");
      ASSERT_TRUE(svc.Handle(Req(proto::Op::kRelease, cid)).ok());
    }
  }
}

TEST_F(CniServiceTest, AddRecordsNetnsAndModeAndDelRemovesWiringBeforeTheAddress) {
  RecordingDatapath dp(store_.get());
  CniServiceOptions o;
  o.datapath_mode = "shared";
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetReady(true);
  auto req = Req(proto::Op::kAllocate, "c1");
  req.network.host_stack_cidrs = {"169.254.20.10/32", "172.31.0.0/16"};
  auto add = svc.Handle(req);
  ASSERT_TRUE(add.ok()) << add.error->message;
  ASSERT_EQ(dp.ensured.size(), 1u);
  EXPECT_EQ(dp.ensured[0].netns, "/var/run/netns/none");
  ASSERT_EQ(dp.ensured[0].host_stack_cidrs.size(), 2u);
  EXPECT_EQ(dp.ensured[0].host_stack_cidrs[1].ToString(), "172.31.0.0/16");
  auto rec = store_->FindByContainer("c1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->netns, "/var/run/netns/none");
  EXPECT_EQ((*rec)->ifname, "eth0");
  EXPECT_EQ((*rec)->datapath_mode, "shared");
  // Recorded: a restart repair or a bandwidth update rebuilds the routes.
  EXPECT_EQ((*rec)->host_stack_cidrs, "169.254.20.10/32,172.31.0.0/16");
  EXPECT_EQ(ParseRecordedHostStackCidrs((*rec)->host_stack_cidrs), dp.ensured[0].host_stack_cidrs);

  // DEL without CNI_NETNS (the runtime may omit it): the recorded one is used.
  auto del = Req(proto::Op::kRelease, "c1");
  del.netns.clear();
  ASSERT_TRUE(svc.Handle(del).ok());
  ASSERT_EQ(dp.removed_while_held.size(), 1u);
  EXPECT_TRUE(dp.removed_while_held[0]) << "DEL released the address before removing the wiring";
  EXPECT_EQ(dp.removed_netns[0], "/var/run/netns/none");
  auto gone = store_->FindByContainer("c1");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

// The same service over the exclusive-ENI allocator: one ENI per pod, the
// node refuses pod EniQuantity with an exhausted error, DEL deletes the ENI.
TEST_F(CniServiceTest, ExclusiveAllocatorBehindTheServiceRefusesPodEniQuantity) {
  FakeCloud cloud(ipam::InstanceLimits{3, 4}, "i-excl", {{"vsw-a", 100}});
  ipam::PoolOptions po;
  po.instance_id = "i-excl";
  po.instance_type = "ecs.test";
  po.vswitch_ids = {"vsw-a"};
  po.config.eni_tags["creator"] = "terway";
  auto st = store::StateStore::Open(dir_ + "/excl.db");
  ASSERT_TRUE(st.ok());
  auto alloc = ipam::ExclusiveEniAllocator::Create(po, &cloud, st->get(), &RealClock::Instance());
  ASSERT_TRUE(alloc.ok()) << alloc.error().ToString();
  CniService svc(CniServiceOptions{}, alloc->get(), st->get(), nullptr, &metrics_);
  svc.SetReady(true);
  auto a = svc.Handle(Req(proto::Op::kAllocate, "c1", "p1"));
  auto b = svc.Handle(Req(proto::Op::kAllocate, "c2", "p2"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(a.eni && b.eni);
  EXPECT_NE(a.eni->id, b.eni->id);
  auto c = svc.Handle(Req(proto::Op::kAllocate, "c3", "p3"));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error->cls, proto::ErrorClass::kExhausted);
  EXPECT_NE(c.error->message.find("maximum of 2"), std::string::npos) << c.error->message;
  EXPECT_EQ((*alloc)->Stats().in_use, 2);
  EXPECT_EQ((*alloc)->Stats().max_pods, 2);

  ASSERT_TRUE(svc.Handle(Req(proto::Op::kRelease, "c1", "p1")).ok());
  int terway_enis = 0;
  for (const auto& e : cloud.AllEnis()) terway_enis += e.type == "Primary" ? 0 : 1;
  EXPECT_EQ(terway_enis, 1);
  EXPECT_TRUE(svc.Handle(Req(proto::Op::kAllocate, "c3", "p3")).ok());
}

// What a Kubernetes API would say about pods and the node, scripted.
class FakeDirectory : public PodDirectory {
 public:
  std::string NodeRefusal() override { return node_refusal; }
  Result<std::optional<PodMetadata>> Lookup(const std::string& ns, const std::string& name) override {
    if (api_down) return MakeError(ErrorCode::kUnavailable, "connection refused");
    auto it = pods.find(ns + "/" + name);
    if (it == pods.end()) return std::optional<PodMetadata>();
    std::optional<PodMetadata> seen = it->second;
    if (after_lookup) after_lookup();
    return seen;
  }
  std::optional<PodMetadata> Cached(const std::string& ns, const std::string& name) override {
    auto it = pods.find(ns + "/" + name);
    if (it == pods.end()) return std::nullopt;
    return it->second;
  }
  void AllocationStarted(const std::string& ns, const std::string& name) override {
    started.push_back(ns + "/" + name);
  }
  void Allocated(const std::string& ns, const std::string& name, const std::vector<std::string>& ips,
                 bool in_api) override {
    allocated.push_back(ns + "/" + name + "=" + Join(ips, ",") + (in_api ? "" : " (not in the API)"));
  }
  void Released(const std::string& ns, const std::string& name) override { released.push_back(ns + "/" + name); }
  void AllocationFailed(const std::string& ns, const std::string& name, const std::string&,
                        const Error& e) override {
    failed.push_back(ns + "/" + name + ": " + ErrorCodeName(e.code));
  }
  void PodWarning(const std::string& ns, const std::string& name, const std::string&, const std::string& reason,
                  const std::string& message) override {
    warnings.push_back(ns + "/" + name + " " + reason + ": " + message);
  }

  std::string node_refusal;
  bool api_down = false;
  // Runs after Lookup read a pod: the API changing it while an ADD runs.
  std::function<void()> after_lookup;
  std::map<std::string, PodMetadata> pods;
  std::vector<std::string> started, allocated, failed, warnings, released;
};

TEST_F(CniServiceTest, DirectoryRefusesIgnoredPodsAndNodesAsInvalidInput) {
  FakeDirectory dir;
  dir.pods["default/web"].labels[kIgnoreByTerwayLabel] = "true";
  service_->SetPodDirectory(&dir);
  service_->SetReady(true);
  auto add = Call(Req(proto::Op::kAllocate, "c1", "web"));
  ASSERT_FALSE(add.ok());
  EXPECT_EQ(add.error->cls, proto::ErrorClass::kInvalid);
  EXPECT_NE(add.error->message.find("k8s.aliyun.com/ignore-by-terway=true"), std::string::npos)
      << add.error->message;
  // Any other value does not ignore (Terway compares with "true").
  dir.pods["default/web"].labels[kIgnoreByTerwayLabel] = "false";
  EXPECT_TRUE(Call(Req(proto::Op::kAllocate, "c1", "web")).ok());

  dir.node_refusal = "node n1 is labelled k8s.aliyun.com/ignore-by-terway=true";
  auto refused = Call(Req(proto::Op::kAllocate, "c2", "other"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error->cls, proto::ErrorClass::kInvalid);
  EXPECT_NE(refused.error->message.find("node n1"), std::string::npos);
  EXPECT_TRUE(dir.started == std::vector<std::string>{"default/web"});
}

TEST_F(CniServiceTest, DirectoryGivesOwnerForStickyIpsAndHearsOutcomes) {
  FakeDirectory dir;
  dir.pods["default/db-0"].owner_kind = "StatefulSet";
  dir.pods["default/db-0"].uid = "uid-db-0";
  service_->SetPodDirectory(&dir);
  service_->SetReady(true);
  auto add = Call(Req(proto::Op::kAllocate, "c1", "db-0"));
  ASSERT_TRUE(add.ok()) << add.error->message;
  const std::string ip = add.result->ips[0].address;
  ASSERT_EQ(dir.allocated.size(), 1u);
  EXPECT_EQ(dir.allocated[0], "default/db-0=" + ip.substr(0, ip.find('/')));
  // A StatefulSet pod's IP stays reserved after DEL and comes back to it.
  ASSERT_TRUE(Call(Req(proto::Op::kRelease, "c1", "db-0")).ok());
  EXPECT_EQ(pool_->Stats().reserved, 1);
  auto again = Call(Req(proto::Op::kAllocate, "c2", "db-0"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.result->ips[0].address, ip);

  // A pod the API does not know is served (podman on a node), unknown uid;
  // nothing to annotate.
  auto stat = Call(Req(proto::Op::kAllocate, "c3", "static"));
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(dir.allocated.back(), "default/static=" + stat.result->ips[0].address.substr(
                                      0, stat.result->ips[0].address.find('/')) + " (not in the API)");
  EXPECT_EQ(dir.released, std::vector<std::string>{"default/db-0"});
  // An unreachable API: retry later, nothing allocated, nothing reported.
  dir.api_down = true;
  auto down = Call(Req(proto::Op::kAllocate, "c4", "late"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error->cls, proto::ErrorClass::kUnavailable);
  EXPECT_TRUE(dir.failed.empty());
}

TEST_F(CniServiceTest, DirectoryHearsExhaustionAndBadBandwidthAnnotationRefuses) {
  FakeDirectory dir;
  dir.pods["default/slow"].annotations["kubernetes.io/ingress-bandwidth"] = "ten megabits";
  service_->SetPodDirectory(&dir);
  service_->SetReady(true);
  auto bad = Call(Req(proto::Op::kAllocate, "c0", "slow"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error->cls, proto::ErrorClass::kInvalid);
  EXPECT_NE(bad.error->message.find("kubernetes.io/ingress-bandwidth"), std::string::npos) << bad.error->message;
  // (3 ENIs - 1) x 4 IPs = 8 pods; the 9th fails as exhausted and is reported.
  for (int i = 0; i < 8; i++) {
    ASSERT_TRUE(Call(Req(proto::Op::kAllocate, "c" + std::to_string(i + 1), "p" + std::to_string(i))).ok());
  }
  auto full = Call(Req(proto::Op::kAllocate, "c9", "p9"));
  ASSERT_FALSE(full.ok());
  ASSERT_EQ(dir.failed.size(), 1u);
  EXPECT_EQ(dir.failed[0], "default/p9: Exhausted");
}

// A policy that records the order of events and can refuse.
class RecordingPolicy : public PodPolicy {
 public:
  explicit RecordingPolicy(RecordingDatapath* dp) : dp_(dp) {}
  Status PodStarting(const std::string& ns, const std::string& name, Ipv4Addr ip,
                     std::optional<Ipv6Addr> ipv6) override {
    // The pod's chain must be in place before its veth exists.
    events.push_back(fmt::format("start {}/{} {}{} wired={}", ns, name, ip.ToString(),
                                 ipv6 ? " " + ipv6->ToString() : "", dp_->ensured.size()));
    if (refuse) return MakeError(ErrorCode::kKernel, "nft: Could not process rule: No such file or directory");
    return Ok();
  }
  void PodStopped(const std::string& ns, const std::string& name, Ipv4Addr) override {
    events.push_back(fmt::format("stop {}/{}", ns, name));
  }
  Result<policy::Explanation> Explain(const std::string& from, const std::string& to, policy::Protocol proto,
                                      uint16_t port) override {
    policy::Explanation e;
    e.allowed = false;
    e.summary = fmt::format("DENY {} -> {} {}/{}", from, to, port, policy::ProtocolName(proto));
    return e;
  }
  Result<std::string> Show() override { return std::string("x/a ingress (in_1):\n"); }

  std::vector<std::string> events;
  bool refuse = false;

 private:
  RecordingDatapath* dp_;
};

TEST_F(CniServiceTest, PolicyIsInPlaceBeforeWiringAndAFailureUndoesTheAdd) {
  RecordingDatapath dp(store_.get());
  RecordingPolicy pol(&dp);
  CniServiceOptions o;
  o.datapath_mode = "shared";
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetPodPolicy(&pol);
  svc.SetReady(true);
  auto add = svc.Handle(Req(proto::Op::kAllocate, "c1", "a"));
  ASSERT_TRUE(add.ok()) << add.error->message;
  const std::string ip = add.result->ips[0].address.substr(0, add.result->ips[0].address.find('/'));
  ASSERT_EQ(pol.events.size(), 1u);
  EXPECT_EQ(pol.events[0], "start default/a " + ip + " wired=0");
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kRelease, "c1", "a")).ok());
  EXPECT_EQ(pol.events.back(), "stop default/a");

  // The kernel refuses the pod's rules: the pod must not start unprotected.
  pol.refuse = true;
  auto refused = svc.Handle(Req(proto::Op::kAllocate, "c2", "b"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error->message.find("enforcing network policy for pod default/b"), std::string::npos)
      << refused.error->message;
  EXPECT_EQ(pol.events.back(), "stop default/b");
  EXPECT_EQ(dp.ensured.size(), 1u) << "the refused pod was wired";
  auto held = store_->FindByContainer("c2");
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(held->has_value()) << "the refused pod kept its address";
}

// ip_stack dual: the pod's IPv6 (of the same ENI) reaches the policy before
// the wiring, the datapath with the ENI's vSwitch IPv6 gateway, the pod-ips
// report after the IPv4, and the record -- so teardown and restart repair
// rebuild the IPv6 side too.
TEST_F(CniServiceTest, DualStackPodsIpv6ReachesPolicyDatapathDirectoryAndRecord) {
  auto dual_cloud = std::make_unique<FakeCloud>(ipam::InstanceLimits{3, 4, 4}, "i-test",
                                                std::vector<FakeCloud::VSwitchSpec>{{"vsw-a", 100}});
  ipam::PoolOptions po;
  po.instance_id = "i-test";
  po.instance_type = "ecs.test";
  po.vswitch_ids = {"vsw-a"};
  po.config.eni_tags["creator"] = "terway";
  po.config.max_pool_size = 2;
  po.config.ip_stack = ipam::IpStack::kDual;
  auto st = store::StateStore::Open(dir_ + "/dual.db");
  ASSERT_TRUE(st.ok()) << st.error().ToString();
  auto pool = ipam::IpPool::Create(po, dual_cloud.get(), st->get(), &RealClock::Instance());
  ASSERT_TRUE(pool.ok()) << pool.error().ToString();
  (*pool)->Start();
  RecordingDatapath dp(st->get());
  RecordingPolicy pol(&dp);
  FakeDirectory dir;
  dir.pods["default/a"].labels["app"] = "a";
  CniServiceOptions o;
  o.datapath_mode = "shared";
  std::vector<std::string> asked;
  bool metadata_down = false;
  o.ipv6_gateway = [&](const std::string& eni_id, const std::string& mac) -> Result<std::string> {
    asked.push_back(eni_id + " " + mac);
    if (metadata_down) return MakeError(ErrorCode::kUnavailable, "metadata service: connection refused");
    return std::string("fd00:1::ffff:ffff:ffff:fff7");
  };
  CniService svc(o, pool->get(), st->get(), &dp, &metrics_);
  svc.SetPodPolicy(&pol);
  svc.SetPodDirectory(&dir);
  svc.SetReady(true);
  auto add = svc.Handle(Req(proto::Op::kAllocate, "c1", "a"));
  ASSERT_TRUE(add.ok()) << add.error->message;
  ASSERT_EQ(dp.ensured.size(), 1u);
  const PodNetwork& pn = dp.ensured[0];
  ASSERT_TRUE(pn.ipv6.has_value()) << "a dual-stack pod was wired IPv4 only";
  EXPECT_FALSE(pn.ipv6->ip.empty());
  EXPECT_EQ(pn.ipv6->ip, pn.ip.ipv6);
  EXPECT_EQ(pn.ipv6->gateway, "fd00:1::ffff:ffff:ffff:fff7");
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], pn.ip.eni_id + " " + pn.ip.eni_mac);
  ASSERT_EQ(pol.events.size(), 1u);
  EXPECT_EQ(pol.events[0], "start default/a " + pn.ip.ip + " " + Ipv6Addr::Parse(pn.ipv6->ip)->ToString() + " wired=0");
  ASSERT_EQ(dir.allocated.size(), 1u);
  EXPECT_EQ(dir.allocated[0], "default/a=" + pn.ip.ip + "," + pn.ipv6->ip);
  auto rec = st->get()->FindByContainer("c1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->ipv6, pn.ipv6->ip);
  PodNetwork rebuilt = PodNetworkFromRecord(**rec, ipam::IpAllocation{});
  ASSERT_TRUE(rebuilt.ipv6.has_value()) << "teardown would leave the IPv6 side";
  EXPECT_EQ(rebuilt.ipv6->ip, pn.ipv6->ip);

  // Without the gateway the ADD fails naming the lookup and its cause
  // (not a bare "invalid gateway"); the DEL needs no gateway at all.
  metadata_down = true;
  auto refused = svc.Handle(Req(proto::Op::kAllocate, "c2", "b"));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error->message.find("ipv6-gateway"), std::string::npos) << refused.error->message;
  EXPECT_NE(refused.error->message.find("connection refused"), std::string::npos) << refused.error->message;
  const size_t asked_before_del = asked.size();
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kRelease, "c1", "a")).ok());
  EXPECT_EQ(asked.size(), asked_before_del) << "DEL asked the metadata service for a gateway it does not need";
  (*pool)->Stop();
}

TEST_F(CniServiceTest, PolicyRequestsAnswerOrSayWhyPolicyIsOff) {
  proto::Request explain;
  explain.op = proto::Op::kPolicyExplain;
  explain.policy_query = proto::PolicyQuery{"x/a", "y/b", "TCP", 80};
  proto::Request show;
  show.op = proto::Op::kPolicyShow;
  // The fixture's service has no policy: refused with the configured reason.
  auto off = Call(explain);
  ASSERT_FALSE(off.ok());
  EXPECT_EQ(off.error->cls, proto::ErrorClass::kUnsupported);
  EXPECT_NE(off.error->message.find("not enforced"), std::string::npos) << off.error->message;

  RecordingDatapath dp(store_.get());
  RecordingPolicy pol(&dp);
  CniServiceOptions o;
  o.datapath_mode = "shared";
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetPodPolicy(&pol);
  auto e = svc.Handle(explain);
  ASSERT_TRUE(e.ok()) << e.error->message;
  EXPECT_EQ(e.allowed, std::optional<bool>(false));
  EXPECT_NE(e.text->find("DENY x/a -> y/b 80/TCP"), std::string::npos) << *e.text;
  explain.policy_query->protocol = "GRE";
  auto bad = svc.Handle(explain);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error->message.find("GRE"), std::string::npos) << bad.error->message;
  auto sh = svc.Handle(show);
  ASSERT_TRUE(sh.ok());
  EXPECT_EQ(*sh.text, "x/a ingress (in_1):\n");
}

TEST_F(CniServiceTest, IgnoredBadBandwidthAnnotationServesThePodUnlimitedAndWarns) {
  FakeDirectory dir;
  dir.pods["default/slow"].annotations["kubernetes.io/egress-bandwidth"] = "fast";
  RecordingDatapath dp(store_.get());
  CniServiceOptions o;
  o.datapath_mode = "shared";
  o.refuse_bad_bandwidth_annotation = false;
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetPodDirectory(&dir);
  svc.SetReady(true);
  auto add = svc.Handle(Req(proto::Op::kAllocate, "c1", "slow"));
  ASSERT_TRUE(add.ok()) << add.error->message;
  ASSERT_EQ(dp.ensured.size(), 1u);
  EXPECT_FALSE(dp.ensured[0].bandwidth.has_value());
  ASSERT_EQ(dir.warnings.size(), 1u);
  EXPECT_NE(dir.warnings[0].find("default/slow BandwidthAnnotationInvalid: "), std::string::npos) << dir.warnings[0];
  EXPECT_NE(dir.warnings[0].find("kubernetes.io/egress-bandwidth"), std::string::npos) << dir.warnings[0];
}

TEST_F(CniServiceTest, AnnotationChangesFollowARunningPodAndCheckVerifiesTheStoredLimit) {
  FakeDirectory dir;
  dir.pods["default/web"].annotations["kubernetes.io/ingress-bandwidth"] = "10M";
  RecordingDatapath dp(store_.get());
  CniServiceOptions o;
  o.datapath_mode = "shared";
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetPodDirectory(&dir);
  svc.SetReady(true);
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kAllocate, "c1", "web")).ok());
  ASSERT_EQ(dp.ensured.size(), 1u);
  ASSERT_TRUE(dp.ensured[0].bandwidth.has_value());
  EXPECT_EQ(dp.ensured[0].bandwidth->ingress_rate, 10'000'000u);
  // CHECK without runtimeConfig still verifies the annotation's limit.
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kGet, "c1", "web")).ok());
  ASSERT_EQ(dp.checked.size(), 1u);
  ASSERT_TRUE(dp.checked[0].bandwidth.has_value());
  EXPECT_EQ(dp.checked[0].bandwidth->ingress_rate, 10'000'000u);

  svc.UpdatePodBandwidth("default", "web", {{"kubernetes.io/ingress-bandwidth", "50M"},
                                            {"kubernetes.io/egress-bandwidth", "20M"}});
  ASSERT_EQ(dp.ensured.size(), 2u);
  EXPECT_EQ(dp.ensured[1].bandwidth->ingress_rate, 50'000'000u);
  EXPECT_EQ(dp.ensured[1].bandwidth->egress_rate, 20'000'000u);
  EXPECT_EQ(dp.ensured[1].netns, "/var/run/netns/none");
  // The same values again: nothing to do.
  svc.UpdatePodBandwidth("default", "web", {{"kubernetes.io/ingress-bandwidth", "50M"},
                                            {"kubernetes.io/egress-bandwidth", "20M"}});
  EXPECT_EQ(dp.ensured.size(), 2u);
  // A typo keeps the current limit and says so.
  svc.UpdatePodBandwidth("default", "web", {{"kubernetes.io/ingress-bandwidth", "50 megabits"}});
  EXPECT_EQ(dp.ensured.size(), 2u);
  ASSERT_EQ(dir.warnings.size(), 1u);
  EXPECT_NE(dir.warnings[0].find("keeps its current bandwidth limit"), std::string::npos) << dir.warnings[0];
  // Annotations removed: the shaping goes.
  svc.UpdatePodBandwidth("default", "web", {});
  ASSERT_EQ(dp.ensured.size(), 3u);
  EXPECT_FALSE(dp.ensured[2].bandwidth.has_value());
  auto rec = store_->FindByContainer("c1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->bandwidth, "");
  // After DEL there is nothing to update.
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kRelease, "c1", "web")).ok());
  svc.UpdatePodBandwidth("default", "web", {{"kubernetes.io/ingress-bandwidth", "1M"}});
  EXPECT_EQ(dp.ensured.size(), 3u);
}

TEST_F(CniServiceTest, AnnotationChangedDuringAddIsAppliedWhenTheAddEnds) {
  // The change reaches the cache after ADD read the pod and before its
  // allocation exists: the listener's update finds nothing to update, so
  // the ADD itself must notice and apply the current annotations.
  FakeDirectory dir;
  dir.pods["default/web"].annotations["kubernetes.io/ingress-bandwidth"] = "10M";
  RecordingDatapath dp(store_.get());
  CniServiceOptions o;
  o.datapath_mode = "shared";
  CniService svc(o, pool_.get(), store_.get(), &dp, &metrics_);
  svc.SetPodDirectory(&dir);
  svc.SetReady(true);
  dir.after_lookup = [&] {
    dir.pods["default/web"].annotations["kubernetes.io/ingress-bandwidth"] = "50M";
    svc.UpdatePodBandwidth("default", "web", dir.pods["default/web"].annotations);  // too early: no allocation
  };
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kAllocate, "c1", "web")).ok());
  ASSERT_EQ(dp.ensured.size(), 2u);
  EXPECT_EQ(dp.ensured[0].bandwidth->ingress_rate, 10'000'000u);
  ASSERT_TRUE(dp.ensured[1].bandwidth.has_value());
  EXPECT_EQ(dp.ensured[1].bandwidth->ingress_rate, 50'000'000u);
  auto rec = store_->FindByContainer("c1");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->bandwidth, qos::EncodeBandwidth(dp.ensured[1].bandwidth));

  // Unchanged annotations: one Ensure per ADD, as before.
  dir.after_lookup = nullptr;
  dir.pods["default/api"].annotations["kubernetes.io/ingress-bandwidth"] = "10M";
  ASSERT_TRUE(svc.Handle(Req(proto::Op::kAllocate, "c2", "api")).ok());
  EXPECT_EQ(dp.ensured.size(), 3u);
}

}  // namespace
}  // namespace terway::daemon

namespace terway::daemon {
namespace {

// Upstream Terway's dashboards read terway_rpc_latency{rpc_api,error} in ms;
// every CNI allocate/release is timed once and lands under both names.
TEST_F(CniServiceTest, RequestLatencyIsExportedUnderOursAndUpstreamsName) {
  service_->SetReady(true);
  ASSERT_TRUE(Call(Req(proto::Op::kAllocate, "c1")).ok());
  ASSERT_TRUE(Call(Req(proto::Op::kRelease, "c1")).ok());
  ASSERT_FALSE(Call(Req(proto::Op::kRelease, "c1")).ok());  // not_found: an error upstream's way
  ASSERT_TRUE(Call(Req(proto::Op::kStatus, "")).ok());
  std::string text = metrics_.Render();
  EXPECT_NE(text.find("terway_cni_request_duration_seconds_count{op=\"allocate\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terway_cni_request_duration_seconds_count{op=\"release\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE terway_rpc_latency histogram\n"), std::string::npos) << text;
  EXPECT_NE(text.find("terway_rpc_latency_count{rpc_api=\"AllocIP\",error=\"false\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("terway_rpc_latency_count{rpc_api=\"ReleaseIP\",error=\"false\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("terway_rpc_latency_count{rpc_api=\"ReleaseIP\",error=\"true\"} 1\n"), std::string::npos)
      << text;
  // Upstream times only allocate and release: no series for status.
  EXPECT_EQ(text.find("rpc_api=\"\""), std::string::npos) << text;
  // Same measurement: upstream's sum is ours in milliseconds.
  auto sum_of = [&](const std::string& series) {
    auto at = text.find(series + " ");
    EXPECT_NE(at, std::string::npos) << series << " missing in\n" << text;
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + series.size() + 1));
  };
  double ours = sum_of("terway_cni_request_duration_seconds_sum{op=\"allocate\"}");
  double theirs = sum_of("terway_rpc_latency_sum{rpc_api=\"AllocIP\",error=\"false\"}");
  EXPECT_GT(ours, 0);
  EXPECT_NEAR(theirs, ours * 1000, ours * 1000 * 1e-6);
}

}  // namespace
}  // namespace terway::daemon
