// The plugin's decisions with a scripted in-process daemon: validation order
// (nothing reaches the daemon for a bad invocation), result shapes per
// version, and the daemon-outcome -> CNI code table.
#include "cni/plugin.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "unit/cni/fake_daemon.h"

namespace terway::cni {
namespace {

using nlohmann::json;
using protocol::ErrorClass;
using protocol::Reply;
using protocol::Request;

// A DaemonClient whose answer the test scripts; it records the requests.
struct Script {
  std::function<Result<Reply>(const Request&)> answer;
  std::vector<Request> seen;
  std::string socket;
  std::chrono::milliseconds timeout{0};
};

class ScriptedClient : public DaemonClient {
 public:
  explicit ScriptedClient(Script* s) : s_(s) {}
  Result<Reply> Call(const Request& req) override {
    s_->seen.push_back(req);
    return s_->answer(req);
  }

 private:
  Script* s_;
};

class PluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netns_ = dir_.path() + "/netns";
    std::ofstream(netns_) << "";
    script_.answer = [](const Request& r) -> Result<Reply> {
      if (r.op == protocol::Op::kStatus) {
        Reply s;
        s.status = protocol::DaemonStatus{true, true, ""};
        return s;
      }
      if (r.op == protocol::Op::kAllocate || r.op == protocol::Op::kGet) return testing::PodNetworkReply(r);
      return Reply{};
    };
  }

