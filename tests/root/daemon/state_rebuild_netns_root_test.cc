// State rebuild's kernel discovery against real namespaces: a host veth's pod
// namespace is the one its peer really lives in, never another namespace
// whose veth happens to have the same indexes (fresh namespaces number their
// links alike: every pod's eth0 is 2). Found by the chaos e2e test: after a
// lost database, a node adopted its pod's address into another node's
// sandbox with coinciding indexes, and restart repair configured it there --
// one address in two sandboxes.
#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "daemon/state_rebuild.h"
#include "datapath/layout.h"
#include "netlink/handle.h"
#include "netlink/netns.h"
#include "test_util.h"

namespace terway::daemon {
namespace {

class StateRebuildNetnsRoot : public ::testing::Test {
 protected:
  void SetUp() override {
    TERWAY_REQUIRE_ROOT();
    const std::string s = testing::UniqueSuffix();
    node_ = "trbn" + s;   // this node
    pod_ = "trbp" + s;    // its pod
    other_ = "trbo" + s;  // another node (or a bridge namespace) ...
    decoy_ = "trbd" + s;  // ... and its sandbox
    for (const auto* n : {&node_, &pod_, &other_, &decoy_}) {
      ASSERT_OK(netlink::CreateNamedNetns(*n));
      made_.push_back(*n);
    }
    char tmpl[] = "/tmp/terway-rebuild-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // The same wiring in both: a veth created first in a fresh namespace,
    // its peer named eth0 in the sandbox. Indexes coincide on both ends.
    Wire(node_, pod_, "tw0123456789abc");
    Wire(other_, decoy_, "tw0123456789abd");
    auto h = netlink::Handle::OpenIn(node_);
    ASSERT_OK(h);
    auto veth = h->GetLink("tw0123456789abc");
    ASSERT_OK(veth);
    ASSERT_OK(h->SetAlias(veth->index, datapath::PodLinkAlias(Ipv4Addr::Parse("198.18.0.9").value(), "cid-a")));
    auto o = netlink::Handle::OpenIn(other_);
    ASSERT_OK(o);
    auto decoy_veth = o->GetLink("tw0123456789abd");
    ASSERT_OK(decoy_veth);
    ASSERT_EQ(veth->index, decoy_veth->index) << "the coincidence this test is about";
    ASSERT_EQ(veth->peer_index, decoy_veth->peer_index);
  }
  void TearDown() override {
    for (const auto& m : mounts_) umount2(m.c_str(), MNT_DETACH), unlink(m.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
    for (const auto& n : made_) (void)netlink::DeleteNamedNetns(n);
  }

  void Wire(const std::string& host, const std::string& sandbox, const std::string& veth) {
    auto h = netlink::Handle::OpenIn(host);
    ASSERT_OK(h);
    netlink::VethSpec spec;
    spec.name = veth;
    spec.peer_name = "eth0";
    spec.peer_netns = sandbox;
    ASSERT_OK(h->CreateVeth(spec));
  }
  // Shows a named namespace in the directory discovery searches.
  void Show(const std::string& name) {
    const std::string target = dir_ + "/" + name;
    std::ofstream(target).close();
    ASSERT_EQ(mount(netlink::NetnsPath(name).c_str(), target.c_str(), nullptr, MS_BIND, nullptr), 0) << target;
    mounts_.push_back(target);
  }
  std::vector<HostSandbox> Discover() {
    std::vector<HostSandbox> out;
    Status st = netlink::RunInNetns(node_, [&]() -> Status {
      TERWAY_ASSIGN_OR_RETURN(out, DiscoverHostSandboxes(dir_));
      return Ok();
    });
    EXPECT_TRUE(st.ok()) << st.error().ToString();
    return out;
  }

  std::string node_, pod_, other_, decoy_, dir_;
  std::vector<std::string> made_, mounts_;
};

TEST_F(StateRebuildNetnsRoot, ANamespaceWithTheSameIndexesIsNotThePods) {
  Show(decoy_);  // the pod's own namespace is not among the named ones
  auto found = Discover();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].ip, "198.18.0.9");
  EXPECT_EQ(found[0].container_id, "cid-a");
  EXPECT_EQ(found[0].netns, "") << "attributed to " << found[0].netns
                                << ", a sandbox of another namespace's veth with the same indexes";
}

TEST_F(StateRebuildNetnsRoot, ThePodsNamespaceIsFoundAmongLookalikes) {
  Show(decoy_);
  Show(pod_);
  auto found = Discover();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].netns, dir_ + "/" + pod_);
}

}  // namespace
}  // namespace terway::daemon
