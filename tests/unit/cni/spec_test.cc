#include "cni/spec.h"

#include <gtest/gtest.h>

namespace terway::cni {
namespace {

TEST(SpecVersion, ParsesExactlyTheSupportedVersions) {
  for (const auto& v : SupportedVersionStrings()) {
    auto p = ParseSpecVersion(v);
    ASSERT_TRUE(p.has_value()) << v;
    EXPECT_EQ(SpecVersionString(*p), v);
  }
  for (const char* bad : {"", "0.1.0", "0.2.0", "0.3.0", "1.0", "1.2.0", "v1.0.0", " 1.0.0"})
    EXPECT_FALSE(ParseSpecVersion(bad).has_value()) << bad;
}

TEST(SpecVersion, CommandAvailability) {
  EXPECT_FALSE(SupportsCheck(SpecVersion::k031));
  EXPECT_TRUE(SupportsCheck(SpecVersion::k040));
  EXPECT_TRUE(SupportsCheck(SpecVersion::k110));
  EXPECT_FALSE(SupportsGcAndStatus(SpecVersion::k100));
  EXPECT_TRUE(SupportsGcAndStatus(SpecVersion::k110));
}

TEST(CniArgs, ParsesKubernetesKeys) {
  auto a = ParseCniArgs(
      "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_UID=u-1;"
      "K8S_POD_INFRA_CONTAINER_ID=abc;OTHER=x=y");
  ASSERT_TRUE(a.ok()) << a.error().ToString();
  EXPECT_TRUE(a->ignore_unknown);
  EXPECT_EQ(a->pod_namespace, "default");
  EXPECT_EQ(a->pod_name, "web-0");
  EXPECT_EQ(a->pod_uid, "u-1");
  EXPECT_EQ(a->infra_container_id, "abc");
  EXPECT_EQ(a->all.at("OTHER"), "x=y");  // only the first '=' splits
}

TEST(CniArgs, Table) {
  struct Case {
    const char* text;
    bool ok;
  } cases[] = {
      {"", true},
      {";;", true},
      {"K8S_POD_NAME=a", true},
      {"IgnoreUnknown=true;FOO=1", true},
      {"IgnoreUnknown=0;FOO=1", false},
      {"FOO=1", false},
      {"K8S_POD_NAME", false},
      {"=v", false},
      {"IgnoreUnknown=1;novalue", false},
  };
  for (const auto& c : cases) EXPECT_EQ(ParseCniArgs(c.text).ok(), c.ok) << c.text;
}

TEST(Validate, ContainerId) {
  for (const char* good : {"a", "0abc", "abc-def_ghi.jkl", "f9b1c4f2e8d7"})
    EXPECT_TRUE(ValidateContainerId(good).ok()) << good;
  for (const char* bad : {"", "-abc", "_a", ".a", "a/b", "a b", "a;b", "a:b"})
    EXPECT_FALSE(ValidateContainerId(bad).ok()) << bad;
}

TEST(Validate, InterfaceName) {
  for (const char* good : {"eth0", "a", "123456789012345", "net-1.2"})
    EXPECT_TRUE(ValidateInterfaceName(good).ok()) << good;
  for (const char* bad : {"", ".", "..", "1234567890123456", "a/b", "a:b", "a b", "a\tb"})
    EXPECT_FALSE(ValidateInterfaceName(bad).ok()) << bad;
}

std::map<std::string, std::string> AddEnv() {
  return {{"CNI_COMMAND", "ADD"}, {"CNI_CONTAINERID", "c1"}, {"CNI_NETNS", "/var/run/netns/x"},
          {"CNI_IFNAME", "eth0"}, {"CNI_PATH", "/opt/cni/bin:/usr/lib/cni"},
          {"CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p"}};
}

TEST(Environment, ParsesAdd) {
  auto e = ParseEnvironment(AddEnv());
  ASSERT_TRUE(e.ok()) << e.error().ToString();
  EXPECT_EQ(e->command, Command::kAdd);
  EXPECT_EQ(e->container_id, "c1");
  EXPECT_EQ(e->netns, "/var/run/netns/x");
  EXPECT_EQ(e->ifname, "eth0");
  EXPECT_EQ(e->path, (std::vector<std::string>{"/opt/cni/bin", "/usr/lib/cni"}));
  EXPECT_EQ(e->args.pod_name, "p");
}

// Which variables each command needs: a table of (command, variable removed,
// must still parse).
TEST(Environment, RequiredVariablesPerCommand) {
  struct Case {
    const char* cmd;
    const char* drop;
    bool ok;
  } cases[] = {
      {"ADD", "CNI_CONTAINERID", false}, {"ADD", "CNI_NETNS", false},   {"ADD", "CNI_IFNAME", false},
      {"ADD", "CNI_PATH", false},        {"ADD", "CNI_ARGS", true},     {"CHECK", "CNI_NETNS", false},
      {"CHECK", "CNI_PATH", false},      {"DEL", "CNI_NETNS", true},    {"DEL", "CNI_CONTAINERID", false},
      {"DEL", "CNI_IFNAME", false},      {"VERSION", "CNI_CONTAINERID", true},
      {"GC", "CNI_CONTAINERID", true},   {"GC", "CNI_NETNS", true},     {"STATUS", "CNI_IFNAME", true},
      {"STATUS", "CNI_PATH", true},
  };
  for (const auto& c : cases) {
    auto env = AddEnv();
    env["CNI_COMMAND"] = c.cmd;
    env.erase(c.drop);
    auto e = ParseEnvironment(env);
    EXPECT_EQ(e.ok(), c.ok) << c.cmd << " without " << c.drop;
    if (!c.ok && !e.ok()) {
      EXPECT_NE(e.error().ToString().find(c.drop), std::string::npos) << e.error().ToString();
    }
  }
}

TEST(Environment, NamesAllMissingVariablesAtOnce) {
  auto e = ParseEnvironment({{"CNI_COMMAND", "ADD"}});
  ASSERT_FALSE(e.ok());
  for (const char* v : {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"})
    EXPECT_NE(e.error().ToString().find(v), std::string::npos) << v;
}

TEST(Environment, RejectsBadCommandAndValues) {
  EXPECT_FALSE(ParseEnvironment({}).ok());
  auto env = AddEnv();
  env["CNI_COMMAND"] = "add";  // commands are upper case
  EXPECT_FALSE(ParseEnvironment(env).ok());
  env = AddEnv();
  env["CNI_CONTAINERID"] = "bad id";
  EXPECT_FALSE(ParseEnvironment(env).ok());
  env = AddEnv();
  env["CNI_IFNAME"] = "this-name-is-too-long";
  EXPECT_FALSE(ParseEnvironment(env).ok());
  env = AddEnv();
  env["CNI_ARGS"] = "UNKNOWN=1";
  EXPECT_FALSE(ParseEnvironment(env).ok());
}

}  // namespace
}  // namespace terway::cni