  Invocation Make(const std::string& cmd, const std::string& version, const std::string& extra = "") {
    Invocation inv;
    inv.env = {{"CNI_COMMAND", cmd},      {"CNI_CONTAINERID", "c0ffee01"},
               {"CNI_NETNS", netns_},     {"CNI_IFNAME", "eth0"},
               {"CNI_PATH", "/opt/cni/bin"},
               {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u1"}};
    inv.stdin_data = R"({"cniVersion":")" + version + R"(","name":"terway","type":"terway")" + extra + "}";
    return inv;
  }

  Outcome Run(const Invocation& inv) {
    return RunPlugin(inv, [this](const std::string& socket, std::chrono::milliseconds timeout) {
      script_.socket = socket;
      script_.timeout = timeout;
      return std::unique_ptr<DaemonClient>(new ScriptedClient(&script_));
    });
  }

  // Runs and returns the CNI error code (0 on success).
  int Code(const Invocation& inv) {
    Outcome o = Run(inv);
    if (o.exit_code == 0) return 0;
    json j = json::parse(o.stdout_text);
    EXPECT_TRUE(j.contains("cniVersion") && j.contains("msg")) << o.stdout_text;
    return j["code"].get<int>();
  }

  testing::TempDir dir_;
  std::string netns_;
  Script script_;
};

const char* kVersions[] = {"0.3.1", "0.4.0", "1.0.0", "1.1.0"};

TEST_F(PluginTest, AddReturnsResultInRequestedShape) {
  for (const char* v : kVersions) {
    script_.seen.clear();
    Outcome o = Run(Make("ADD", v));
    ASSERT_EQ(o.exit_code, 0) << v << ": " << o.stdout_text;
    json j = json::parse(o.stdout_text);
    EXPECT_EQ(j["cniVersion"], v);
    EXPECT_EQ(j["ips"][0]["address"], "198.18.0.10/32");
    EXPECT_EQ(j["ips"][0].contains("version"), std::string(v) < "1.0.0") << v;
    int idx = j["ips"][0]["interface"];
    EXPECT_EQ(j["interfaces"][idx]["name"], "eth0");
    EXPECT_EQ(j["interfaces"][idx]["sandbox"], netns_);  // filled in by the plugin
    EXPECT_EQ(j["interfaces"][idx]["mac"], "02:00:00:00:00:02");
    ASSERT_EQ(script_.seen.size(), 1u);
    const Request& r = script_.seen[0];
    EXPECT_EQ(r.op, protocol::Op::kAllocate);
    EXPECT_EQ(r.pod, (protocol::PodRef{"default", "web-0", "u1", ""}));
    EXPECT_EQ(r.container_id, "c0ffee01");
    EXPECT_EQ(r.netns, netns_);
    EXPECT_EQ(r.cni_version, v);
  }
}

TEST_F(PluginTest, AddHandsBandwidthAndTerwayFieldsToDaemon) {
  Run(Make("ADD", "1.0.0",
           R"(,"mtu":1450,"eniip_virtual_type":"IPVlan","service_cidr":"172.21.0.0/20",
               "capabilities":{"bandwidth":true},
               "runtimeConfig":{"bandwidth":{"ingressRate":8000,"ingressBurst":16000}})"));
  ASSERT_EQ(script_.seen.size(), 1u);
  const Request& r = script_.seen[0];
  ASSERT_TRUE(r.bandwidth.has_value());
  EXPECT_EQ(r.bandwidth->ingress_rate, 8000u);
  EXPECT_EQ(r.bandwidth->ingress_burst, 16000u);
  EXPECT_EQ(r.bandwidth->egress_rate, 0u);
  EXPECT_EQ(r.network.mtu, 1450);
  EXPECT_EQ(r.network.eniip_virtual_type, "ipvlan");
  EXPECT_EQ(r.network.service_cidr, "172.21.0.0/20");
}

TEST_F(PluginTest, AddPassesPrevResultThrough) {
  Outcome o = Run(Make("ADD", "1.0.0",
                       R"(,"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"lo","sandbox":"/x"}],
                          "ips":[{"address":"127.0.0.1/8","interface":0}],"dns":{"nameservers":["10.0.0.10"]}})"));
  ASSERT_EQ(o.exit_code, 0) << o.stdout_text;
  json j = json::parse(o.stdout_text);
  ASSERT_EQ(j["ips"].size(), 2u);
  EXPECT_EQ(j["ips"][0]["address"], "127.0.0.1/8");
  EXPECT_EQ(j["interfaces"][j["ips"][1]["interface"].get<int>()]["name"], "eth0");
  EXPECT_EQ(j["dns"]["nameservers"][0], "10.0.0.10");
}

// Bad invocations: the right code, and the daemon is never asked (nothing
// changes on the host).
TEST_F(PluginTest, BadInvocationsNeverReachTheDaemon) {
  struct Case {
    const char* name;
    std::function<void(Invocation&)> mutate;
    int code;
  } cases[] = {
      {"no command", [](Invocation& i) { i.env.erase("CNI_COMMAND"); }, 4},
      {"unknown command", [](Invocation& i) { i.env["CNI_COMMAND"] = "PATCH"; }, 4},
      {"no container id", [](Invocation& i) { i.env.erase("CNI_CONTAINERID"); }, 4},
      {"bad container id", [](Invocation& i) { i.env["CNI_CONTAINERID"] = "../etc"; }, 4},
      {"no netns", [](Invocation& i) { i.env.erase("CNI_NETNS"); }, 4},
      {"netns missing", [](Invocation& i) { i.env["CNI_NETNS"] = "/nonexistent/netns/x"; }, 4},
      {"bad ifname", [](Invocation& i) { i.env["CNI_IFNAME"] = "eth0:1"; }, 4},
      {"unknown CNI_ARGS", [](Invocation& i) { i.env["CNI_ARGS"] = "FOO=bar"; }, 4},
      {"host netns", [](Invocation& i) { i.env["CNI_NETNS"] = "/proc/self/ns/net"; }, 8},
      {"host netns on DEL",
       [](Invocation& i) {
         i.env["CNI_NETNS"] = "/proc/self/ns/net";
         i.env["CNI_COMMAND"] = "DEL";
       },
       8},
      {"empty stdin", [](Invocation& i) { i.stdin_data = ""; }, 6},
      {"truncated json", [](Invocation& i) { i.stdin_data = R"({"cniVersion":"1.0.0",)"; }, 6},
      {"json array", [](Invocation& i) { i.stdin_data = "[]"; }, 6},
      {"unknown version", [](Invocation& i) { i.stdin_data = R"({"cniVersion":"0.2.0","name":"n"})"; }, 1},
      {"no version", [](Invocation& i) { i.stdin_data = R"({"name":"n"})"; }, 1},
      {"no name", [](Invocation& i) { i.stdin_data = R"({"cniVersion":"1.0.0"})"; }, 7},
      {"bad mtu", [](Invocation& i) { i.stdin_data = R"({"cniVersion":"1.0.0","name":"n","mtu":-3})"; }, 7},
      {"bad cidr",
       [](Invocation& i) { i.stdin_data = R"({"cniVersion":"1.0.0","name":"n","service_cidr":"1.2.3/4"})"; }, 7},
      {"unsupported virtual type",
       [](Invocation& i) { i.stdin_data = R"({"cniVersion":"1.0.0","name":"n","eniip_virtual_type":"x"})"; }, 2},
  };
  for (const auto& c : cases) {
    script_.seen.clear();
    Invocation inv = Make("ADD", "1.0.0");
    c.mutate(inv);
    EXPECT_EQ(Code(inv), c.code) << c.name;
    EXPECT_TRUE(script_.seen.empty()) << c.name << ": the daemon was asked";
  }
}

TEST_F(PluginTest, NetnsOverrideAllowsOwnNamespace) {
  Invocation inv = Make("ADD", "1.0.0");
  inv.env["CNI_NETNS"] = "/proc/self/ns/net";
  inv.env["CNI_NETNS_OVERRIDE"] = "1";
  EXPECT_EQ(Code(inv), 0);
}

TEST_F(PluginTest, ErrorsUseTheConfigVersion) {
  Invocation inv = Make("ADD", "0.4.0");
  inv.env["CNI_IFNAME"] = "";
  Outcome o = Run(inv);
  EXPECT_EQ(json::parse(o.stdout_text)["cniVersion"], "0.4.0");
  inv.stdin_data = "garbage";
  EXPECT_EQ(json::parse(Run(inv).stdout_text)["cniVersion"], "1.1.0");
}

TEST_F(PluginTest, CommandsPerVersion) {
  struct Case {
    const char* cmd;
    const char* version;
    int code;
  } cases[] = {
      {"CHECK", "0.3.1", 1}, {"CHECK", "0.4.0", 0}, {"CHECK", "1.0.0", 0}, {"CHECK", "1.1.0", 0},
      {"GC", "0.4.0", 1},    {"GC", "1.0.0", 1},    {"GC", "1.1.0", 7},    {"STATUS", "1.0.0", 1},
      {"STATUS", "1.1.0", 0}, {"DEL", "0.3.1", 0},  {"DEL", "1.1.0", 0},
  };
  for (const auto& c : cases) {
    // GC with an empty list is valid (free everything); without one it is refused (7, above).
    EXPECT_EQ(Code(Make(c.cmd, c.version)), c.code) << c.cmd << " " << c.version;
  }
  EXPECT_EQ(Code(Make("GC", "1.1.0", R"(,"cni.dev/valid-attachments":[])")), 0);
  EXPECT_EQ(script_.seen.back().op, protocol::Op::kGc);
  EXPECT_TRUE(script_.seen.back().valid_attachments.empty());
}

TEST_F(PluginTest, VersionNeedsNothingButTheCommand) {
  Invocation inv;
  inv.env = {{"CNI_COMMAND", "VERSION"}};
  Outcome o = Run(inv);
  ASSERT_EQ(o.exit_code, 0);
  EXPECT_EQ(json::parse(o.stdout_text)["supportedVersions"].size(), 4u);
  EXPECT_TRUE(script_.seen.empty());
}

// The daemon-outcome table of plugin.h.
TEST_F(PluginTest, DaemonOutcomeToCniCode) {
  struct Case {
    const char* cmd;
    std::function<Result<Reply>(const Request&)> answer;
    int code;
  } cases[] = {
      {"ADD", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kUnavailable, "ENOENT"); }, 11},
      {"DEL", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kUnavailable, "ENOENT"); }, 11},
      {"CHECK", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kUnavailable, "ENOENT"); }, 11},
      {"GC", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kUnavailable, "ENOENT"); }, 11},
      {"STATUS", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kUnavailable, "ENOENT"); }, 50},
      {"ADD", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kTimeout, "slow"); }, 11},
      {"STATUS", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kTimeout, "slow"); }, 50},
      {"ADD", [](const Request&) -> Result<Reply> { return Error(ErrorCode::kInvalidArgument, "garbage"); }, 5},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kExhausted, "full"); }, 100},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kRetryable, "busy"); }, 11},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kInvalid, "bad"); }, 7},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kUnsupported, "ipvlan"); }, 2},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kInternal, "bug"); }, 101},
      {"ADD", [](const Request&) -> Result<Reply> { return Reply{}; }, 5},  // ok without an IP
      {"ADD",
       [](const Request& r) -> Result<Reply> {
         Reply rep = testing::PodNetworkReply(r);
         rep.result->interfaces[1].mac.clear();  // pod interface without a MAC
         return rep;
       },
       5},
      {"DEL", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kNotFound, "gone"); }, 0},
      {"DEL", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kRetryable, "busy"); }, 11},
      {"CHECK", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kNotFound, "gone"); }, 3},
      {"STATUS",
       [](const Request&) -> Result<Reply> {
         Reply r;
         r.status = protocol::DaemonStatus{false, true, "pool empty"};
         return r;
       },
       50},
      {"STATUS",
       [](const Request&) -> Result<Reply> {
         Reply r;
         r.status = protocol::DaemonStatus{false, false, "datapath broken"};
         return r;
       },
       51},
      {"STATUS", [](const Request&) -> Result<Reply> { return Reply::Fail(ErrorClass::kInternal, "x"); }, 50},
  };
  for (const auto& c : cases) {
    script_.answer = c.answer;
    std::string extra = std::string(c.cmd) == "GC" ? R"(,"cni.dev/valid-attachments":[])" : "";
    EXPECT_EQ(Code(Make(c.cmd, "1.1.0", extra)), c.code) << c.cmd;
  }
}

