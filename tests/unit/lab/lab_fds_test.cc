// What the lab's children inherit: stdin, stdout and stderr, nothing else,
// even while this process holds descriptors without close-on-exec; and the
// control plane's own sockets (the API stand-in's listener and accepted
// connections, the API client's connections and curl's internal socketpair)
// are close-on-exec from the start. Linked with lab_cloexec, as terway-lab.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/transport.h"
#include "tools/lab/apiserver/server.h"
#include "tools/lab/cluster/lab_files.h"
#include "tools/lab/cluster/process.h"

namespace terway::lab {
namespace {

using namespace std::chrono_literals;

// Descriptors this process holds that a careless child would inherit: a TCP
// socket, a file and a pipe, all opened without close-on-exec.
class LeakyDescriptors {
 public:
  LeakyDescriptors() {
    fds_.push_back(socket(AF_INET, SOCK_STREAM, 0));
    fds_.push_back(open("/dev/null", O_RDONLY));
    int p[2];
    if (pipe(p) == 0) fds_.insert(fds_.end(), {p[0], p[1]});
  }
  ~LeakyDescriptors() {
    for (int fd : fds_) close(fd);
  }
  bool ok() const {
    for (int fd : fds_) {
      if (fd < 3 || (fcntl(fd, F_GETFD) & FD_CLOEXEC)) return false;
    }
    return fds_.size() == 4;
  }

 private:
  std::vector<int> fds_;
};

// `ls -l /proc/self/fd/` output -> descriptor number -> target, without
// the directory ls itself opened to list them.
std::map<int, std::string> ListedDescriptors(const std::string& ls_output) {
  std::map<int, std::string> out;
  std::istringstream in(ls_output);
  for (std::string line; std::getline(in, line);) {
    auto arrow = line.find(" -> ");
    if (arrow == std::string::npos) continue;
    std::string left = line.substr(0, arrow);
    int fd = std::stoi(left.substr(left.rfind(' ') + 1));
    std::string target = line.substr(arrow + 4);
    if (target.rfind("/proc/", 0) == 0 && target.size() > 3 && target.substr(target.size() - 3) == "/fd") {
      continue;  // ls's own handle on /proc/<pid>/fd
    }
    out[fd] = target;
  }
  return out;
}

std::string Describe(const std::map<int, std::string>& fds) {
  std::string s;
  for (const auto& [fd, target] : fds) s += " " + std::to_string(fd) + "->" + target;
  return s;
}

TEST(LabChildDescriptors, ACommandGetsOnlyStdio) {
  LeakyDescriptors leaky;
  ASSERT_TRUE(leaky.ok());
  auto r = RunCommand({"/bin/ls", "-l", "/proc/self/fd/"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_EQ(r->exit_code, 0) << r->err;
  auto fds = ListedDescriptors(r->out);
  std::map<int, std::string> beyond_stdio = fds;
  for (int fd : {0, 1, 2}) {
    EXPECT_TRUE(fds.count(fd)) << "fd " << fd << " missing: " << r->out;
    beyond_stdio.erase(fd);
  }
  EXPECT_TRUE(beyond_stdio.empty()) << "the command inherited:" << Describe(beyond_stdio);
}

TEST(LabChildDescriptors, ADaemonGetsOnlyStdio) {
  LeakyDescriptors leaky;
  ASSERT_TRUE(leaky.ok());
  char tmpl[] = "/tmp/lab-fds-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string log = std::string(tmpl) + "/daemon.log";
  auto d = StartDaemon({{"/bin/ls", "-l", "/proc/self/fd/"}, "", log});
  ASSERT_TRUE(d.ok()) << d.error().ToString();
  EXPECT_TRUE(WaitUntil([&] { return !DaemonAlive(*d); }, 10s));
  struct stat st {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the daemon's log is owner-only";
  auto fds = ListedDescriptors(ReadTextFile(log));
  std::map<int, std::string> beyond_stdio = fds;
  for (int fd : {0, 1, 2}) beyond_stdio.erase(fd);
  EXPECT_EQ(fds.size(), 3u) << ReadTextFile(log);
  EXPECT_TRUE(beyond_stdio.empty()) << "the daemon inherited:" << Describe(beyond_stdio);
  unlink(log.c_str());
  rmdir(tmpl);
}

TEST(LabChildDescriptors, ACommandGetsTheUmaskItAsksFor) {
  CommandSpec spec;
  spec.argv = {"/bin/sh", "-c", "umask"};
  spec.umask = 077;
  auto r = RunCommand(spec);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->out, "0077\n");
}

// Every socket of this process: descriptor -> close-on-exec.
std::map<int, bool> Sockets() {
  std::map<int, bool> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = std::atoi(e->d_name);
    if (fd == dirfd(d)) continue;
    char target[256] = {};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    if (readlink(link.c_str(), target, sizeof target - 1) <= 0) continue;
    if (std::string(target).rfind("socket:", 0) != 0) continue;
    out[fd] = (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0;
  }
  closedir(d);
  return out;
}

TEST(LabControlPlaneDescriptors, ApiServerAndClientSocketsAreCloseOnExec) {
  ApiServerOptions o;
  o.threads = 4;
  ApiServer server(NewDefaultStore(), o);
  ASSERT_TRUE(server.Start().ok());
  k8s::RestConfig cfg;
  cfg.server = server.url();
  auto transport = k8s::NewCurlTransport(cfg);
  // A watch held open, as the kubelets' are: a client connection, curl's
  // wakeup socketpair and the server's accepted connection all stay.
  std::atomic<bool> stop{false};
  std::thread watcher([&] {
    k8s::HttpRequest req;
    req.method = "GET";
    req.path = "/api/v1/namespaces?watch=true";
    req.timeout = std::chrono::milliseconds(0);
    (void)transport->Stream(req, [](std::string_view) { return true; }, &stop);
  });
  bool open = WaitUntil([&] { return server.watches_served() > 0; }, 10s, 5ms);
  auto sockets = Sockets();
  stop = true;
  watcher.join();
  server.Stop();
  ASSERT_TRUE(open) << "the watch never reached the server";
  ASSERT_GE(sockets.size(), 4u) << "listener, client connection, accepted connection, socketpair";
  for (const auto& [fd, cloexec] : sockets) {
    EXPECT_TRUE(cloexec) << "socket fd " << fd << " would be inherited by a plugin";
  }
}

}  // namespace
}  // namespace terway::lab
