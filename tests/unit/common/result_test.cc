#include "common/result.h"

#include <gtest/gtest.h>

namespace terway {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Errorf(ErrorCode::kInvalidArgument, "{} is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  TERWAY_ASSIGN_OR_RETURN_CTX(int h, Half(x), "first halving");
  TERWAY_ASSIGN_OR_RETURN_CTX(int q, Half(h), "second halving");
  return q;
}

Status CheckEven(int x) {
  TERWAY_TRY_CTX(Half(x), fmt::format("checking {}", x));
  return Ok();
}

TEST(Result, ValueAndErrorPaths) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().ToString(), "second halving: 3 is odd");
}

TEST(Result, StatusCarriesContextOutermostFirst) {
  EXPECT_TRUE(CheckEven(4).ok());
  auto s = CheckEven(5);
  ASSERT_FALSE(s.ok());
  Error e = s.error();
  e.Wrap("outer");
  EXPECT_EQ(e.ToString(), "outer: checking 5: 5 is odd");
}

TEST(Result, SysErrorMapsErrno) {
  EXPECT_EQ(SysError("open x", ENOENT).code, ErrorCode::kNotFound);
  EXPECT_EQ(SysError("link", EEXIST).code, ErrorCode::kAlreadyExists);
  EXPECT_EQ(SysError("bpf", EPERM).code, ErrorCode::kPermission);
  EXPECT_NE(SysError("open x", ENOENT).message.find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace terway
