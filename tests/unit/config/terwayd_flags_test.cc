#include "config/terwayd_flags.h"

#include <gtest/gtest.h>

namespace terway::config {
namespace {

Result<TerwaydCommandLine> Parse(std::vector<std::string> args) { return ParseTerwaydCommandLine(args); }

// Upstream's chart runs exactly this.
TEST(TerwaydFlags, UpstreamDaemonSetCommandLine) {
  auto c = Parse({"-log-level", "info", "-daemon-mode", "ENIMultiIP", "-config", "/etc/eni/eni_conf"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->daemon_mode, "ENIMultiIP");
  EXPECT_EQ(c->config_path, "/etc/eni/eni_conf");
  EXPECT_TRUE(c->warnings.empty());
}

TEST(TerwaydFlags, GoFlagSyntaxEveryForm) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-config", "/x.json"}, {"-config=/x.json"}, {"--config", "/x.json"}, {"--config=/x.json"}}) {
    auto c = Parse(args);
    ASSERT_TRUE(c.ok()) << args[0] << ": " << c.error().ToString();
    EXPECT_EQ(c->config_path, "/x.json") << args[0];
  }
  // A value may contain '=' and start with '-'.
  auto eq = Parse({"-master=https://10.0.0.1:6443/?a=b", "-node-name", "-odd-name"});
  ASSERT_TRUE(eq.ok()) << eq.error().ToString();
  EXPECT_EQ(eq->api_server, "https://10.0.0.1:6443/?a=b");
  EXPECT_EQ(eq->node_name, "-odd-name");
  // The last occurrence wins, as in Go.
  auto twice = Parse({"-log-level", "debug", "--log-level=WARNING"});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->log_level, "warn");
  // "--" ends the flags.
  EXPECT_TRUE(Parse({"-config", "/a", "--"}).ok());
}

TEST(TerwaydFlags, OursAlongsideUpstreams) {
  auto c = Parse({"--config", "/c.json", "--socket", "/run/s", "--state", "/var/s.db", "--metrics-listen", "",
                  "--metrics-port-file", "/tmp/p", "--datapath", "none", "--kubeconfig", "/k", "--node-name", "n1",
                  "-daemon-mode=ENIOnly", "-master", "http://127.0.0.1:8080"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  EXPECT_EQ(c->socket_path, "/run/s");
  EXPECT_EQ(c->state_path, "/var/s.db");
  EXPECT_EQ(c->metrics_listen, "");
  EXPECT_EQ(c->metrics_port_file, "/tmp/p");
  EXPECT_EQ(c->datapath, "none");
  EXPECT_EQ(c->kubeconfig, "/k");
  EXPECT_EQ(c->node_name, "n1");
  EXPECT_EQ(c->daemon_mode, "ENIOnly");
  EXPECT_EQ(c->api_server, "http://127.0.0.1:8080");
}

TEST(TerwaydFlags, Defaults) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->config_path, "/etc/eni/eni.json");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9190");
  EXPECT_EQ(c->datapath, "auto");
  EXPECT_EQ(c->log_level, "info");
  EXPECT_EQ(c->daemon_mode, "");
  EXPECT_FALSE(c->help);
}

// Flags with no meaning here are accepted, each with a warning saying so.
TEST(TerwaydFlags, UpstreamOnlyFlagsWarn) {
  auto c = Parse({"-readonly-listen", "unix:///var/run/eni/eni_debug.socket", "-feature-gates",
                  "WriteCNIConfFirst=true"});
  ASSERT_TRUE(c.ok()) << c.error().ToString();
  ASSERT_EQ(c->warnings.size(), 2u);
  EXPECT_NE(c->warnings[0].find("-readonly-listen unix:///var/run/eni/eni_debug.socket"), std::string::npos);
  EXPECT_NE(c->warnings[0].find("terway-cli inspects the node over the CNI socket"), std::string::npos);
  EXPECT_NE(c->warnings[1].find("-feature-gates WriteCNIConfFirst=true"), std::string::npos);
}

TEST(TerwaydFlags, Help) {
  for (const char* h : {"-h", "-help", "--help", "--help=true"}) {
    auto c = Parse({h});
    ASSERT_TRUE(c.ok()) << h;
    EXPECT_TRUE(c->help) << h;
  }
  EXPECT_FALSE(Parse({"-help=false"})->help);
  const std::string usage = TerwaydUsage();
  for (const char* f : {"-daemon-mode value", "-config value", "-readonly-listen value", "-master value"}) {
    EXPECT_NE(usage.find(f), std::string::npos) << f;
  }
}

TEST(TerwaydFlags, RefusedWithAClearError) {
  struct Row {
    std::vector<std::string> args;
    const char* error;
  } rows[] = {
      {{"-no-such-flag"}, "flag provided but not defined: -no-such-flag; terwayd accepts"},
      {{"--bogus=1"}, "flag provided but not defined: -bogus"},
      {{"-config"}, "flag needs an argument: -config"},
      {{"serve"}, "terwayd takes no arguments, got \"serve\""},
      {{"-config", "/a", "extra"}, "terwayd takes no arguments, got \"extra\""},
      {{"--", "extra"}, "terwayd takes no arguments, got \"extra\""},
      {{"---config=/a"}, "bad flag syntax: ---config=/a"},
      {{"-=x"}, "bad flag syntax"},
      {{"-daemon-mode", "VPC"}, "Terway's VPC mode (pods routed without ENI addresses) is not implemented"},
      {{"-daemon-mode", "eniip"}, "invalid value \"eniip\" for flag -daemon-mode: use ENIMultiIP or ENIOnly"},
      {{"-log-level", "loud"}, "invalid value \"loud\" for flag -log-level"},
      {{"--datapath", "ipvlan"}, "use auto, shared, exclusive or none"},
      {{"-help=maybe"}, "invalid value \"maybe\" for flag -help: use true or false"},
  };
  for (const auto& r : rows) {
    auto c = Parse(r.args);
    ASSERT_FALSE(c.ok()) << r.args[0];
    EXPECT_EQ(c.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(c.error().message.find(r.error), std::string::npos) << r.args[0] << " -> " << c.error().message;
  }
}

}  // namespace
}  // namespace terway::config
