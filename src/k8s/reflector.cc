#include "k8s/reflector.h"

#include "common/log.h"

namespace terway::k8s {

namespace {
std::string RvOf(const Json& obj) {
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return "";
  auto rv = m->find("resourceVersion");
  if (rv == m->end() || !rv->is_string()) return "";
  return rv->get<std::string>();
}
}  // namespace

Reflector::Reflector(ListerWatcher& lw, ReflectorSink& sink, ReflectorOptions opts)
    : lw_(lw), sink_(sink), opts_(std::move(opts)), backoff_(opts_.backoff_initial) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Reflector::Stop() {
  {
    std::lock_guard l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Reflector::WaitForSync(std::chrono::milliseconds timeout) {
  std::unique_lock l(mu_);
  return cv_.wait_for(l, timeout, [this] { return synced_.load() || stop_.load(); }) && synced_;
}

std::string Reflector::resource_version() const {
  std::lock_guard l(mu_);
  return rv_;
}

void Reflector::SleepBackoff() {
  std::unique_lock l(mu_);
  cv_.wait_for(l, backoff_, [this] { return stop_.load(); });
  backoff_ = std::min(backoff_ * 2, opts_.backoff_max);
}

bool Reflector::ListOnce() {
  ListOptions lo;
  lo.label_selector = opts_.label_selector;
  lo.field_selector = opts_.field_selector;
  auto list = lw_.List(lo);
  if (!list.ok()) {
    log::Warn("k8s_list_failed err={}", list.error().ToString());
    return false;
  }
  std::vector<Json> items;
  if (list->contains("items") && (*list)["items"].is_array()) {
    for (auto& it : (*list)["items"]) items.push_back(std::move(it));
  }
  std::string rv = RvOf(*list);
  sink_.Replace(items);
  lists_++;
  {
    std::lock_guard l(mu_);
    rv_ = rv;
    synced_ = true;
    backoff_ = opts_.backoff_initial;
  }
  cv_.notify_all();
  return true;
}

bool Reflector::WatchOnce() {
  ListOptions wo;
  wo.label_selector = opts_.label_selector;
  wo.field_selector = opts_.field_selector;
  wo.resource_version = resource_version();
  wo.allow_watch_bookmarks = true;
  wo.timeout_seconds = opts_.watch_timeout_seconds;
  bool relist = false;
  bool error_event = false;
  bool got_event = false;
  watches_++;
  const auto started = std::chrono::steady_clock::now();
  Status st = lw_.Watch(
      wo,
      [&](WatchEvent ev) {
        if (ev.type == WatchEventType::kError) {
          int code = ev.object.value("code", 0);
          log::Info("k8s_watch_error_event code={} message={}", code, ev.object.value("message", ""));
          // 410: our cursor was compacted away. Anything else: rewatch.
          relist = code == 410;
          error_event = true;
          return false;
        }
        got_event = true;
        std::string rv = RvOf(ev.object);
        if (ev.type != WatchEventType::kBookmark) sink_.Apply(ev);
        if (!rv.empty()) {
          std::lock_guard l(mu_);
          rv_ = rv;
        }
        return !stop_.load();
      },
      &stop_);
  if (stop_) return false;
  if (!st.ok()) {
    if (IsGone(st.error())) return true;
    log::Warn("k8s_watch_failed err={}", st.error().ToString());
    SleepBackoff();
    return false;
  }
  if (got_event) {
    std::lock_guard l(mu_);
    backoff_ = opts_.backoff_initial;
  }
  if (relist) return true;
  if (error_event) SleepBackoff();  // a server-side failure: do not spin on it
  // A stream that ends at once and empty (a proxy cutting watches, a server
  // refusing them politely) would otherwise be reopened in a tight loop.
  else if (!got_event && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) SleepBackoff();
  return false;
}

void Reflector::Run() {
  while (!stop_) {
    if (!ListOnce()) {
      SleepBackoff();
      continue;
    }
    while (!stop_) {
      if (WatchOnce()) {
        log::Info("k8s_relist reason=resource_version_too_old rv={}", resource_version());
        break;
      }
    }
  }
}

}  // namespace terway::k8s
