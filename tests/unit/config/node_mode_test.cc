#include "config/node_mode.h"

#include <gtest/gtest.h>

namespace terway::config {
namespace {

EniConfig Conf(const std::string& json) {
  auto p = ParseEniConfig(json);
  EXPECT_TRUE(p.ok()) << p.error().ToString();
  return p.ok() ? p->config : EniConfig{};
}

const std::map<std::string, std::string> kLabelled = {{"k8s.aliyun.com/exclusive-mode-eni-type", "eniOnly"}};

TEST(LabelsSelectExclusiveEni, UpstreamsLabelCaseInsensitively) {
  EXPECT_TRUE(LabelsSelectExclusiveEni(kLabelled));
  EXPECT_TRUE(LabelsSelectExclusiveEni({{"k8s.aliyun.com/exclusive-mode-eni-type", "ENIONLY"}}));
  EXPECT_FALSE(LabelsSelectExclusiveEni({{"k8s.aliyun.com/exclusive-mode-eni-type", "default"}}));
  EXPECT_FALSE(LabelsSelectExclusiveEni({{"k8s.aliyun.com/exclusive-mode-eni-type", ""}}));
  EXPECT_FALSE(LabelsSelectExclusiveEni({{"exclusive-mode-eni-type", "eniOnly"}}));
  EXPECT_FALSE(LabelsSelectExclusiveEni({}));
}

TEST(ResolveEniMode, Table) {
  struct Row {
    const char* name;
    const char* eni_conf;
    std::map<std::string, std::string> labels;
    const char* daemon_mode;
    EniMode want;
    const char* source;
    bool warns;
  } rows[] = {
      {"default: shared", "{}", {}, "", EniMode::kShared, "the default", false},
      {"upstream's DaemonSet flag changes nothing", "{}", {}, "ENIMultiIP", EniMode::kShared, "the default", false},
      {"eni_conf eni_mode", R"({"eni_mode":"exclusive"})", {}, "ENIMultiIP", EniMode::kExclusive,
       "eni_conf eni_mode \"exclusive\"", false},
      {"the label selects exclusive", "{}", kLabelled, "ENIMultiIP", EniMode::kExclusive,
       "node label k8s.aliyun.com/exclusive-mode-eni-type=eniOnly", false},
      {"the label wins over eni_mode shared (e.g. from terway-config), with a warning",
       R"({"eni_mode":"shared"})", kLabelled, "", EniMode::kExclusive, "node label", true},
      {"the label's other values leave eni_conf in charge", R"({"eni_mode":"exclusive"})",
       {{"k8s.aliyun.com/exclusive-mode-eni-type", "default"}}, "", EniMode::kExclusive, "eni_conf", false},
      {"-daemon-mode ENIOnly: exclusive everywhere", "{}", {}, "ENIOnly", EniMode::kExclusive, "-daemon-mode ENIOnly",
       false},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto c = ResolveEniMode(Conf(r.eni_conf), r.labels, r.daemon_mode);
    ASSERT_TRUE(c.ok()) << c.error().ToString();
    EXPECT_EQ(c->mode, r.want);
    EXPECT_NE(c->source.find(r.source), std::string::npos) << c->source;
    EXPECT_EQ(!c->warnings.empty(), r.warns);
  }
}

TEST(ResolveEniMode, RefusesWhatItCannotDo) {
  auto vpc = ResolveEniMode(EniConfig{}, {}, "VPC");
  ASSERT_FALSE(vpc.ok());
  EXPECT_NE(vpc.error().message.find("-daemon-mode VPC is not supported"), std::string::npos);
  EXPECT_NE(vpc.error().message.find("use ENIMultiIP"), std::string::npos);
  auto clash = ResolveEniMode(Conf(R"({"eni_mode":"shared"})"), {}, "ENIOnly");
  ASSERT_FALSE(clash.ok());
  EXPECT_NE(clash.error().message.find("eni_mode is \"shared\""), std::string::npos) << clash.error().message;
}

// Upstream applies the label only to a node created with it; we refuse to
// carry pods over into the other mode, and let a node without pods switch.
TEST(CheckEniModeSwitch, PodsOfTheOtherModeBlockTheSwitch) {
  auto exclusive = ResolveEniMode(EniConfig{}, kLabelled, "");
  ASSERT_TRUE(exclusive.ok());
  EXPECT_TRUE(CheckEniModeSwitch(*exclusive, {}).ok()) << "no pods: a new (or drained) node";
  EXPECT_TRUE(CheckEniModeSwitch(*exclusive, {"exclusive", "exclusive", ""}).ok());
  Status st = CheckEniModeSwitch(*exclusive, {"shared", "shared", "exclusive"});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("runs 2 pod(s) set up with shared ENI"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("remove the k8s.aliyun.com/exclusive-mode-eni-type label"), std::string::npos);

  auto shared = ResolveEniMode(EniConfig{}, {}, "");
  ASSERT_TRUE(shared.ok());
  EXPECT_FALSE(CheckEniModeSwitch(*shared, {"exclusive"}).ok());
  EXPECT_TRUE(CheckEniModeSwitch(*shared, {"shared", ""}).ok());
}

}  // namespace
}  // namespace terway::config
