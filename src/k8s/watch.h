// The watch wire format: a chunked HTTP body carrying one JSON object per
// event, {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}.
// Chunk boundaries are arbitrary (an event may span chunks, a chunk may hold
// several events), so the splitter reassembles complete JSON values.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "k8s/types.h"

namespace terway::k8s {

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

const char* WatchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  Json object;
};

// Parses one complete event document.
Result<WatchEvent> ParseWatchEvent(std::string_view text);

// Splits a byte stream into top-level JSON values by tracking brace depth
// outside strings; it does not need the newline the API server puts after
// each event, but tolerates it.
class WatchStreamSplitter {
 public:
  // on_event returns false to stop; malformed events are reported through
  // on_error and skipped (the stream stays usable).
  WatchStreamSplitter(std::function<bool(WatchEvent)> on_event,
                      std::function<void(const Error&)> on_error);
  // Returns false once on_event asked to stop.
  bool Feed(std::string_view data);
  // Bytes of an incomplete event held back.
  size_t Pending() const { return buf_.size(); }

 private:
  std::function<bool(WatchEvent)> on_event_;
  std::function<void(const Error&)> on_error_;
  std::string buf_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool stopped_ = false;
};

}  // namespace terway::k8s