TEST_F(PluginTest, ExhaustedMessageNamesTheCause) {
  script_.answer = [](const Request&) -> Result<Reply> {
    return Reply::Fail(ErrorClass::kExhausted, "node i-1 holds its max of 30 pod IPs");
  };
  json j = json::parse(Run(Make("ADD", "1.0.0")).stdout_text);
  EXPECT_NE(j["msg"].get<std::string>().find("max of 30 pod IPs"), std::string::npos) << j.dump();
}

TEST_F(PluginTest, DelWithoutNetnsStillReleases) {
  Invocation inv = Make("DEL", "1.0.0");
  inv.env.erase("CNI_NETNS");
  EXPECT_EQ(Code(inv), 0);
  ASSERT_EQ(script_.seen.size(), 1u);
  EXPECT_EQ(script_.seen[0].op, protocol::Op::kRelease);
  inv.env["CNI_NETNS"] = "/nonexistent/netns";  // namespace already gone
  EXPECT_EQ(Code(inv), 0);
}

TEST_F(PluginTest, CheckComparesPrevResult) {
  EXPECT_EQ(Code(Make("CHECK", "1.0.0", R"(,"prevResult":{"ips":[{"address":"198.18.0.10/32"}]})")), 0);
  EXPECT_NE(Code(Make("CHECK", "1.0.0", R"(,"prevResult":{"ips":[{"address":"198.18.0.99/32"}]})")), 0);
}

