#include "cni/json_text.h"

#include <gtest/gtest.h>

namespace terway::cni {
namespace {

using nlohmann::json;

// The UTF-8 rules of RFC 3629, table 3.1, at their edges.
TEST(FirstInvalidUtf8, Table) {
  struct Case {
    std::string text;
    std::optional<size_t> bad;
  } cases[] = {
      {"", std::nullopt},
      {"/var/run/netns/cni-1234", std::nullopt},
      {"\xc3\xa9t\xc3\xa9", std::nullopt},              // été
      {"\xe2\x82\xac", std::nullopt},                   // U+20AC
      {"\xf0\x9f\x98\x80", std::nullopt},               // U+1F600
      {"\xf4\x8f\xbf\xbf", std::nullopt},               // U+10FFFF, the last code point
      {"\xed\x9f\xbf", std::nullopt},                   // U+D7FF, just below the surrogates
      {"ab\xff", 2},                                    // never valid
      {"a\x80", 1},                                     // continuation without a lead
      {"\xc0\xaf", 0},                                  // overlong '/'
      {"\xc1\xbf", 0},                                  // overlong
      {"\xe0\x80\xaf", 0},                              // overlong (3 bytes)
      {"\xf0\x80\x80\xaf", 0},                          // overlong (4 bytes)
      {"\xed\xa0\x80", 0},                              // U+D800, a surrogate
      {"\xf4\x90\x80\x80", 0},                          // U+110000, past the last code point
      {"\xf5\x80\x80\x80", 0},
      {"ok\xc3", 2},                                    // truncated sequence at the end
      {"\xe2\x82", 0},
      {"\xe2\x82x", 0},                                 // a non-continuation inside
  };
  for (const auto& c : cases) EXPECT_EQ(FirstInvalidUtf8(c.text), c.bad) << testing::PrintToString(c.text);
}

// FirstInvalidUtf8 agrees with the JSON library's own (strict) encoder on
// every two-byte string: what it accepts dumps, what it refuses throws.
TEST(FirstInvalidUtf8, AgreesWithTheJsonEncoder) {
  for (int a = 0; a < 256; a++) {
    for (int b = 0; b < 256; b++) {
      std::string s{static_cast<char>(a), static_cast<char>(b)};
      bool dumps = true;
      try {
        (void)json(s).dump();
      } catch (const json::exception&) {
        dumps = false;
      }
      ASSERT_EQ(!FirstInvalidUtf8(s).has_value(), dumps) << a << " " << b;
    }
  }
}

TEST(CheckText, NamesTheInputAndTheByte) {
  EXPECT_TRUE(CheckText("CNI_NETNS", "/var/run/netns/x").ok());
  auto bad = CheckText("CNI_NETNS", "/run/netns/\xff");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().ToString().find("CNI_NETNS is not valid UTF-8 (byte 0xff at offset 11)"), std::string::npos)
      << bad.error().ToString();
  auto nul = CheckText("CNI_ARGS", std::string("A=1\0B=2", 7));
  ASSERT_FALSE(nul.ok());
  EXPECT_NE(nul.error().ToString().find("CNI_ARGS contains a NUL byte at offset 3"), std::string::npos);
}

TEST(ParseJsonText, RefusesWhatFollowsANul) {
  // The JSON parser stops at a NUL as if the input ended: the tail would be
  // ignored without this check.
  std::string text = std::string(R"({"a":1})") + '\0' + R"({"b":2})";
  ASSERT_TRUE(json::parse(text, nullptr, false).is_object());  // the library's behaviour, for the record
  auto r = ParseJsonText(text, "stdin");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().ToString().find("stdin contains a NUL byte at offset 7"), std::string::npos);
  // The escaped form is a valid string character and stays accepted.
  auto escaped = ParseJsonText(R"({"a":"x\u0000y"})", "stdin");
  ASSERT_TRUE(escaped.ok());
  EXPECT_EQ((*escaped)["a"].get<std::string>(), std::string("x\0y", 3));
  auto broken = ParseJsonText(R"({"a":)", "stdin");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().ToString().find("stdin is not valid JSON"), std::string::npos);
}

TEST(DumpJson, NeverThrowsOnBytesThatAreNotUtf8) {
  json j = {{"sandbox", "/run/netns/\xff\xfe"}, {"name", "eth0"}};
  EXPECT_THROW((void)j.dump(), json::type_error);  // what the plugin used to call
  std::string out;
  ASSERT_NO_THROW(out = DumpJson(j));
  EXPECT_EQ(json::parse(out)["sandbox"], "/run/netns/\xef\xbf\xbd\xef\xbf\xbd");  // U+FFFD twice
}

TEST(OptUint, KeepsValuesExactAndRefusesTheRest) {
  json j = json::parse(R"({"small":7,"u32max":4294967295,"wrap":4294967297,"neg":-1,"big":18446744073709551615,
                           "frac":1.5,"text":"1","null":null})");
  EXPECT_EQ(*OptUint(j, "small", 10), std::optional<uint64_t>(7));
  EXPECT_EQ(*OptUint(j, "u32max", UINT32_MAX), std::optional<uint64_t>(4294967295u));
  EXPECT_EQ(*OptUint(j, "big", UINT64_MAX), std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(*OptUint(j, "absent", 10), std::nullopt);
  EXPECT_EQ(*OptUint(j, "null", 10), std::nullopt);
  auto wrap = OptUint(j, "wrap", UINT32_MAX);
  ASSERT_FALSE(wrap.ok());
  EXPECT_NE(wrap.error().ToString().find("\"wrap\" is 4294967297, outside 0..4294967295"), std::string::npos)
      << wrap.error().ToString();
  EXPECT_FALSE(OptUint(j, "neg", 10).ok());
  EXPECT_FALSE(OptUint(j, "frac", 10).ok());
  EXPECT_FALSE(OptUint(j, "text", 10).ok());
  // Built in code, a positive number is signed; it reads the same.
  EXPECT_EQ(*OptUint(json{{"k", 5}}, "k", 10), std::optional<uint64_t>(5));
}

}  // namespace
}  // namespace terway::cni
