#include "tools/lab/apiserver/server.h"

#include <fcntl.h>
#include <unistd.h>

#include <httplib.h>

#include <cerrno>

#include "common/log.h"
#include "common/strings.h"
#include "k8s/selector.h"
#include "tools/lab/apiserver/calico.h"
#include "tools/lab/apiserver/controllers.h"
#include "tools/lab/apiserver/core.h"
#include "tools/lab/apiserver/openapi.h"
#include "tools/lab/apiserver/patch.h"
#include "tools/lab/apiserver/protobuf.h"
#include "tools/lab/apiserver/schemas.h"
#include "tools/lab/apiserver/table.h"

namespace terway::lab {
namespace {

constexpr const char* kJson = "application/json";

void Reply(httplib::Response& res, int code, const Json& body) {
  res.status = code;
  res.set_content(body.dump(), kJson);
}

void ReplyError(httplib::Response& res, const Error& e, const std::string& plural = "",
                const std::string& name = "") {
  Reply(res, HttpStatusOf(e).first, StatusForError(e, plural, name));
}

struct Target {
  const ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string sub;
};

Json ListOf(const ResourceType& t, std::vector<Json> items, uint64_t rv) {
  return {{"kind", t.kind + "List"}, {"apiVersion", t.GroupVersion()},
          {"metadata", {{"resourceVersion", std::to_string(rv)}}}, {"items", std::move(items)}};
}

Json ResourceList(const std::string& gv, const std::vector<ResourceType>& types) {
  Json resources = Json::array();
  for (const auto& t : types) {
    if (t.GroupVersion() != gv) continue;
    Json r = {{"name", t.plural}, {"singularName", t.singular}, {"namespaced", t.namespaced},
              {"kind", t.kind},
              {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    resources.push_back(r);
    if (t.has_status) {
      resources.push_back({{"name", t.plural + "/status"}, {"singularName", ""},
                           {"namespaced", t.namespaced}, {"kind", t.kind},
                           {"verbs", {"get", "patch", "update"}}});
    }
  }
  return {{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", gv}, {"resources", resources}};
}

// What one watch stream filters on.
struct WatchFilter {
  std::string ns;
  k8s::LabelSelector labels;
  k8s::FieldSelector fields;
  bool Matches(const Json& obj) const {
    if (!obj.is_object()) return false;
    const Json& m = obj["metadata"];
    if (!ns.empty() && m.value("namespace", "") != ns) return false;
    k8s::Labels l;
    if (m.contains("labels") && m["labels"].is_object()) {
      for (auto it = m["labels"].begin(); it != m["labels"].end(); ++it) {
        if (it.value().is_string()) l[it.key()] = it.value();
      }
    }
    return labels.Matches(l) && fields.Matches(obj);
  }
};

struct WatchState {
  const ResourceType* type;
  std::string table_version;  // non-empty: events carry Tables (kubectl get -w)
  RowObject row_object = RowObject::kMetadata;
  WatchFilter filter;
  bool bookmarks = false;
  std::string start_rv;
  bool started = false;
  uint64_t cursor = 0;
  uint64_t generation = 0;
  std::chrono::steady_clock::time_point deadline;
  std::chrono::steady_clock::time_point next_bookmark;
};

// A watch event's object as the watcher asked for it: itself, or a Table
// of one row with the columns (kubectl get -w prints each as it comes).
Json AsWatched(const WatchState& st, const Json& obj) {
  if (st.table_version.empty()) return obj;
  return TableOf(*st.type, {obj}, RealClock::Instance().Now(), st.row_object, st.table_version,
                 obj["metadata"].value("resourceVersion", ""));
}

// A warning kubectl prints ("Warning: unknown field ..."): an RFC 7234
// Warning header, code 299, the text quoted.
void AddUnknownFieldWarning(httplib::Response& res, const std::string& field) {
  std::string text = "unknown field \"" + field + "\"";
  std::string quoted;
  for (char c : text) {
    if (c == '"' || c == '\\') quoted.push_back('\\');
    quoted.push_back(c);
  }
  res.set_header("Warning", "299 - \"" + quoted + "\"");
}

bool WriteEvent(httplib::DataSink& sink, const char* type, const Json& obj) {
  std::string line = Json{{"type", type}, {"object", obj}}.dump() + "\n";
  return sink.write(line.data(), line.size());
}

}  // namespace

std::shared_ptr<ObjectStore> NewDefaultStore() {
  auto s = std::make_shared<ObjectStore>();
  for (auto& t : BuiltinResourceTypes()) s->Register(std::move(t));
  s->SetAdmission([](WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view) -> Status {
    TERWAY_TRY(AdmitCore(op, t, obj, old, view));
    return AdmitCalico(op, t, obj, old, view);
  });
  s->SetReaction(RunControllers);
  // What a cluster has from the start: Calico's default tier, and the
  // `default` ServiceAccount of each built-in namespace.
  auto seed = [&](const char* group, const char* plural, Json obj) {
    const ResourceType* t = s->Find(group, "v1", plural);
    if (!t) t = s->Find(group, "v3", plural);
    Status st = t ? s->Seed(*t, obj) : Status(Errorf(ErrorCode::kNotFound, "kind {} not registered", plural));
    if (!st.ok()) log::Error("lab_apiserver_seed_failed object={}/{} error={}", plural, obj["metadata"].dump(),
                             st.error().ToString());
  };
  seed(kCalicoGroup, "tiers", DefaultTierObject());
  if (const ResourceType* ns = s->Find("", "v1", "namespaces")) {
    for (const auto& n : s->List(*ns, "").items) {
      seed("", "serviceaccounts", DefaultServiceAccount(n["metadata"]["name"].get<std::string>()));
    }
  }
  return s;
}

ApiServer::ApiServer(std::shared_ptr<ObjectStore> store, ApiServerOptions opts)
    : store_(std::move(store)), opts_(std::move(opts)) {}

ApiServer::~ApiServer() { Stop(); }

std::string ApiServer::url() const {
  return fmt::format("{}://{}:{}", opts_.tls_cert_file.empty() ? "http" : "https", opts_.host, port_);
}

void ApiServer::HoldWatches(bool hold) {
  hold_watches_ = hold;
  store_->Wake();
}

Status ApiServer::Start() {
  if (!opts_.tls_cert_file.empty() || !opts_.tls_key_file.empty()) {
    auto ssl = std::make_unique<httplib::SSLServer>(opts_.tls_cert_file.c_str(), opts_.tls_key_file.c_str());
    if (!ssl->is_valid()) {
      return Errorf(ErrorCode::kInvalidArgument, "TLS certificate {} or key {} unusable", opts_.tls_cert_file,
                    opts_.tls_key_file);
    }
    svr_ = std::move(ssl);
  } else {
    svr_ = std::make_unique<httplib::Server>();
  }
  if (!opts_.bearer_token.empty()) {
    svr_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") == "Bearer " + opts_.bearer_token) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      Reply(res, 401, StatusFor(401, "Unauthorized", "Unauthorized"));
      return httplib::Server::HandlerResponse::Handled;
    });
  }
  int threads = opts_.threads;
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  Route();
  if (opts_.port == 0) {
    port_ = svr_->bind_to_any_port(opts_.host);
    if (port_ <= 0) return Errorf(ErrorCode::kUnavailable, "binding {}:0 failed", opts_.host);
  } else {
    if (!svr_->bind_to_port(opts_.host.c_str(), opts_.port)) {
      return Errorf(ErrorCode::kUnavailable, "binding {}:{} failed (port in use?)", opts_.host, opts_.port);
    }
    port_ = opts_.port;
  }
  stopping_ = false;
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
  log::Info("lab_apiserver_listening url={}", url());
  return Ok();
}

void ApiServer::Stop() {
  if (!svr_) return;
  stopping_ = true;
  store_->Wake();
  svr_->stop();
  if (thread_.joinable()) thread_.join();
  svr_.reset();
}

Status ApiServer::WriteKubeconfig(const std::string& path) const {
  const std::string text = "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: " + url() +
                           "\ncontexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n"
                           "    namespace: default\ncurrent-context: lab\nusers:\n- name: lab\n  user: {}\n";
  // Owner-only from its creation: a kubeconfig is the key to the API. An old
  // file goes first, so O_EXCL makes sure the one we write has our mode.
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("replacing kubeconfig " + path);
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("writing kubeconfig " + path);
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Error e = SysError("writing kubeconfig " + path);
      close(fd);
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (close(fd) != 0) return SysError("writing kubeconfig " + path);
  return Ok();
}

void ApiServer::Route() {
  svr_->Get("/version", [](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"major", "1"}, {"minor", "32"}, {"gitVersion", "v1.32.0-terway-lab"},
                     {"gitCommit", "0000000000000000000000000000000000000000"},
                     {"gitTreeState", "clean"}, {"buildDate", "2026-01-01T00:00:00Z"},
                     {"goVersion", "none"}, {"compiler", "none"}, {"platform", "linux/amd64"}});
  });
  svr_->Get("/api", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, {{"kind", "APIVersions"}, {"versions", {"v1"}},
                     {"serverAddressByClientCIDRs",
                      {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", fmt::format("{}:{}", opts_.host, port_)}}}}});
  });
  svr_->Get("/apis", [this](const httplib::Request&, httplib::Response& res) {
    std::map<std::string, std::set<std::string>> groups;
    for (const auto& t : store_->Types()) {
      if (!t.group.empty()) groups[t.group].insert(t.version);
    }
    Json list = Json::array();
    for (const auto& [g, versions] : groups) {
      Json vs = Json::array();
      for (const auto& v : versions) vs.push_back({{"groupVersion", g + "/" + v}, {"version", v}});
      list.push_back({{"name", g}, {"versions", vs}, {"preferredVersion", vs[0]}});
    }
    Reply(res, 200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", list}});
  });
  // OpenAPI (openapi.h says what kubectl reads from it and why).
  svr_->Get("/openapi/v3", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, OpenApiV3Index(store_->Types()));
  });
  svr_->Get(R"(/openapi/v3/(api/[^/]+|apis/[^/]+/[^/]+))", [this](const httplib::Request& req,
                                                                   httplib::Response& res) {
    auto doc = OpenApiV3Document(store_->Types(), req.matches[1]);
    if (!doc.ok()) return ReplyError(res, doc.error());
    Reply(res, 200, *doc);
  });
  svr_->Get("/openapi/v2", [this](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Accept").find("protobuf") != std::string::npos) {
      res.status = 200;
      res.set_content(OpenApiV2Protobuf(store_->Types()), "application/com.github.proto-openapi.spec.v2.v1.0+protobuf");
      return;
    }
    Reply(res, 200, OpenApiV2Document(store_->Types()));
  });
  // Admin hooks (tests, terway-lab).
  svr_->Post("/lab/close-watches", [this](const httplib::Request&, httplib::Response& res) {
    CloseAllWatches();
    Reply(res, 200, StatusFor(200, "", "watches closed"));
  });
  // Lists and watches served per resource by every listener of the store:
  // lets a test prove that a client (terwayd with policy disabled) never
  // read a kind.
  svr_->Get("/lab/reads", [this](const httplib::Request&, httplib::Response& res) {
    Reply(res, 200, store_->Reads());
  });
  svr_->Post("/lab/compact", [this](const httplib::Request&, httplib::Response& res) {
    CompactHistory();
    Reply(res, 200, StatusFor(200, "", "history compacted"));
  });
  auto h = [this](const httplib::Request& req, httplib::Response& res) { Handle(req, res); };
  for (const char* pattern : {R"(/api/.*)", R"(/apis/.*)"}) {
    svr_->Get(pattern, h);
    svr_->Post(pattern, h);
    svr_->Put(pattern, h);
    svr_->Patch(pattern, h);
    svr_->Delete(pattern, h);
  }
}

