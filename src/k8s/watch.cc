#include "k8s/watch.h"

namespace terway::k8s {

const char* WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded: return "ADDED";
    case WatchEventType::kModified: return "MODIFIED";
    case WatchEventType::kDeleted: return "DELETED";
    case WatchEventType::kBookmark: return "BOOKMARK";
    case WatchEventType::kError: return "ERROR";
  }
  return "?";
}

Result<WatchEvent> ParseWatchEvent(std::string_view text) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return MakeError(ErrorCode::kInvalidArgument, "watch event is not valid JSON");
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "watch event is not an object");
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) {
    return MakeError(ErrorCode::kInvalidArgument, "watch event has no type");
  }
  WatchEvent ev;
  const std::string type = t->get<std::string>();
  if (type == "ADDED") ev.type = WatchEventType::kAdded;
  else if (type == "MODIFIED") ev.type = WatchEventType::kModified;
  else if (type == "DELETED") ev.type = WatchEventType::kDeleted;
  else if (type == "BOOKMARK") ev.type = WatchEventType::kBookmark;
  else if (type == "ERROR") ev.type = WatchEventType::kError;
  else return Errorf(ErrorCode::kInvalidArgument, "watch event has unknown type '{}'", type);
  auto o = j.find("object");
  if (o == j.end() || !o->is_object()) {
    return Errorf(ErrorCode::kInvalidArgument, "watch event {} has no object", type);
  }
  ev.object = std::move(*o);
  return ev;
}

WatchStreamSplitter::WatchStreamSplitter(std::function<bool(WatchEvent)> on_event,
                                         std::function<void(const Error&)> on_error)
    : on_event_(std::move(on_event)), on_error_(std::move(on_error)) {}

bool WatchStreamSplitter::Feed(std::string_view data) {
  for (char c : data) {
    if (stopped_) return false;
    if (depth_ == 0) {
      if (c == '{') {
        depth_ = 1;
        buf_.assign(1, c);
      } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
        on_error_(MakeError(ErrorCode::kInvalidArgument,
                            fmt::format("unexpected byte 0x{:02x} between watch events",
                                        static_cast<unsigned char>(c))));
      }
      continue;
    }
    buf_.push_back(c);
    if (in_string_) {
      if (escape_) escape_ = false;
      else if (c == '\\') escape_ = true;
      else if (c == '"') in_string_ = false;
      continue;
    }
    if (c == '"') in_string_ = true;
    else if (c == '{' || c == '[') depth_++;
    else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        auto ev = ParseWatchEvent(buf_);
        buf_.clear();
        if (!ev.ok()) {
          on_error_(ev.error());
        } else if (!on_event_(std::move(ev).value())) {
          stopped_ = true;
          return false;
        }
      }
    }
  }
  return !stopped_;
}

}  // namespace terway::k8s
