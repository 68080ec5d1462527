// The real `terway` binary driven as a container runtime drives it: the CNI_*
// environment, the network configuration on stdin, the answer on stdout, the
// exit code. The daemon is an in-test stand-in on a temp unix socket.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "test_util.h"
#include "unit/cni/fake_daemon.h"

namespace terway::cni {
namespace {

using nlohmann::json;
using protocol::ErrorClass;
using protocol::Op;
using protocol::Reply;
using protocol::Request;
using testing::FakeDaemon;
using testing::TempDir;

struct ProcResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  std::chrono::milliseconds took{0};
};

// Runs `path` with exactly `env` (no inherited variables, like a runtime that
// builds the plugin's environment), feeds `input` on stdin, collects stdout
// and stderr. Kills the child if it outlives `limit`, so a hung plugin fails
// the test instead of hanging it.
ProcResult RunProcess(const std::string& path, const std::map<std::string, std::string>& env,
                      const std::string& input, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  int in[2], out[2], err[2];
  EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
  auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  ProcResult r;
  if (rc != 0) {
    ADD_FAILURE() << "cannot spawn " << path << ": " << strerror(rc);
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return r;
  }
  // The plugin reads all of stdin before answering; a config fits the pipe
  // buffer, so writing it all first cannot deadlock.
  (void)!write(in[1], input.data(), input.size());
  close(in[1]);
  auto deadline = start + limit;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << path << " did not finish within " << limit.count() << " ms";
      break;
    }
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    for (int i = 0; i < 2; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_fds--;
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) close(f.fd);
  int status = 0;
  waitpid(pid, &status, 0);
  r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A daemon with just enough state for idempotency: container id -> IP.
class StatefulDaemon {
 public:
  StatefulDaemon() : daemon_([this](const Request& r) { return Handle(r); }) {}
  FakeDaemon& fake() { return daemon_; }
  size_t held() {
    std::lock_guard<std::mutex> l(mu_);
    return ips_.size();
  }
  void set_exhausted(bool v) { exhausted_ = v; }

 private:
  Reply Handle(const Request& r) {
    std::lock_guard<std::mutex> l(mu_);
    switch (r.op) {
      case Op::kAllocate: {
        if (exhausted_) return Reply::Fail(ErrorClass::kExhausted, "node i-test holds its max of 2 pod IPs");
        auto it = ips_.find(r.container_id);
        if (it == ips_.end())
          it = ips_.emplace(r.container_id, "198.18.0." + std::to_string(10 + next_++) + "/32").first;
        return testing::PodNetworkReply(r, it->second);
      }
      case Op::kRelease:
        if (ips_.erase(r.container_id) == 0)
          return Reply::Fail(ErrorClass::kNotFound, "container " + r.container_id + " holds no IP");
        return Reply{};
      case Op::kGet: {
        auto it = ips_.find(r.container_id);
        if (it == ips_.end()) return Reply::Fail(ErrorClass::kNotFound, "container " + r.container_id + " unknown");
        return testing::PodNetworkReply(r, it->second);
      }
      case Op::kStatus: {
        Reply s;
        s.status = protocol::DaemonStatus{true, true, ""};
        return s;
      }
      case Op::kGc: {
        std::set<std::string> keep;
        for (const auto& a : r.valid_attachments) keep.insert(a.container_id);
        for (auto it = ips_.begin(); it != ips_.end();) it = keep.count(it->first) ? std::next(it) : ips_.erase(it);
        return Reply{};
      }
      case Op::kPolicyExplain:
      case Op::kPolicyShow:
      case Op::kInspect:
        break;  // operator requests: never sent by the plugin
    }
    return Reply::Fail(ErrorClass::kInvalid, "unknown op");
  }

