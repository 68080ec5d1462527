#include "qos/annotations.h"

#include <gtest/gtest.h>

namespace terway::qos {
namespace {

struct QuantityCase {
  const char* text;
  uint64_t bits;
};

TEST(KubernetesQuantity, AcceptsDecimalBinaryAndExponentForms) {
  const QuantityCase cases[] = {
      {"10M", 10'000'000},        {"1G", 1'000'000'000},      {"500k", 500'000},
      {"1Mi", 1'048'576},         {"1Ki", 1024},              {"2Gi", 2'147'483'648},
      {"1Ti", 1'099'511'627'776}, {"1000", 1000},             {"2.5M", 2'500'000},
      {"1.1k", 1100},             {"0.5M", 500'000},          {".5M", 500'000},
      {"1e6", 1'000'000},         {"5E+3", 5000},             {"1500m", 2},  // 1.5 rounds up, as Value()
      {"+10M", 10'000'000},       {"100T", 100'000'000'000'000},
  };
  for (const auto& c : cases) {
    auto r = ParseKubernetesQuantity(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().ToString();
    EXPECT_EQ(*r, c.bits) << c.text;
  }
}

TEST(KubernetesQuantity, RejectsMalformedText) {
  for (const char* text : {"", "M", "ten", "10X", "10mb", "10 M", "10MiB", "1ki", "-5M", "1e", "1e1.5", "1.2.3",
                           "10Mi5", "0x10"}) {
    EXPECT_FALSE(ParseKubernetesQuantity(text).ok()) << text;
  }
}

TEST(LegacyTerwayBandwidth, IsBytesPerSecondWithBinaryMultipliers) {
  const QuantityCase cases[] = {
      {"1m", 8ull * 1024 * 1024},  {"1M", 8ull * 1024 * 1024},     {"1MB", 8ull * 1024 * 1024},
      {"1MiB", 8ull * 1024 * 1024}, {"512K", 8ull * 512 * 1024},   {"512kb", 8ull * 512 * 1024},
      {"1G", 8ull << 30},           {"2T", 16ull << 40},           {"1000B", 8000},
      {" 10M ", 80ull * 1024 * 1024}, {"1.5M", 12ull * 1024 * 1024},
  };
  for (const auto& c : cases) {
    auto r = ParseLegacyTerwayBandwidth(c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.error().ToString();
    EXPECT_EQ(*r, c.bits) << c.text;
  }
}

TEST(LegacyTerwayBandwidth, RejectsMalformedText) {
  for (const char* text : {"", "  ", "100", "M", "-1M", "10X", "10MBIT", "10BB", "10BIB", "1MIBS", "ten"}) {
    EXPECT_FALSE(ParseLegacyTerwayBandwidth(text).ok()) << "'" << text << "'";
  }
}

TEST(BandwidthAnnotations, NoneMeansNoLimit) {
  auto r = ParseBandwidthAnnotations({{"app", "web"}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST(BandwidthAnnotations, StandardAnnotationsInBitsWithDefaultBursts) {
  auto r = ParseBandwidthAnnotations({{"kubernetes.io/ingress-bandwidth", "10M"},
                                      {"kubernetes.io/egress-bandwidth", "1G"}});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->ingress_rate, 10'000'000u);
  EXPECT_EQ((*r)->egress_rate, 1'000'000'000u);
  EXPECT_EQ((*r)->ingress_burst, DefaultBurstBits(10'000'000));
  EXPECT_EQ((*r)->egress_burst, DefaultBurstBits(1'000'000'000));
}

TEST(BandwidthAnnotations, OneDirectionLeavesTheOtherUnlimited) {
  auto r = ParseBandwidthAnnotations({{"kubernetes.io/egress-bandwidth", "50M"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->ingress_rate, 0u);
  EXPECT_EQ((*r)->ingress_burst, 0u);
  EXPECT_EQ((*r)->egress_rate, 50'000'000u);
}

TEST(BandwidthAnnotations, LegacyAnnotationsAreBytes) {
  auto r = ParseBandwidthAnnotations({{"k8s.aliyun.com/ingress-bandwidth", "1m"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->ingress_rate, 8u * 1024 * 1024);
  EXPECT_EQ((*r)->egress_rate, 0u);
}

TEST(BandwidthAnnotations, StandardWinsOverLegacyPerDirection) {
  auto r = ParseBandwidthAnnotations({{"kubernetes.io/ingress-bandwidth", "10M"},
                                      {"k8s.aliyun.com/ingress-bandwidth", "1M"},
                                      {"k8s.aliyun.com/egress-bandwidth", "1M"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->ingress_rate, 10'000'000u);        // standard
  EXPECT_EQ((*r)->egress_rate, 8u * 1024 * 1024);    // only legacy set
}

struct ErrorCase {
  const char* key;
  const char* value;
  const char* says;  // part of the message
};

TEST(BandwidthAnnotations, EveryErrorNamesTheAnnotationAndValue) {
  const ErrorCase cases[] = {
      {"kubernetes.io/ingress-bandwidth", "", "empty"},
      {"kubernetes.io/ingress-bandwidth", "fast", "number"},
      {"kubernetes.io/egress-bandwidth", "-10M", "negative"},
      {"kubernetes.io/egress-bandwidth", "10X", "suffix"},
      {"kubernetes.io/egress-bandwidth", "1e", "exponent"},
      {"kubernetes.io/egress-bandwidth", "1e99", "exponent too large"},
      {"kubernetes.io/ingress-bandwidth", "0", "outside"},
      {"kubernetes.io/ingress-bandwidth", "999", "outside"},
      {"kubernetes.io/ingress-bandwidth", "101G", "outside"},
      {"kubernetes.io/ingress-bandwidth", "1Ei", "outside"},
      {"k8s.aliyun.com/ingress-bandwidth", "100", "unit"},
      {"k8s.aliyun.com/egress-bandwidth", "10Mbit", "unknown unit"},
      {"k8s.aliyun.com/egress-bandwidth", "-1M", "negative"},
      {"k8s.aliyun.com/egress-bandwidth", "", "empty"},
      {"k8s.aliyun.com/egress-bandwidth", "100B", "outside"},    // 800 bit/s
      {"k8s.aliyun.com/egress-bandwidth", "20G", "outside"},     // 160 Gibit/s
  };
  for (const auto& c : cases) {
    auto r = ParseBandwidthAnnotations({{c.key, c.value}});
    ASSERT_FALSE(r.ok()) << c.key << "=" << c.value;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    const std::string& msg = r.error().message;
    EXPECT_NE(msg.find(c.key), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::string("\"") + c.value + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.says), std::string::npos) << msg;
  }
}

TEST(BandwidthAnnotations, AShadowedMalformedLegacyValueIsStillAnError) {
  auto r = ParseBandwidthAnnotations({{"kubernetes.io/ingress-bandwidth", "10M"},
                                      {"k8s.aliyun.com/ingress-bandwidth", "lots"}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("k8s.aliyun.com/ingress-bandwidth"), std::string::npos);
}

TEST(BandwidthAnnotations, RangeEdgesAreAccepted) {
  auto lo = ParseBandwidthAnnotations({{"kubernetes.io/ingress-bandwidth", "1k"}});
  ASSERT_TRUE(lo.ok());
  EXPECT_EQ((*lo)->ingress_rate, 1000u);
  auto hi = ParseBandwidthAnnotations({{"kubernetes.io/ingress-bandwidth", "100G"}});
  ASSERT_TRUE(hi.ok());
  EXPECT_EQ((*hi)->ingress_rate, 100'000'000'000u);
}

TEST(DefaultBurst, TenMillisecondsOfRateButAtLeast64KiB) {
  EXPECT_EQ(DefaultBurstBits(1000), 64u * 1024 * 8);
  EXPECT_EQ(DefaultBurstBits(10'000'000), 64u * 1024 * 8);  // 10 ms = 12.5 KB < 64 KiB
  EXPECT_EQ(DefaultBurstBits(1'000'000'000), 10'000'000u);  // 10 ms of 1 Gbit/s
}

TEST(RuntimeBandwidth, KubeletsUnlimitedBurstBecomesTheDefaultBucket) {
  cni::Bandwidth b{10'000'000, kRuntimeUnlimitedBurst, 50'000'000, 0};
  cni::Bandwidth n = NormalizeRuntimeBandwidth(b);
  EXPECT_EQ(n.ingress_rate, 10'000'000u);
  EXPECT_EQ(n.ingress_burst, DefaultBurstBits(10'000'000));
  EXPECT_EQ(n.egress_burst, DefaultBurstBits(50'000'000));
  cni::Bandwidth chosen{10'000'000, 800'000, 0, 0};
  EXPECT_EQ(NormalizeRuntimeBandwidth(chosen), chosen);  // a burst the runtime chose stays
}

TEST(StoredBandwidth, RoundTripsAndRejectsGarbage) {
  EXPECT_EQ(EncodeBandwidth(std::nullopt), "");
  auto none = DecodeBandwidth("");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  cni::Bandwidth b{1, 2, 3, 4};
  auto back = DecodeBandwidth(EncodeBandwidth(b));
  ASSERT_TRUE(back.ok() && back->has_value());
  EXPECT_EQ(**back, b);
  EXPECT_FALSE(DecodeBandwidth("{").ok());
  EXPECT_FALSE(DecodeBandwidth(R"({"ingress_rate":-1})").ok());
}

}  // namespace
}  // namespace terway::qos