TEST_F(PluginTest, GcSendsValidAttachments) {
  EXPECT_EQ(Code(Make("GC", "1.1.0", R"(,"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}])")), 0);
  ASSERT_EQ(script_.seen.size(), 1u);
  EXPECT_EQ(script_.seen[0].op, protocol::Op::kGc);
  EXPECT_EQ(script_.seen[0].valid_attachments, (std::vector<Attachment>{{"a", "eth0"}}));
}

TEST_F(PluginTest, SocketAndTimeoutSelection) {
  Run(Make("STATUS", "1.1.0"));
  EXPECT_EQ(script_.socket, protocol::kDefaultSocketPath);
  EXPECT_EQ(script_.timeout, std::chrono::seconds(5));
  Run(Make("ADD", "1.1.0", R"(,"daemon_socket":"/run/x.sock")"));
  EXPECT_EQ(script_.socket, "/run/x.sock");
  Invocation inv = Make("ADD", "1.1.0", R"(,"daemon_socket":"/run/x.sock")");
  inv.env["TERWAY_DAEMON_SOCKET"] = "/run/env.sock";
  inv.env["TERWAY_CNI_TIMEOUT_MS"] = "250";
  Run(inv);
  EXPECT_EQ(script_.socket, "/run/env.sock");
  EXPECT_EQ(script_.timeout, std::chrono::milliseconds(250));
}

