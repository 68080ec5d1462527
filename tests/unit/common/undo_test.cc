#include "common/undo.h"

#include <gtest/gtest.h>

namespace terway {
namespace {

TEST(UndoStack, UnwindsNewestFirstWhenNotCommitted) {
  std::vector<std::string> order;
  {
    UndoStack undo("test");
    undo.Push("address", [&] { order.push_back("release"); return Ok(); });
    undo.Push("policy", [&] { order.push_back("stop policy"); return Ok(); });
    undo.Push("wiring", [&] { order.push_back("remove wiring"); return Ok(); });
  }
  EXPECT_EQ(order, (std::vector<std::string>{"remove wiring", "stop policy", "release"}));
}

TEST(UndoStack, CommitKeepsEverything) {
  int undone = 0;
  {
    UndoStack undo("test");
    undo.Push("a", [&] { ++undone; return Ok(); });
    undo.Commit();
    EXPECT_EQ(undo.size(), 0u);
  }
  EXPECT_EQ(undone, 0);
}

// An older step depends on the newer ones having been taken back: an
// address whose wiring could not be removed must not be released.
TEST(UndoStack, AFailedStepSkipsTheOlderOnesAndReportsIt) {
  bool released = false;
  UndoStack undo("test");
  undo.Push("address", [&] { released = true; return Ok(); });
  undo.Push("wiring", [] { return Status(Error(ErrorCode::kKernel, "EBUSY")); });
  Status st = undo.Unwind();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().ToString().find("undoing wiring"), std::string::npos) << st.error().ToString();
  EXPECT_FALSE(released);
  EXPECT_EQ(undo.size(), 0u);
  EXPECT_TRUE(undo.Unwind().ok()) << "a second unwind has nothing left to do";
}

}  // namespace
}  // namespace terway