  std::mutex mu_;
  std::map<std::string, std::string> ips_;
  int next_ = 0;
  bool exhausted_ = false;
  FakeDaemon daemon_;
};

class TerwayE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = TERWAY_PLUGIN_PATH;
    ASSERT_EQ(access(binary_.c_str(), X_OK), 0) << "build the terway target first: " << binary_;
    // The plugin only checks that CNI_NETNS exists; terwayd enters it.
    netns_ = dir_.path() + "/netns-" + terway::testing::UniqueSuffix();
    std::ofstream(netns_) << "";
  }

  std::map<std::string, std::string> Env(const std::string& cmd, const std::string& container_id = "c0ffee01") {
    return {{"CNI_COMMAND", cmd},
            {"CNI_CONTAINERID", container_id},
            {"CNI_NETNS", netns_},
            {"CNI_IFNAME", "eth0"},
            {"CNI_PATH", "/opt/cni/bin"},
            {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u1"},
            {"TERWAY_DAEMON_SOCKET", daemon_.fake().socket_path()},
            {"TERWAY_CNI_TIMEOUT_MS", "5000"}};
  }

  static std::string Conf(const std::string& version, const std::string& extra = "") {
    return R"({"cniVersion":")" + version +
           R"(","name":"terway","type":"terway","eniip_virtual_type":"Veth","capabilities":{"bandwidth":true})" +
           extra + "}";
  }

  // Asserts a failure printed one CNI error object; returns its code.
  static int ErrorCode(const ProcResult& r) {
    EXPECT_NE(r.exit_code, 0) << r.out;
    json j = json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << "stdout is not JSON: " << r.out;
    if (j.is_discarded()) return -1;
    EXPECT_TRUE(j.contains("cniVersion") && j.contains("msg")) << r.out;
    return j.value("code", -1);
  }

  TempDir dir_;
  StatefulDaemon daemon_;
  std::string binary_;
  std::string netns_;
};

TEST_F(TerwayE2E, Version) {
  ProcResult r = RunProcess(binary_, {{"CNI_COMMAND", "VERSION"}}, "");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["cniVersion"], "1.1.0");
  EXPECT_EQ(j["supportedVersions"], json::parse(R"(["0.3.1","0.4.0","1.0.0","1.1.0"])"));
}

