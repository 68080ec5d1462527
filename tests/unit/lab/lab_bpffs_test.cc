// Which bpf filesystems `down` unmounts: those at or under the lab directory,
// deepest first, read from mountinfo (with its octal escapes); never another
// lab's, nor the machine's /sys/fs/bpf.
#include "tools/lab/cluster/lab_bpffs.h"

#include <set>

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

constexpr const char* kMountinfo =
    "22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
    "40 22 0:34 / /sys/fs/bpf rw,nosuid shared:15 - bpf bpf rw,mode=700\n"
    "143 27 0:40 / /tmp/lab/nodes/node1/bpffs rw,relatime - bpf bpf rw,mode=700\n"
    "144 27 0:41 / /tmp/lab/nodes/node2/bpffs rw,relatime - bpf bpf rw,mode=700\n"
    "145 143 0:42 / /tmp/lab/nodes/node1/bpffs/inner rw,relatime - bpf bpf rw\n"
    "146 27 0:43 / /tmp/lab2/nodes/node1/bpffs rw,relatime - bpf bpf rw,mode=700\n"
    "147 27 0:44 / /tmp/lab/tmpfs rw,relatime - tmpfs tmpfs rw\n"
    "148 27 0:45 / /tmp/lab/with\\040space rw,relatime shared:9 master:2 - bpf bpf rw\n";

TEST(LabBpffs, MountsUnderTheLabDirDeepestFirst) {
  auto got = BpfMountsUnder(kMountinfo, "/tmp/lab");
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], "/tmp/lab/nodes/node1/bpffs/inner") << "a nested mount goes before its parent";
  std::set<std::string> all(got.begin(), got.end());
  EXPECT_TRUE(all.count("/tmp/lab/nodes/node1/bpffs"));
  EXPECT_TRUE(all.count("/tmp/lab/nodes/node2/bpffs"));
  EXPECT_TRUE(all.count("/tmp/lab/with space")) << "mountinfo's \\040 is a space";
  EXPECT_FALSE(all.count("/tmp/lab2/nodes/node1/bpffs")) << "another lab's, whose name only starts alike";
  EXPECT_FALSE(all.count("/tmp/lab/tmpfs")) << "not a bpf filesystem";
  EXPECT_FALSE(all.count("/sys/fs/bpf"));
}

TEST(LabBpffs, NothingOutsideTheRoot) {
  EXPECT_TRUE(BpfMountsUnder(kMountinfo, "/tmp/other").empty());
  EXPECT_EQ(BpfMountsUnder(kMountinfo, "/tmp/lab/nodes/node2/bpffs").size(), 1u) << "the root itself counts";
  EXPECT_TRUE(BpfMountsUnder("garbage\n\n- -\n", "/tmp/lab").empty());
}

}  // namespace
}  // namespace terway::lab
