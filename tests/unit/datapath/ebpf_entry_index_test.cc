// EndpointEntryIndex: which endpoint entries point at which pod's host veth,
// so that a pod wired again with another IPv4 finds its former entries.
#include "datapath/ebpf_entry_index.h"

#include <gtest/gtest.h>

namespace terway::datapath {
namespace {

Ipv4Addr Ip(const char* s) { return Ipv4Addr::Parse(s).value(); }

ebpf::Endpoint Entry(const char* ip, int host_ifindex) {
  ebpf::Endpoint ep;
  ep.ip = Ip(ip);
  ep.host_ifindex = host_ifindex;
  return ep;
}

using Formers = std::vector<FormerEntry>;

TEST(EndpointEntryIndex, AFreshVethHasNoFormerAddresses) {
  EndpointEntryIndex idx;
  EXPECT_TRUE(idx.Record("vetha", 7, Ip("10.0.0.1")).empty());
  EXPECT_TRUE(idx.Record("vetha", 7, Ip("10.0.0.1")).empty()) << "the same address again is not a former one";
  EXPECT_TRUE(idx.Record("vethb", 8, Ip("10.0.0.2")).empty()) << "another veth's address is not this one's";
}

TEST(EndpointEntryIndex, ThePodsOldAddressIsFormerWithItsVethThenUntilForgotten) {
  EndpointEntryIndex idx;
  idx.Record("vetha", 7, Ip("10.0.0.1"));
  // The veth was rebuilt (new ifindex 9): the former entry names ifindex 7.
  EXPECT_EQ(idx.Record("vetha", 9, Ip("10.0.0.3")), (Formers{{Ip("10.0.0.1"), 7}}));
  EXPECT_EQ(idx.Record("vetha", 9, Ip("10.0.0.3")), (Formers{{Ip("10.0.0.1"), 7}}))
      << "kept until its entry is known gone (a failed delete is retried)";
  idx.Forget(Ip("10.0.0.1"));
  EXPECT_TRUE(idx.Record("vetha", 9, Ip("10.0.0.3")).empty());
}

TEST(EndpointEntryIndex, AnAddressRewrittenForAnotherVethLeavesTheFirst) {
  EndpointEntryIndex idx;
  idx.Record("vetha", 7, Ip("10.0.0.1"));
  idx.Record("vethb", 8, Ip("10.0.0.1"));  // the entry now points at vethb
  EXPECT_TRUE(idx.Record("vetha", 7, Ip("10.0.0.3")).empty()) << "10.0.0.1 is vethb's now";
  EXPECT_EQ(idx.Record("vethb", 8, Ip("10.0.0.4")), (Formers{{Ip("10.0.0.1"), 8}}));
}

TEST(EndpointEntryIndex, ResetTakesTheMapsEntriesOfAnEarlierRunByTheirLinksNames) {
  EndpointEntryIndex idx;
  idx.Record("vethz", 3, Ip("10.0.0.9"));
  idx.Reset({Entry("10.0.0.1", 7), Entry("10.0.0.2", 7), Entry("10.0.0.5", 8), Entry("10.0.0.6", 42)},
            {{7, "vetha"}, {8, "vethb"}});
  EXPECT_EQ(idx.Record("vetha", 7, Ip("10.0.0.2")), (Formers{{Ip("10.0.0.1"), 7}}));
  EXPECT_TRUE(idx.Record("vethz", 3, Ip("10.0.0.7")).empty()) << "what was recorded before the reset is gone";
  idx.Forget(Ip("10.0.0.5"));
  EXPECT_TRUE(idx.Record("vethb", 8, Ip("10.0.0.8")).empty());
  // 10.0.0.6's link (42) is gone: no veth to find it by (GC deletes it).
  EXPECT_TRUE(idx.Record("vethc", 43, Ip("10.0.0.10")).empty());
  idx.Forget(Ip("10.0.0.99"));  // unknown: nothing happens
}

}  // namespace
}  // namespace terway::datapath
