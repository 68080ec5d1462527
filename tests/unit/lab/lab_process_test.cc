// The lab's processes: commands to completion, and daemons identified by pid
// and start time (no root needed: no namespace is entered).
#include "tools/lab/cluster/process.h"
#include "tools/lab/cluster/lab_files.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace terway::lab {
namespace {

TEST(LabProcess, RunCommandPassesStdinEnvAndSeparatesOutputs) {
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", "cat; echo \"$LAB_TEST_VAR\"; echo oops >&2; exit 3"};
  spec.env = {{"LAB_TEST_VAR", "from-env"}};
  spec.stdin_data = "from-stdin\n";
  auto r = RunCommand(spec);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->out, "from-stdin\nfrom-env\n");
  EXPECT_EQ(r->err, "oops\n");
}

TEST(LabProcess, RunCommandNamesWhatCouldNotStart) {
  auto missing = RunCommand({"/nonexistent/terway-binary"});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().ToString().find("cannot execute /nonexistent/terway-binary"),
            std::string::npos)
      << missing.error().ToString();
  auto bad_ns = RunCommand({"/bin/true"}, "no-such-netns-for-lab-test");
  ASSERT_FALSE(bad_ns.ok());
  EXPECT_NE(bad_ns.error().ToString().find("no-such-netns-for-lab-test"), std::string::npos)
      << bad_ns.error().ToString();
}

TEST(LabProcess, RunCommandStopsAtItsTimeout) {
  auto r = RunCommand({"/bin/sleep", "30"}, "", std::chrono::milliseconds(200));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->timed_out);
  EXPECT_EQ(r->exit_code, 128 + 9);
}

TEST(LabProcess, DaemonIsTrackedByPidAndStartTimeAndStopped) {
  char tmpl[] = "/tmp/lab-process-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string log = std::string(tmpl) + "/daemon.log";
  auto d = StartDaemon({{"/bin/sh", "-c", "echo started; exec sleep 60"}, "", log});
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_GT(d->start_time, 0);
  EXPECT_TRUE(DaemonAlive(*d));
  EXPECT_EQ(getsid(d->pid), d->pid) << "runs in its own session, apart from our terminal";
  EXPECT_TRUE(WaitUntil([&] { return ReadTextFile(log) == "started\n"; }, std::chrono::seconds(10)));
  DaemonId recycled = *d;
  recycled.start_time += 1;
  EXPECT_FALSE(DaemonAlive(recycled)) << "a pid with another start time is another process";
  EXPECT_TRUE(StopDaemon(recycled).ok());
  EXPECT_TRUE(DaemonAlive(*d)) << "StopDaemon never signals a recycled pid";
  ASSERT_TRUE(StopDaemon(*d).ok());
  EXPECT_FALSE(DaemonAlive(*d));
  EXPECT_TRUE(StopDaemon(*d).ok()) << "stopping a stopped daemon succeeds";
  auto missing = StartDaemon({{"/nonexistent/vpcsim"}, "", log});
  EXPECT_FALSE(missing.ok());
  unlink(log.c_str());
  rmdir(tmpl);
}

TEST(LabProcess, AtomicWriteReplacesTheFile) {
  char tmpl[] = "/tmp/lab-process-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string path = std::string(tmpl) + "/f";
  ASSERT_TRUE(WriteTextFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteTextFileAtomic(path, "two").ok());
  EXPECT_EQ(ReadTextFile(path), "two");
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
  EXPECT_FALSE(WriteTextFileAtomic(std::string(tmpl) + "/no/such/dir/f", "x").ok());
  unlink(path.c_str());
  rmdir(tmpl);
}

}  // namespace
}  // namespace terway::lab
