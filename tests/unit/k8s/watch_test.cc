#include "k8s/watch.h"

#include <gtest/gtest.h>

namespace terway::k8s {
namespace {

struct Collector {
  std::vector<WatchEvent> events;
  std::vector<std::string> errors;
  WatchStreamSplitter Splitter(int stop_after = -1) {
    return WatchStreamSplitter(
        [this, stop_after](WatchEvent ev) {
          events.push_back(std::move(ev));
          return stop_after < 0 || static_cast<int>(events.size()) < stop_after;
        },
        [this](const Error& e) { errors.push_back(e.message); });
  }
};

const std::string kStream =
    R"({"type":"ADDED","object":{"metadata":{"name":"a","annotations":{"x":"}{\"\\"},"resourceVersion":"1"}}})"
    "\n"
    R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"2"},"spec":{"l":[{"a":1},[]]}}})"
    "\n"
    R"({"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"3"}}})"
    "\n"
    R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"4"}}})"
    "\n"
    R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired"}})"
    "\n";

void ExpectAllFive(const Collector& c) {
  ASSERT_EQ(c.events.size(), 5u);
  EXPECT_TRUE(c.errors.empty()) << c.errors.at(0);
  EXPECT_EQ(c.events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(c.events[0].object["metadata"]["annotations"]["x"], "}{\"\\");
  EXPECT_EQ(c.events[1].type, WatchEventType::kModified);
  EXPECT_EQ(c.events[2].type, WatchEventType::kBookmark);
  EXPECT_EQ(c.events[2].object["metadata"]["resourceVersion"], "3");
  EXPECT_EQ(c.events[3].type, WatchEventType::kDeleted);
  EXPECT_EQ(c.events[4].type, WatchEventType::kError);
  EXPECT_EQ(c.events[4].object["code"], 410);
}

TEST(WatchStreamSplitter, WholeStreamInOneChunk) {
  Collector c;
  auto s = c.Splitter();
  EXPECT_TRUE(s.Feed(kStream));
  ExpectAllFive(c);
  EXPECT_EQ(s.Pending(), 0u);
}

TEST(WatchStreamSplitter, EveryChunkBoundary) {
  // Split the stream at every possible position into two chunks, and byte by byte.
  for (size_t cut = 0; cut <= kStream.size(); cut++) {
    Collector c;
    auto s = c.Splitter();
    s.Feed(std::string_view(kStream).substr(0, cut));
    s.Feed(std::string_view(kStream).substr(cut));
    ExpectAllFive(c);
  }
  Collector c;
  auto s = c.Splitter();
  for (char ch : kStream) s.Feed(std::string_view(&ch, 1));
  ExpectAllFive(c);
}

TEST(WatchStreamSplitter, WorksWithoutNewlines) {
  std::string joined;
  for (char ch : kStream) {
    if (ch != '\n') joined.push_back(ch);
  }
  Collector c;
  auto s = c.Splitter();
  s.Feed(joined);
  ExpectAllFive(c);
}

TEST(WatchStreamSplitter, SkipsMalformedEventsAndKeepsGoing) {
  Collector c;
  auto s = c.Splitter();
  s.Feed(R"({"type":"ADDED"})" "\n"                          // no object
         R"({"type":"SIDEWAYS","object":{}})" "\n"            // unknown type
         R"({"type":"ADDED","object":{"metadata":{"name":"ok"}}})" "\n"
         "garbage\n"
         R"({"type":"DELETED","object":{"metadata":{"name":"ok"}}})");
  ASSERT_EQ(c.events.size(), 2u);
  EXPECT_EQ(c.events[0].object["metadata"]["name"], "ok");
  EXPECT_EQ(c.events[1].type, WatchEventType::kDeleted);
  EXPECT_GE(c.errors.size(), 3u);
}

TEST(WatchStreamSplitter, StopsWhenAsked) {
  Collector c;
  auto s = c.Splitter(/*stop_after=*/2);
  EXPECT_FALSE(s.Feed(kStream));
  EXPECT_EQ(c.events.size(), 2u);
  EXPECT_FALSE(s.Feed(kStream));
  EXPECT_EQ(c.events.size(), 2u);
}

TEST(WatchStreamSplitter, HoldsBackAnIncompleteEvent) {
  Collector c;
  auto s = c.Splitter();
  s.Feed(R"({"type":"ADDED","object":{"metadata":{"name":"a"}})");
  EXPECT_TRUE(c.events.empty());
  EXPECT_GT(s.Pending(), 0u);
  s.Feed("}");
  EXPECT_EQ(c.events.size(), 1u);
}

}  // namespace
}  // namespace terway::k8s
