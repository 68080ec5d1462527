#include "tools/vpcsim/server.h"

#include <future>

#include <httplib.h>

#include "common/log.h"
#include "netlink/netns.h"

namespace terway::vpcsim {

namespace {

void Send(httplib::Response& res, const HttpReply& r) {
  res.status = r.status;
  res.set_content(r.body, r.content_type.c_str());
}

std::string QueryOf(const httplib::Request& req) {
  auto q = req.target.find('?');
  return q == std::string::npos ? "" : req.target.substr(q + 1);
}

std::optional<std::string> Header(const httplib::Request& req, const char* name) {
  if (!req.has_header(name)) return std::nullopt;
  return req.get_header_value(name);
}

MetadataRequest ToMetadata(const httplib::Request& req) {
  MetadataRequest m;
  m.method = req.method;
  m.path = req.path;
  m.token = Header(req, "X-aliyun-ecs-metadata-token");
  m.token_ttl = Header(req, "X-aliyun-ecs-metadata-token-ttl-seconds");
  return m;
}

// Polls until the server loop runs: stop() before that would be lost.
bool WaitRunning(httplib::Server& s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!s.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

Result<std::unique_ptr<Vpcsim>> Vpcsim::Start(World world, Options o, Fabric* fabric, Clock* clock) {
  std::unique_ptr<Vpcsim> v(new Vpcsim());
  TERWAY_ASSIGN_OR_RETURN(auto store, StateStore::Open(o.state_dir));
  VpcCloud::Options co;
  co.attach_delay = o.attach_delay;
  TERWAY_ASSIGN_OR_RETURN(v->cloud_, VpcCloud::Open(std::move(world), std::move(store), fabric, clock,
                                                    &v->faults_, co));
  TERWAY_TRY_CTX(v->cloud_->SyncFabric(), "re-creating the fabric from the state");
  v->api_ = std::make_unique<OpenApiService>(v->cloud_.get(), &v->faults_, &v->counters_);
  v->metadata_ = std::make_unique<MetadataService>(v->cloud_.get());
  v->admin_ = std::make_unique<AdminService>(v->cloud_.get(), &v->faults_, &v->counters_);
  v->worker_ = std::thread([p = v.get(), tick = o.tick] { p->Worker(tick); });
  if (Status s = v->StartLoopback(o); !s.ok()) {
    v->Stop();
    return std::move(s).error();
  }
  std::string router = fabric->RouterNetns();
  if (o.serve_in_router && netlink::NetnsExists(router)) {
    if (Status s = v->StartInRouter(router); !s.ok()) {
      v->Stop();
      return std::move(s).error().Wrap("serving inside router namespace " + router);
    }
  }
  return v;
}

Status Vpcsim::StartLoopback(const Options& o) {
  auto srv = std::make_unique<httplib::Server>();
  srv->set_payload_max_length(1 << 20);
  // httplib writes headers and body separately; with Nagle on, the body
  // waits for the client's delayed ACK (~40 ms per metadata or API call).
  srv->set_tcp_nodelay(true);
  auto api = [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, api_->HandleRaw(req.method, QueryOf(req), req.method == "POST" ? req.body : ""));
  };
  srv->Get("/", api);
  srv->Post("/", api);
  auto md = [this](const httplib::Request& req, httplib::Response& res) {
    MetadataRequest m = ToMetadata(req);
    // Loopback callers are tests and tools: they name the instance they act as.
    m.instance_id = Header(req, kEmulatorInstanceHeader).value_or("");
    Send(res, metadata_->Handle(m));
  };
  srv->Get(R"(/latest(/.*)?)", md);
  srv->Put(R"(/latest(/.*)?)", md);
  auto admin = [this](const httplib::Request& req, httplib::Response& res) {
    Send(res, admin_->Handle(req.method, req.path, req.body));
  };
  srv->Get(R"(/admin/.*)", admin);
  srv->Post(R"(/admin/.*)", admin);
  srv->Delete(R"(/admin/.*)", admin);
  if (o.listen_port == 0) {
    port_ = srv->bind_to_any_port(o.listen_host);
    if (port_ < 0) return Errorf(ErrorCode::kUnavailable, "cannot bind {}:0", o.listen_host);
  } else {
    if (!srv->bind_to_port(o.listen_host, o.listen_port)) {
      return Errorf(ErrorCode::kUnavailable, "cannot bind {}:{} (in use?)", o.listen_host, o.listen_port);
    }
    port_ = o.listen_port;
  }
  httplib::Server* raw = srv.get();
  servers_.push_back(std::move(srv));
  threads_.emplace_back([raw] { raw->listen_after_bind(); });
  if (!WaitRunning(*raw)) return MakeError(ErrorCode::kInternal, "loopback listener did not start");
  log::Info("vpcsim listening addr={}:{}", o.listen_host, port_);
  return Ok();
}

Status Vpcsim::StartInRouter(const std::string& netns) {
  // Each listener's socket must be created inside the router namespace, so
  // bind and serve on a thread that has entered it (see netlink/netns.h).
  auto start = [&](const char* addr, bool is_api) -> Status {
    auto srv = std::make_unique<httplib::Server>();
    srv->set_payload_max_length(1 << 20);
    srv->set_tcp_nodelay(true);  // see StartLoopback
    if (is_api) {
      auto api = [this](const httplib::Request& req, httplib::Response& res) {
        Send(res, api_->HandleRaw(req.method, QueryOf(req), req.method == "POST" ? req.body : ""));
      };
      srv->Get("/", api);
      srv->Post("/", api);
    } else {
      auto md = [this](const httplib::Request& req, httplib::Response& res) {
        MetadataRequest m = ToMetadata(req);
        m.instance_id = cloud_->InstanceByIp(req.remote_addr).value_or("");
        Send(res, metadata_->Handle(m));
      };
      srv->Get(R"(/latest(/.*)?)", md);
      srv->Put(R"(/latest(/.*)?)", md);
    }
    httplib::Server* raw = srv.get();
    auto bound = std::make_shared<std::promise<bool>>();
    auto fut = bound->get_future();
    std::string a = addr;
    TERWAY_ASSIGN_OR_RETURN(std::thread t, netlink::SpawnInNetns(netns, [raw, bound, a] {
                              if (!raw->bind_to_port(a, 80)) {
                                bound->set_value(false);
                                return;
                              }
                              bound->set_value(true);
                              raw->listen_after_bind();
                            }));
    servers_.push_back(std::move(srv));
    threads_.push_back(std::move(t));
    if (!fut.get()) return Errorf(ErrorCode::kUnavailable, "cannot bind {}:80 in {}", addr, netns);
    if (!WaitRunning(*raw)) return Errorf(ErrorCode::kInternal, "listener {}:80 did not start", addr);
    log::Info("vpcsim listening netns={} addr={}:80", netns, addr);
    return Ok();
  };
  TERWAY_TRY(start(kApiAddress, true));
  return start(kMetadataAddress, false);
}

void Vpcsim::Worker(std::chrono::milliseconds tick) {
  std::unique_lock l(mu_);
  while (!stopping_) {
    l.unlock();
    cloud_->Tick();
    l.lock();
    cv_.wait_for(l, tick, [this] { return stopping_; });
  }
}

void Vpcsim::Stop() {
  {
    std::lock_guard l(mu_);
    if (stopping_ && !worker_.joinable() && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& s : servers_) s->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  servers_.clear();
  if (worker_.joinable()) worker_.join();
}

Vpcsim::~Vpcsim() { Stop(); }

}  // namespace terway::vpcsim