void ApiServer::Handle(const httplib::Request& req, httplib::Response& res) {
  log::Debug("lab_apiserver_request method={} path={} content_type={} accept={}", req.method, req.path,
             req.get_header_value("Content-Type"), req.get_header_value("Accept"));
  std::vector<std::string> seg = Split(req.path, '/', /*skip_empty=*/true);
  std::string group, version;
  size_t i = 0;
  if (seg.size() >= 2 && seg[0] == "api") {
    version = seg[1];
    i = 2;
  } else if (seg.size() >= 3 && seg[0] == "apis") {
    group = seg[1];
    version = seg[2];
    i = 3;
  } else if (seg.size() == 2 && seg[0] == "apis" && req.method == "GET") {
    // /apis/<group>: the group's versions.
    Json vs = Json::array();
    for (const auto& t : store_->Types()) {
      if (t.group == seg[1]) vs.push_back({{"groupVersion", t.GroupVersion()}, {"version", t.version}});
    }
    if (vs.empty()) {
      return Reply(res, 404, StatusFor(404, "NotFound", "the server could not find the requested resource"));
    }
    return Reply(res, 200, {{"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", seg[1]}, {"versions", vs},
                            {"preferredVersion", vs[0]}});
  } else {
    return Reply(res, 404, StatusFor(404, "NotFound", "the server could not find the requested resource"));
  }
  const std::string gv = group.empty() ? version : group + "/" + version;
  std::vector<std::string> rest(seg.begin() + static_cast<long>(i), seg.end());
  if (rest.empty()) {
    if (req.method != "GET") return Reply(res, 405, StatusFor(405, "MethodNotAllowed", "method not allowed"));
    auto types = store_->Types();
    bool known = std::any_of(types.begin(), types.end(), [&](const auto& t) { return t.GroupVersion() == gv; });
    if (!known) return Reply(res, 404, StatusFor(404, "NotFound", "the server could not find the requested resource"));
    return Reply(res, 200, ResourceList(gv, types));
  }

  Target t;
  if (rest[0] == "namespaces" && rest.size() >= 3) {
    const ResourceType* nt = store_->Find(group, version, rest[2]);
    if (nt && nt->namespaced) {
      t.type = nt;
      t.ns = rest[1];
      if (rest.size() > 3) t.name = rest[3];
      if (rest.size() > 4) t.sub = rest[4];
      if (rest.size() > 5) t.type = nullptr;
    }
  }
  if (!t.type) {
    // Cluster-scoped, all-namespaces, or a namespace itself
    // (/api/v1/namespaces/<name>[/status]).
    t = Target{};
    t.type = store_->Find(group, version, rest[0]);
    if (rest.size() > 1) t.name = rest[1];
    if (rest.size() > 2) t.sub = rest[2];
    if (rest.size() > 3) t.type = nullptr;
  }
  if (!t.type || (!t.sub.empty() && !(t.sub == "status" && t.type->has_status))) {
    return Reply(res, 404, StatusFor(404, "NotFound", "the server could not find the requested resource"));
  }
  const ResourceType& type = *t.type;
  const bool status_sub = t.sub == "status";
  const bool namespaced_path = type.namespaced && !t.ns.empty();
  // Reads answer with a meta.k8s.io Table when the client asks for one
  // first (kubectl get); the status subresource is read as the object.
  const std::string table_version =
      req.method == "GET" && !status_sub ? TableVersionAccepted(req.get_header_value("Accept")) : "";
  auto row_object = ParseIncludeObject(req.get_param_value("includeObject"));
  if (!row_object.ok()) return Reply(res, 400, StatusFor(400, "BadRequest", row_object.error().message));

  // Parses a JSON body; kubectl sends JSON (YAML is converted client-side).
  auto parse_body = [&](Json* out) -> bool {
    if (req.get_header_value("Content-Type").find("protobuf") != std::string::npos) {
      auto decoded = DecodeKubernetesProtobuf(req.body);
      if (!decoded.ok()) {
        int code = decoded.error().code == ErrorCode::kUnsupported ? 415 : 400;
        Reply(res, code, StatusFor(code, code == 415 ? "UnsupportedMediaType" : "BadRequest",
                                   decoded.error().message));
        return false;
      }
      *out = std::move(decoded).value();
      return true;
    }
    *out = Json::parse(req.body, nullptr, false);
    if (out->is_discarded()) {
      Reply(res, 400, StatusFor(400, "BadRequest", "the request body is not valid JSON"));
      return false;
    }
    return true;
  };

  // Field validation of writes (schemas.h): unknown fields of a kind with a
  // schema are pruned, with a warning or (Strict) an error.
  const bool has_schema = !SchemaFor(type).is_null();
  auto field_validation = ParseFieldValidation(req.get_param_value("fieldValidation"));
  if (!field_validation.ok()) return ReplyError(res, field_validation.error());
  std::vector<std::string> warnings;
  // dryRun=All (kubectl --dry-run=server): admitted and answered, not stored.
  const std::string dry_run_param = req.get_param_value("dryRun");
  if (!dry_run_param.empty() && dry_run_param != "All") {
    return Reply(res, 400,
                 StatusFor(400, "BadRequest", fmt::format("dryRun {:?} is not supported: use All", dry_run_param)));
  }
  const bool dry_run = dry_run_param == "All";
  auto check_fields = [&](Json* body) -> bool {
    auto pruned = CheckFields(type, body, *field_validation);
    if (!pruned.ok()) {
      ReplyError(res, pruned.error(), type.plural, t.name);
      return false;
    }
    for (const auto& w : *pruned) AddUnknownFieldWarning(res, w);
    return true;
  };

  if (req.method == "GET" && t.name.empty()) {
    auto labels = k8s::LabelSelector::Parse(req.get_param_value("labelSelector"));
    if (!labels.ok()) return Reply(res, 400, StatusFor(400, "BadRequest", labels.error().message));
    auto fields = k8s::FieldSelector::Parse(req.get_param_value("fieldSelector"));
    if (!fields.ok()) return Reply(res, 400, StatusFor(400, "BadRequest", fields.error().message));
    for (const auto& term : fields->terms()) {
      // The field selectors Kubernetes supports for the kinds the lab serves
      // (kubectl describe node filters events by involvedObject.uid).
      static const std::set<std::string> kSupported = {
          "metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
          "spec.serviceAccountName", "spec.hostNetwork", "spec.unschedulable", "status.phase", "status.podIP",
          "spec.tier",  // Calico's policies (their CRDs' selectable field)
          "involvedObject.name", "involvedObject.kind", "involvedObject.namespace", "involvedObject.uid",
          "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason",
          "type", "reportingComponent"};
      if (!kSupported.count(term.field)) {
        return Reply(res, 400, StatusFor(400, "BadRequest",
                                         fmt::format("\"{}\" is not a known field selector", term.field)));
      }
    }
    WatchFilter filter{namespaced_path ? t.ns : "", std::move(labels).value(), std::move(fields).value()};
    std::string w = req.get_param_value("watch");
    store_->CountRead(type.GroupVersion() + "/" + type.plural, w == "true" || w == "1" ? "watch" : "list");
    if (w != "true" && w != "1") {
      auto list = store_->List(type, filter.ns, [&](const Json& o) { return filter.Matches(o); });
      if (!table_version.empty()) {
        return Reply(res, 200, TableOf(type, list.items, RealClock::Instance().Now(), *row_object, table_version,
                                       std::to_string(list.rv)));
      }
      return Reply(res, 200, ListOf(type, std::move(list.items), list.rv));
    }
    // --- watch ---
    auto st = std::make_shared<WatchState>();
    st->type = t.type;
    st->table_version = table_version;
    st->row_object = *row_object;
    st->filter = std::move(filter);
    st->bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
    st->start_rv = req.get_param_value("resourceVersion");
    st->generation = store_->close_generation();
    watches_served_++;
    int timeout = opts_.max_watch_seconds;
    if (req.has_param("timeoutSeconds")) {
      try {
        timeout = std::min(timeout, std::stoi(req.get_param_value("timeoutSeconds")));
      } catch (const std::exception&) {
        return Reply(res, 400, StatusFor(400, "BadRequest", "timeoutSeconds is not a number"));
      }
    }
    auto now = std::chrono::steady_clock::now();
    st->deadline = now + std::chrono::seconds(timeout);
    st->next_bookmark = now + opts_.bookmark_interval;
    res.status = 200;
    // Not plain "application/json": httplib would gzip that for clients that
    // accept it (kubectl does), and its compressor holds events back until
    // the stream ends. The media-type parameter is what Kubernetes uses for
    // watch streams too.
    res.set_chunked_content_provider("application/json;stream=watch", [this, st](size_t, httplib::DataSink& sink) {
      auto fail = [&](const Error& e) {
        WriteEvent(sink, "ERROR", StatusFor(410, "Expired", e.message));
        sink.done();
        return true;
      };
      if (stopping_ || store_->close_generation() != st->generation ||
          std::chrono::steady_clock::now() >= st->deadline || !sink.is_writable()) {
        sink.done();
        return true;
      }
      if (hold_watches_) {
        store_->WaitForChange(UINT64_MAX, st->generation, std::chrono::milliseconds(100), &stopping_);
        return true;
      }
      if (!st->started) {
        st->started = true;
        if (st->start_rv.empty() || st->start_rv == "0") {
          // No version: the current state as ADDED events, then changes.
          auto list = store_->List(*st->type, st->filter.ns,
                                   [&](const Json& o) { return st->filter.Matches(o); });
          for (const auto& o : list.items) {
            if (!WriteEvent(sink, "ADDED", AsWatched(*st, o))) return false;
          }
          st->cursor = list.rv;
          return true;
        }
        try {
          st->cursor = std::stoull(st->start_rv);
        } catch (const std::exception&) {
          WriteEvent(sink, "ERROR", StatusFor(400, "BadRequest", "invalid resourceVersion " + st->start_rv));
          sink.done();
          return true;
        }
      }
      uint64_t upto = 0;
      auto events = store_->EventsAfter(st->type->Key(), st->cursor, &upto);
      if (!events.ok()) return fail(events.error());
      for (const auto& ev : *events) {
        bool now_in = st->filter.Matches(ev.object);
        bool was_in = ev.type == "MODIFIED" ? st->filter.Matches(ev.old_object) : now_in;
        const char* type = nullptr;
        if (ev.type == "MODIFIED") {
          type = now_in && was_in ? "MODIFIED" : now_in ? "ADDED" : was_in ? "DELETED" : nullptr;
        } else if (now_in) {
          type = ev.type == "ADDED" ? "ADDED" : "DELETED";
        }
        if (type && !WriteEvent(sink, type, AsWatched(*st, ev.object))) return false;
      }
      st->cursor = upto;
      auto now = std::chrono::steady_clock::now();
      if (st->bookmarks && now >= st->next_bookmark) {
        st->next_bookmark = now + opts_.bookmark_interval;
        Json bm = {{"kind", st->type->kind}, {"apiVersion", st->type->GroupVersion()},
                   {"metadata", {{"resourceVersion", std::to_string(st->cursor)}}}};
        if (!WriteEvent(sink, "BOOKMARK", bm)) return false;
      }
      if (events->empty()) {
        auto wait = std::min<std::chrono::milliseconds>(
            opts_.bookmark_interval, std::chrono::duration_cast<std::chrono::milliseconds>(
                                         st->deadline - std::chrono::steady_clock::now()));
        store_->WaitForChange(st->cursor, st->generation, std::max(wait, std::chrono::milliseconds(1)),
                              &stopping_);
      }
      return true;
    });
    return;
  }

  if (req.method == "GET") {
    store_->CountRead(type.GroupVersion() + "/" + type.plural, "get");
    auto obj = store_->Get(type, t.ns, t.name);
    if (!obj.ok()) return ReplyError(res, obj.error(), type.plural, t.name);
    if (!table_version.empty()) {
      return Reply(res, 200, TableOf(type, {*obj}, RealClock::Instance().Now(), *row_object, table_version,
                                     (*obj)["metadata"].value("resourceVersion", "")));
    }
    return Reply(res, 200, *obj);
  }

  if (req.method == "POST") {
    if (!t.name.empty()) return Reply(res, 405, StatusFor(405, "MethodNotAllowed", "POST to an object"));
    if (type.namespaced && !namespaced_path) {
      return Reply(res, 404, StatusFor(404, "NotFound", "namespaced resources are created under /namespaces/<ns>/"));
    }
    Json body;
    if (!parse_body(&body)) return;
    if (!check_fields(&body)) return;
    auto obj = store_->Create(type, t.ns, std::move(body), dry_run);
    if (!obj.ok()) return ReplyError(res, obj.error(), type.plural);
    return Reply(res, 201, *obj);
  }

  if (t.name.empty()) {
    return Reply(res, 405, StatusFor(405, "MethodNotAllowed", "collection " + req.method + " is not supported"));
  }

  if (req.method == "PUT") {
    Json body;
    if (!parse_body(&body)) return;
    if (!status_sub && !check_fields(&body)) return;
    auto obj = store_->Update(type, t.ns, t.name, std::move(body), status_sub, dry_run);
    if (!obj.ok()) return ReplyError(res, obj.error(), type.plural, t.name);
    return Reply(res, 200, *obj);
  }

  if (req.method == "PATCH") {
    Json patch;
    if (!parse_body(&patch)) return;
    std::string ct = req.get_header_value("Content-Type");
    if (auto semi = ct.find(';'); semi != std::string::npos) ct = ct.substr(0, semi);
    std::function<Status(Json&)> apply;
    if (ct == "application/merge-patch+json") {
      apply = [&](Json& o) -> Status {
        o.merge_patch(patch);
        return Ok();
      };
    } else if (ct == "application/strategic-merge-patch+json" && !has_schema) {
      apply = [&](Json& o) -> Status {
        StrategicMerge(o, patch);
        return Ok();
      };
    } else if (ct == "application/json-patch+json") {
      apply = [&](Json& o) -> Status {
        try {
          o = o.patch(patch);
        } catch (const nlohmann::json::exception& e) {
          Error err = Errorf(ErrorCode::kInvalidArgument, "json patch: {}", e.what());
          err.http_status = 400;  // hmm: a failed "test" op is 422 in Kubernetes
          return err;
        }
        return Ok();
      };
    } else {
      // Custom resources (the kinds with a schema) take no strategic
      // merge patch: they have no patch-merge keys.
      return Reply(res, 415, StatusFor(415, "UnsupportedMediaType",
                                       fmt::format("the body of the request was in an unknown format - "
                                                   "accepted media types include: application/json-patch+json, "
                                                   "application/merge-patch+json{}; got {}",
                                                   has_schema ? "" : ", application/strategic-merge-patch+json",
                                                   ct)));
    }
    if (!status_sub) {
      apply = [apply, &type, &field_validation, &warnings](Json& o) -> Status {
        TERWAY_TRY(apply(o));
        TERWAY_ASSIGN_OR_RETURN(warnings, CheckFields(type, &o, *field_validation));
        return Ok();
      };
    }
    auto obj = store_->Mutate(type, t.ns, t.name, apply, status_sub, dry_run);
    for (const auto& w : warnings) AddUnknownFieldWarning(res, w);
    if (!obj.ok()) return ReplyError(res, obj.error(), type.plural, t.name);
    return Reply(res, 200, *obj);
  }

  if (req.method == "DELETE") {
    auto obj = store_->Delete(type, t.ns, t.name, dry_run);
    if (!obj.ok()) return ReplyError(res, obj.error(), type.plural, t.name);
    return Reply(res, 200, *obj);
  }
  Reply(res, 405, StatusFor(405, "MethodNotAllowed", "method not allowed"));
}

}  // namespace terway::lab