TEST_F(TerwayE2E, AddCheckDelForEveryVersion) {
  for (const char* v : {"0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    SCOPED_TRACE(v);
    const std::string id = std::string("ctr") + v;
    ProcResult add = RunProcess(binary_, Env("ADD", id), Conf(v));
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
    json res = json::parse(add.out);
    EXPECT_EQ(res["cniVersion"], v);
    ASSERT_EQ(res["ips"].size(), 1u);
    EXPECT_EQ(res["ips"][0].contains("version"), std::string(v) < "1.0.0");
    int idx = res["ips"][0]["interface"];
    EXPECT_EQ(res["interfaces"][idx]["name"], "eth0");
    EXPECT_EQ(res["interfaces"][idx]["sandbox"], netns_);
    EXPECT_FALSE(res["interfaces"][idx]["mac"].get<std::string>().empty());
    EXPECT_EQ(res["routes"][0]["dst"], "0.0.0.0/0");

    // ADD again (a runtime retry): idempotent, same address.
    ProcResult again = RunProcess(binary_, Env("ADD", id), Conf(v));
    ASSERT_EQ(again.exit_code, 0) << again.out;
    EXPECT_EQ(json::parse(again.out)["ips"][0]["address"], res["ips"][0]["address"]);

    // CHECK with the result as prevResult (what runtimes send).
    std::string with_prev = Conf(v, ",\"prevResult\":" + add.out);
    ProcResult check = RunProcess(binary_, Env("CHECK", id), with_prev);
    if (std::string(v) == "0.3.1") {
      EXPECT_EQ(ErrorCode(check), 1) << "CHECK does not exist in 0.3.1";
    } else {
      EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
      EXPECT_TRUE(check.out.empty()) << check.out;
    }

    ProcResult del = RunProcess(binary_, Env("DEL", id), with_prev);
    EXPECT_EQ(del.exit_code, 0) << del.out << del.err;
    EXPECT_TRUE(del.out.empty());
    // DEL again: nothing held any more, still success.
    ProcResult del2 = RunProcess(binary_, Env("DEL", id), with_prev);
    EXPECT_EQ(del2.exit_code, 0) << del2.out << del2.err;

    if (std::string(v) != "0.3.1") {
      ProcResult gone = RunProcess(binary_, Env("CHECK", id), with_prev);
      EXPECT_EQ(ErrorCode(gone), 3) << "CHECK after DEL: container unknown";
    }
  }
  EXPECT_EQ(daemon_.held(), 0u);
}

TEST_F(TerwayE2E, DelSucceedsWhenNetnsIsGone) {
  ASSERT_EQ(RunProcess(binary_, Env("ADD"), Conf("1.0.0")).exit_code, 0);
  auto env = Env("DEL");
  env["CNI_NETNS"] = dir_.path() + "/already-removed";
  EXPECT_EQ(RunProcess(binary_, env, Conf("1.0.0")).exit_code, 0);
  env.erase("CNI_NETNS");
  EXPECT_EQ(RunProcess(binary_, env, Conf("1.0.0")).exit_code, 0);
  EXPECT_EQ(daemon_.held(), 0u);
}

TEST_F(TerwayE2E, GcAndStatusOnlyIn110) {
  ASSERT_EQ(RunProcess(binary_, Env("ADD", "keep"), Conf("1.1.0")).exit_code, 0);
  ASSERT_EQ(RunProcess(binary_, Env("ADD", "stale"), Conf("1.1.0")).exit_code, 0);
  ASSERT_EQ(daemon_.held(), 2u);

  std::map<std::string, std::string> gc_env = {{"CNI_COMMAND", "GC"}, {"CNI_PATH", "/opt/cni/bin"},
                                               {"TERWAY_DAEMON_SOCKET", daemon_.fake().socket_path()}};
  EXPECT_EQ(ErrorCode(RunProcess(binary_, gc_env, Conf("1.0.0"))), 1);
  EXPECT_EQ(ErrorCode(RunProcess(binary_, gc_env, Conf("1.1.0"))), 7) << "GC without the list frees nothing";
  EXPECT_EQ(daemon_.held(), 2u);
  ProcResult gc = RunProcess(binary_, gc_env,
                             Conf("1.1.0", R"(,"cni.dev/valid-attachments":[{"containerID":"keep","ifname":"eth0"}])"));
  EXPECT_EQ(gc.exit_code, 0) << gc.out << gc.err;
  EXPECT_EQ(daemon_.held(), 1u);
  auto reqs = daemon_.fake().requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs.back().op, Op::kGc);
  EXPECT_EQ(reqs.back().valid_attachments, (std::vector<Attachment>{{"keep", "eth0"}}));

  std::map<std::string, std::string> st_env = {{"CNI_COMMAND", "STATUS"}, {"CNI_PATH", "/opt/cni/bin"},
                                               {"TERWAY_DAEMON_SOCKET", daemon_.fake().socket_path()}};
  ProcResult st = RunProcess(binary_, st_env, Conf("1.1.0"));
  EXPECT_EQ(st.exit_code, 0) << st.out << st.err;
  EXPECT_TRUE(st.out.empty());
  EXPECT_EQ(ErrorCode(RunProcess(binary_, st_env, Conf("0.4.0"))), 1);
}

TEST_F(TerwayE2E, MalformedInputGetsTheRightCodeAndNeverReachesTheDaemon) {
  struct Case {
    const char* name;
    std::function<void(std::map<std::string, std::string>&, std::string&)> mutate;
    int code;
  } cases[] = {
      {"not json", [](auto&, std::string& c) { c = "{\"cniVersion\": \"1.0.0\", oops"; }, 6},
      {"empty stdin", [](auto&, std::string& c) { c = ""; }, 6},
      {"unknown version", [](auto&, std::string& c) { c = Conf("0.9.9"); }, 1},
      {"missing version", [](auto&, std::string& c) { c = R"({"name":"terway","type":"terway"})"; }, 1},
      {"missing name", [](auto&, std::string& c) { c = R"({"cniVersion":"1.0.0","type":"terway"})"; }, 7},
      {"bad mtu", [](auto&, std::string& c) { c = Conf("1.0.0", R"(,"mtu":"big")"); }, 7},
      {"bad bandwidth",
       [](auto&, std::string& c) { c = Conf("1.0.0", R"(,"runtimeConfig":{"bandwidth":{"egressRate":-5}})"); }, 7},
      {"missing CNI_CONTAINERID", [](auto& e, std::string&) { e.erase("CNI_CONTAINERID"); }, 4},
      {"missing CNI_NETNS", [](auto& e, std::string&) { e.erase("CNI_NETNS"); }, 4},
      {"netns does not exist", [](auto& e, std::string&) { e["CNI_NETNS"] = "/nonexistent/ns"; }, 4},
      {"host netns", [](auto& e, std::string&) { e["CNI_NETNS"] = "/proc/self/ns/net"; }, 8},
      {"bad CNI_IFNAME", [](auto& e, std::string&) { e["CNI_IFNAME"] = "way-too-long-name0"; }, 4},
      {"bad CNI_CONTAINERID", [](auto& e, std::string&) { e["CNI_CONTAINERID"] = "a b"; }, 4},
      {"unknown CNI_COMMAND", [](auto& e, std::string&) { e["CNI_COMMAND"] = "REPAIR"; }, 4},
      {"no CNI_COMMAND", [](auto& e, std::string&) { e.erase("CNI_COMMAND"); }, 4},
  };
  for (const auto& c : cases) {
    auto env = Env("ADD");
    std::string conf = Conf("1.0.0");
    c.mutate(env, conf);
    ProcResult r = RunProcess(binary_, env, conf);
    EXPECT_EQ(ErrorCode(r), c.code) << c.name << ": " << r.out;
  }
  EXPECT_TRUE(daemon_.fake().requests().empty()) << "a malformed invocation reached the daemon";
  EXPECT_TRUE(daemon_.fake().connection_errors().empty());
}

