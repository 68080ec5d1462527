#include "common/strings.h"

#include <gtest/gtest.h>

namespace terway {
namespace {

TEST(Strings, SplitJoinTrim) {
  EXPECT_EQ(Split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(Split("a,b,,c", ',', true), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(Join({"x", "y"}, "; "), "x; y");
  EXPECT_EQ(Trim("  k=v \n"), "k=v");
  EXPECT_TRUE(StartsWith("eni-abc", "eni-"));
  EXPECT_TRUE(EndsWith("eni-abc", "abc"));
  EXPECT_FALSE(EndsWith("c", "abc"));
}

}  // namespace
}  // namespace terway