// Runs and returns {code, message} of the CNI error (code 0 on success).
std::pair<int, std::string> CodeAndMessage(const Outcome& o) {
  if (o.exit_code == 0) return {0, ""};
  json j = json::parse(o.stdout_text);
  return {j["code"].get<int>(), j["msg"].get<std::string>() + " " + j.value("details", std::string())};
}

// A non-UTF-8 CNI_NETNS used to be echoed into the result's sandbox and
// abort the plugin (nlohmann::json type_error from dump()). Every CNI_*
// value that JSON cannot carry is refused as an invalid environment, naming
// the variable, before the daemon is asked.
TEST_F(PluginTest, EnvironmentThatIsNotUtf8IsRefusedNamingTheVariable) {
  const std::string odd_netns = dir_.path() + "/netns-\xff\xfe";
  std::ofstream(odd_netns) << "";  // exists, so only its name is wrong
  struct Case {
    const char* var;
    std::string value;
  } cases[] = {
      {"CNI_NETNS", odd_netns},
      {"CNI_IFNAME", "eth\xc3"},
      {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-\xe0\x80\xaf"},
      {"CNI_PATH", "/opt/cni/bin:/opt/\xff"},
  };
  for (const auto& c : cases) {
    for (const char* cmd : {"ADD", "CHECK", "DEL"}) {
      script_.seen.clear();
      Invocation inv = Make(cmd, "1.1.0");
      inv.env[c.var] = c.value;
      Outcome o;
      ASSERT_NO_THROW(o = Run(inv)) << c.var << " " << cmd;
      auto [code, msg] = CodeAndMessage(o);
      EXPECT_EQ(code, kInvalidEnvironment) << c.var << " " << cmd << ": " << o.stdout_text;
      EXPECT_NE(msg.find(std::string(c.var) + " is not valid UTF-8"), std::string::npos) << msg;
      EXPECT_TRUE(script_.seen.empty()) << c.var << " " << cmd << ": the daemon was asked";
    }
  }
}

// Input after a NUL byte on stdin used to be ignored (the JSON parser stops
// there): '{...}\0<anything>' passed as a valid configuration.
TEST_F(PluginTest, NulByteOnStdinIsADecodingFailure) {
  for (const std::string& tail : {std::string(""), std::string(R"({"mtu":"bogus"})"), std::string("\n")}) {
    script_.seen.clear();
    Invocation inv = Make("ADD", "1.0.0");
    const size_t at = inv.stdin_data.size();
    inv.stdin_data += '\0' + tail;
    auto [code, msg] = CodeAndMessage(Run(inv));
    EXPECT_EQ(code, kDecodingFailure) << msg;
    EXPECT_NE(msg.find("contains a NUL byte at offset " + std::to_string(at)), std::string::npos) << msg;
    EXPECT_TRUE(script_.seen.empty());
  }
}

// prevResult numbers used to be read as int: an interface index of 2^32
// wrapped to 0 and passed the range check, a route table of 2^32+1 became 1.
TEST_F(PluginTest, PrevResultNumbersOutOfRangeAreRefused) {
  const char* bad[] = {
      R"({"interfaces":[{"name":"lo"}],"ips":[{"address":"127.0.0.1/8","interface":4294967296}]})",
      R"({"ips":[{"address":"127.0.0.1/8"}],"routes":[{"dst":"0.0.0.0/0","table":4294967297}]})",
      R"({"interfaces":[{"name":"lo","mtu":-1}],"ips":[]})",
  };
  for (const char* prev : bad) {
    script_.seen.clear();
    auto [code, msg] = CodeAndMessage(Run(Make("ADD", "1.1.0", std::string(R"(,"prevResult":)") + prev)));
    EXPECT_EQ(code, kInvalidNetworkConfig) << prev;
    EXPECT_NE(msg.find("prevResult"), std::string::npos) << msg;
    EXPECT_TRUE(script_.seen.empty()) << prev;
  }
  // The largest table a route can name passes through exactly.
  Outcome o = Run(Make("ADD", "1.1.0", R"(,"prevResult":{"ips":[{"address":"127.0.0.1/8"}],
      "routes":[{"dst":"10.0.0.0/8","table":4294967295,"priority":4294967295,"scope":253}]})"));
  ASSERT_EQ(o.exit_code, 0) << o.stdout_text;
  json route = json::parse(o.stdout_text)["routes"][0];
  EXPECT_EQ(route["table"].get<uint64_t>(), 4294967295u);
  EXPECT_EQ(route["priority"].get<uint64_t>(), 4294967295u);
  EXPECT_EQ(route["scope"].get<uint64_t>(), 253u);
}

// A socket path longer than sun_path used to reach connect() and come back
// as code 5 ("reply cannot be read"). It is a configuration mistake: 7 from
// the conf's daemon_socket, 4 from $TERWAY_DAEMON_SOCKET, naming the path
// and the limit, and nothing connects.
TEST_F(PluginTest, SocketPathTooLongIsAConfigurationError) {
  const std::string long_path = "/run/" + std::string(120, 's') + ".sock";
  std::string conf_socket = R"(,"daemon_socket":")" + long_path + "\"";
  for (const char* cmd : {"ADD", "DEL", "CHECK", "STATUS"}) {
    script_.seen.clear();
    int calls = 0;
    auto real_client = [&](const std::string& socket, std::chrono::milliseconds timeout) {
      calls++;
      return MakeUnixDaemonClient(socket, timeout);
    };
    auto [code, msg] = CodeAndMessage(RunPlugin(Make(cmd, "1.1.0", conf_socket), real_client));
    EXPECT_EQ(code, kInvalidNetworkConfig) << cmd << ": " << msg;
    EXPECT_NE(msg.find(long_path), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most 107"), std::string::npos) << msg;
    EXPECT_NE(msg.find("daemon_socket"), std::string::npos) << msg;

    Invocation from_env = Make(cmd, "1.1.0");
    from_env.env["TERWAY_DAEMON_SOCKET"] = long_path;
    std::tie(code, msg) = CodeAndMessage(RunPlugin(from_env, real_client));
    EXPECT_EQ(code, kInvalidEnvironment) << cmd << ": " << msg;
    EXPECT_NE(msg.find("TERWAY_DAEMON_SOCKET"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at most 107"), std::string::npos) << msg;
    EXPECT_EQ(calls, 0) << cmd << ": a client was made";
  }
  // A NUL inside the conf's path would otherwise name another (or an
  // abstract) socket.
  auto [code, msg] = CodeAndMessage(Run(Make("ADD", "1.1.0", R"(,"daemon_socket":"\u0000terwayd")")));
  EXPECT_EQ(code, kInvalidNetworkConfig) << msg;
  EXPECT_TRUE(script_.seen.empty());
  // 107 bytes is still a path.
  std::string longest = "/" + std::string(protocol::kMaxSocketPathBytes - 1, 'x');
  EXPECT_EQ(Code(Make("ADD", "1.1.0", R"(,"daemon_socket":")" + longest + "\"")), 0);
  EXPECT_EQ(script_.socket, longest);
}

}  // namespace
}  // namespace terway::cni