TEST_F(TerwayE2E, DaemonDown) {
  auto env = Env("ADD");
  env["TERWAY_DAEMON_SOCKET"] = dir_.path() + "/no-daemon.socket";
  ProcResult add = RunProcess(binary_, env, Conf("1.0.0"));
  EXPECT_EQ(ErrorCode(add), 11);
  EXPECT_NE(add.out.find("no-daemon.socket"), std::string::npos) << "the error names the socket: " << add.out;
  env["CNI_COMMAND"] = "DEL";
  EXPECT_EQ(ErrorCode(RunProcess(binary_, env, Conf("1.0.0"))), 11) << "DEL must not pretend an IP was freed";
  env["CNI_COMMAND"] = "STATUS";
  EXPECT_EQ(ErrorCode(RunProcess(binary_, env, Conf("1.1.0"))), 50);
}

TEST_F(TerwayE2E, SilentDaemonTimesOutWithTryAgainLater) {
  daemon_.fake().set_mode(FakeDaemon::Mode::kSilent);
  auto env = Env("ADD");
  env["TERWAY_CNI_TIMEOUT_MS"] = "300";
  ProcResult r = RunProcess(binary_, env, Conf("1.0.0"));
  EXPECT_EQ(ErrorCode(r), 11);
  EXPECT_GE(r.took.count(), 300);
  EXPECT_LT(r.took.count(), 5000);
  auto reqs = daemon_.fake().requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_GT(reqs[0].deadline_ms, 0u);
  EXPECT_LT(reqs[0].deadline_ms, 300u) << "the daemon is told to give up before the plugin does";
}

TEST_F(TerwayE2E, ExhaustedNodeGivesAClearError) {
  daemon_.set_exhausted(true);
  ProcResult r = RunProcess(binary_, Env("ADD"), Conf("1.0.0"));
  EXPECT_EQ(ErrorCode(r), 100);
  EXPECT_NE(json::parse(r.out)["msg"].get<std::string>().find("max of 2 pod IPs"), std::string::npos) << r.out;
}

TEST_F(TerwayE2E, LogsGoToStderrOnly) {
  auto env = Env("ADD");
  env["TERWAY_CNI_LOG_LEVEL"] = "debug";
  ProcResult r = RunProcess(binary_, env, Conf("1.0.0"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.err.empty()) << "debug logging produced nothing";
  json j = json::parse(r.out);  // stdout is exactly the result
  EXPECT_EQ(j["cniVersion"], "1.0.0");
}

TEST_F(TerwayE2E, RequestCarriesPodIdentityAndBandwidth) {
  ProcResult r = RunProcess(
      binary_, Env("ADD"),
      Conf("1.0.0", R"(,"runtimeConfig":{"bandwidth":{"ingressRate":1000000,"ingressBurst":2000000}})"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto reqs = daemon_.fake().requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].pod, (protocol::PodRef{"default", "web-0", "u1", ""}));
  ASSERT_TRUE(reqs[0].bandwidth.has_value());
  EXPECT_EQ(reqs[0].bandwidth->ingress_rate, 1000000u);
  EXPECT_EQ(reqs[0].network.eniip_virtual_type, "veth");
}

}  // namespace
}  // namespace terway::cni
