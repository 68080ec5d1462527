// vpcsim: the emulated Alibaba Cloud (ECS/VPC OpenAPI, metadata, VPC fabric).
//
//   vpcsim serve --world FILE --state DIR [--listen 127.0.0.1:0] [--port-file F] [--fabric auto|linux|none]
//   vpcsim destroy --state DIR
//   vpcsim fault set --action A [--throttle-rate R] [--error-rate R] [--latency-ms N]
//                    [--attach-delay-ms N] [--stuck-detaching true|false] [--throttle-code C]
//   vpcsim fault clear [--action A] | vpcsim fault list
//   vpcsim stats [--reset]
//   vpcsim instance add --type T --vswitch V [--id I] [--ipv6-address-count N] | vpcsim instance remove ID
//   vpcsim describe [--json]
// Client commands find the server with --endpoint HOST:PORT, or with --state
// DIR (serve writes DIR/endpoint), or $VPCSIM_ENDPOINT.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "tools/vpcsim/fake_fabric.h"
#include "tools/vpcsim/server.h"
#include "tools/vpcsim/state_store.h"
#ifdef VPCSIM_HAVE_LINUX_FABRIC
#include "tools/vpcsim/fabric/linux_fabric.h"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using namespace terway;
using namespace terway::vpcsim;

namespace {

int Fail(const std::string& msg) {
  std::cerr << "vpcsim: " << msg << "\n";
  return 1;
}

// Owner-only (0600) from its creation: the endpoint leads to an
// unauthenticated admin API. A leftover temp file goes first, so O_EXCL makes
// sure the file written is ours, with our mode.
Status WriteFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  if (unlink(tmp.c_str()) != 0 && errno != ENOENT) return SysError("removing the stale " + tmp);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("creating " + tmp);
  bool written = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  if (close(fd) != 0 || !written) {
    unlink(tmp.c_str());
    return SysError("writing " + tmp);
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) return SysError("renaming " + tmp);
  return Ok();
}

// One server per state directory: two would corrupt each other's view.
Result<int> LockState(const std::string& dir) {
  TERWAY_TRY(PrepareStateDir(dir));
  std::string p = dir + "/lock";
  int fd = open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("opening " + p);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return Errorf(ErrorCode::kConflict, "another vpcsim is serving state {} (stop it first)", dir);
  }
  return fd;
}

std::unique_ptr<Fabric> MakeFabric(const std::string& kind, const std::string& prefix, std::string* err) {
  if (kind == "none") return std::make_unique<FakeFabric>(prefix);
#ifdef VPCSIM_HAVE_LINUX_FABRIC
  if (kind == "linux") return std::make_unique<LinuxFabric>(prefix);
#endif
  *err = "fabric '" + kind + "' is not available in this build (choices: none" +
#ifdef VPCSIM_HAVE_LINUX_FABRIC
         std::string(", linux") +
#endif
         ")";
  return nullptr;
}

int Serve(const std::string& world_file, const std::string& state, const std::string& listen,
          const std::string& port_file, std::string fabric_kind, int attach_delay_ms) {
  if (fabric_kind == "auto") {
    // The real data plane when it can be built (root, linux fabric compiled in).
#ifdef VPCSIM_HAVE_LINUX_FABRIC
    fabric_kind = geteuid() == 0 ? "linux" : "none";
#else
    fabric_kind = "none";
#endif
  }
  auto world = LoadWorld(world_file);
  if (!world.ok()) return Fail(world.error().ToString());
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Fail("--listen wants HOST:PORT, e.g. 127.0.0.1:0");
  Vpcsim::Options o;
  o.state_dir = state;
  o.listen_host = listen.substr(0, colon);
  try {
    o.listen_port = std::stoi(listen.substr(colon + 1));
  } catch (const std::exception&) {
    return Fail("--listen: bad port in '" + listen + "'");
  }
  if (o.listen_host != "127.0.0.1" && o.listen_host != "::1" && o.listen_host != "localhost") {
    // The admin endpoint is unauthenticated: keep it off every other address.
    return Fail("--listen must be a loopback address (the admin endpoint has no authentication)");
  }
  o.attach_delay = std::chrono::milliseconds(attach_delay_ms);
  // Only a real fabric has a router namespace of ours to serve in (a "none"
  // world must never bind inside a namespace that merely has the same name).
  o.serve_in_router = fabric_kind == "linux";
  auto lock = LockState(state);
  if (!lock.ok()) return Fail(lock.error().ToString());
  std::string err;
  auto fabric = MakeFabric(fabric_kind, world->name, &err);
  if (!fabric) return Fail(err);
  {
    // Recorded so that `destroy` knows what to tear down.
    auto store = StateStore::Open(state);
    if (!store.ok()) return Fail(store.error().ToString());
    if (Status s = (*store)->SetMeta("fabric", fabric_kind); !s.ok()) return Fail(s.error().ToString());
    if (Status s = (*store)->SetMeta("world_prefix", world->name); !s.ok()) return Fail(s.error().ToString());
  }
  // Block the stop signals before any thread starts, so they all inherit the
  // mask and only sigwait() below receives them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto v = Vpcsim::Start(*world, o, fabric.get(), &RealClock::Instance());
  if (!v.ok()) return Fail(v.error().ToString());
  std::string endpoint = o.listen_host + ":" + std::to_string((*v)->port());
  if (!port_file.empty()) {
    if (Status s = WriteFileAtomic(port_file, std::to_string((*v)->port()) + "\n"); !s.ok()) {
      return Fail(s.error().ToString());
    }
  }
  if (Status s = WriteFileAtomic(state + "/endpoint", endpoint + "\n"); !s.ok()) return Fail(s.error().ToString());
  std::cout << "vpcsim: world " << world->name << " serving on " << endpoint << " (fabric " << fabric_kind
            << ", state " << state << ")" << std::endl;
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("vpcsim stopping signal={}", sig);
  (*v)->Stop();
  std::error_code ec;
  fs::remove(state + "/endpoint", ec);
  // The fabric stays: a restarted vpcsim re-uses it; `vpcsim destroy` removes it.
  return 0;
}

int Destroy(const std::string& state) {
  if (!fs::exists(state + "/vpcsim.db")) return Fail("no vpcsim state in " + state);
  auto lock = LockState(state);
  if (!lock.ok()) return Fail(lock.error().ToString());
  std::string kind = "none", prefix;
  {
    auto store = StateStore::Open(state);
    if (!store.ok()) return Fail(store.error().ToString());
    auto snap = (*store)->Load();
    if (!snap.ok()) return Fail(snap.error().ToString());
    if (snap->meta.count("fabric")) kind = snap->meta["fabric"];
    prefix = snap->meta.count("world_prefix") ? snap->meta["world_prefix"] : snap->meta["world_name"];
  }
  if (kind != "none") {
    std::string err;
    auto fabric = MakeFabric(kind, prefix, &err);
    if (!fabric) return Fail(err);
    if (Status s = fabric->Destroy(); !s.ok()) return Fail("destroying fabric of world " + prefix + ": " + s.error().ToString());
  }
  std::error_code ec;
  for (const char* f : {"vpcsim.db", "vpcsim.db-wal", "vpcsim.db-shm", "endpoint", "lock"}) {
    fs::remove(state + "/" + f, ec);
  }
  fs::remove(state, ec);  // only if now empty: never delete what we did not create
  std::cout << "vpcsim: destroyed world " << prefix << " (fabric " << kind << ") and its state in " << state
            << std::endl;
  return 0;
}

struct Client {
  std::string host;
  int port = 0;
  static Result<Client> Find(const std::string& endpoint, const std::string& state) {
    std::string ep = endpoint;
    if (ep.empty() && !state.empty()) {
      std::ifstream in(state + "/endpoint");
      std::getline(in, ep);
      if (ep.empty()) return Errorf(ErrorCode::kNotFound, "no running vpcsim for state {} (no endpoint file)", state);
    }
    if (ep.empty()) {
      const char* e = getenv("VPCSIM_ENDPOINT");
      if (e) ep = e;
    }
    if (ep.empty()) return MakeError(ErrorCode::kInvalidArgument, "give --endpoint HOST:PORT or --state DIR");
    auto c = ep.rfind(':');
    if (c == std::string::npos) return Errorf(ErrorCode::kInvalidArgument, "bad endpoint '{}'", ep);
    Client cl;
    cl.host = ep.substr(0, c);
    try {
      cl.port = std::stoi(ep.substr(c + 1));
    } catch (const std::exception&) {
      return Errorf(ErrorCode::kInvalidArgument, "bad endpoint '{}'", ep);
    }
    return cl;
  }
  Result<json> Call(const std::string& method, const std::string& path, const json& body = nullptr) {
    httplib::Client c(host, port);
    c.set_connection_timeout(5);
    httplib::Result r = method == "GET"    ? c.Get(path.c_str())
                        : method == "DELETE" ? c.Delete(path.c_str())
                                             : c.Post(path.c_str(), body.is_null() ? "{}" : body.dump(), "application/json");
    if (!r) return Errorf(ErrorCode::kUnavailable, "cannot reach vpcsim at {}:{} ({})", host, port, httplib::to_string(r.error()));
    json j;
    try {
      j = json::parse(r->body);
    } catch (const std::exception&) {
      return Errorf(ErrorCode::kInternal, "vpcsim answered non-JSON: {}", r->body.substr(0, 200));
    }
    if (r->status >= 300) return Errorf(ErrorCode::kInvalidArgument, "{}", j.value("error", r->body));
    return j;
  }
};

void PrintWorld(const json& w) {
  std::cout << "world " << w["world"].get<std::string>() << "  region " << w["region"].get<std::string>() << "  vpc "
            << w["vpc"]["id"].get<std::string>() << " " << w["vpc"]["cidr"].get<std::string>();
  if (!w["vpc"].value("ipv6_cidr", "").empty()) std::cout << " " << w["vpc"]["ipv6_cidr"].get<std::string>();
  std::cout << "\n\nvSwitches:\n";
  for (const auto& v : w["vswitches"]) {
    std::cout << fmt::format("  {:<20} {:<16} {:<18} gateway {:<15} used {:>4}  free {:>5}",
                             v["id"].get<std::string>(), v["zone"].get<std::string>(), v["cidr"].get<std::string>(),
                             v["gateway"].get<std::string>(), v["used"].get<int>(), v["available"].get<int>());
    if (v.contains("ipv6_cidr")) {
      std::cout << fmt::format("  ipv6 {} used {}", v["ipv6_cidr"].get<std::string>(), v["ipv6_used"].get<int>());
    }
    std::cout << "\n";
  }
  auto eni_line = [](const json& e, const std::string& dev) {
    std::vector<std::string> sec = e["secondary_ips"].get<std::vector<std::string>>();
    std::string ips = e["primary_ip"].get<std::string>();
    if (!sec.empty()) ips += "  + " + fmt::format("{}", fmt::join(sec, " "));
    auto v6 = e["ipv6s"].get<std::vector<std::string>>();
    if (!v6.empty()) ips += "  v6 " + fmt::format("{}", fmt::join(v6, " "));
    return fmt::format("    {:<5} {:<25} {:<9} {:<10} {}  {}\n", dev, e["id"].get<std::string>(),
                       e["type"].get<std::string>(), e["status"].get<std::string>(), e["mac"].get<std::string>(), ips);
  };
  std::cout << "\nInstances:\n";
  if (w["instances"].empty()) std::cout << "  (none)\n";
  for (const auto& i : w["instances"]) {
    std::cout << fmt::format("  {}  {} ({} ENIs x {} IPs)  {}  {}\n", i["id"].get<std::string>(),
                             i["instance_type"].get<std::string>(), i["eni_quantity"].get<int>(),
                             i["ips_per_eni"].get<int>(), i["zone"].get<std::string>(), i["vswitch"].get<std::string>());
    for (const auto& e : i["enis"]) std::cout << eni_line(e, "eth" + std::to_string(e["device_index"].get<int>()));
  }
  std::cout << "\nUnattached ENIs:\n";
  if (w["unattached_enis"].empty()) std::cout << "  (none)\n";
  for (const auto& e : w["unattached_enis"]) std::cout << eni_line(e, "-");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vpcsim: an emulated Alibaba Cloud VPC (ECS/VPC OpenAPI, metadata service, Linux fabric)"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");

  std::string world_file, state, listen = "127.0.0.1:0", port_file, fabric_kind = "auto", endpoint;
  int attach_delay_ms = 300;
  auto* serve = app.add_subcommand("serve", "run the emulated cloud");
  serve->add_option("--world", world_file, "world definition (YAML)")->required();
  serve->add_option("--state", state, "state directory (SQLite)")->required();
  serve->add_option("--listen", listen, "loopback HOST:PORT for API, metadata and admin (port 0 = any)");
  serve->add_option("--port-file", port_file, "write the bound port here");
  serve->add_option("--fabric", fabric_kind, "data plane: linux (real namespaces, root), none, or auto (linux when root)");
  serve->add_option("--attach-delay-ms", attach_delay_ms, "time in Attaching/Detaching");

  auto* destroy = app.add_subcommand("destroy", "remove a world's fabric and state");
  destroy->add_option("--state", state, "state directory")->required();

  auto add_client = [&](CLI::App* c) {
    c->add_option("--endpoint", endpoint, "HOST:PORT of a running vpcsim");
    c->add_option("--state", state, "state directory of a running vpcsim");
  };
  auto* fault = app.add_subcommand("fault", "fault injection");
  fault->require_subcommand(1);
  add_client(fault);
  std::string action = "*";
  std::optional<double> throttle, error_rate;
  std::optional<int> latency, attach_delay;
  std::optional<bool> stuck;
  std::optional<std::string> throttle_code;
  auto* fset = fault->add_subcommand("set", "set faults of an action (\"*\" = all)");
  add_client(fset);
  fset->add_option("--action", action, "API action name or *");
  fset->add_option("--throttle-rate", throttle, "0..1");
  fset->add_option("--error-rate", error_rate, "0..1 (InternalError / ServiceUnavailable)");
  fset->add_option("--latency-ms", latency);
  fset->add_option("--attach-delay-ms", attach_delay);
  fset->add_option("--stuck-detaching", stuck);
  fset->add_option("--throttle-code", throttle_code, "Throttling | Throttling.User | Throttling.Api");
  auto* fclear = fault->add_subcommand("clear", "clear faults (of one action, or all)");
  add_client(fclear);
  std::string clear_action;
  fclear->add_option("--action", clear_action);
  auto* flist = fault->add_subcommand("list", "show faults in force");
  add_client(flist);

  auto* stats = app.add_subcommand("stats", "calls and errors per action (JSON)");
  add_client(stats);
  bool reset = false;
  stats->add_flag("--reset", reset, "zero the counters");

  auto* instance = app.add_subcommand("instance", "add or remove ECS instances");
  instance->require_subcommand(1);
  add_client(instance);
  std::string itype, ivsw, iid;
  auto* iadd = instance->add_subcommand("add", "create an instance (with its primary ENI)");
  add_client(iadd);
  iadd->add_option("--type", itype, "instance type, e.g. ecs.g7.large")->required();
  iadd->add_option("--vswitch", ivsw, "vSwitch id")->required();
  iadd->add_option("--id", iid, "instance id (default: generated)");
  int iipv6 = 0;
  iadd->add_option("--ipv6-address-count", iipv6,
                   "IPv6 addresses of the primary ENI, 1..10 (RunInstances' Ipv6AddressCount; the vSwitch needs IPv6)");
  auto* irm = instance->add_subcommand("remove", "release an instance");
  add_client(irm);
  irm->add_option("id", iid)->required();

  auto* describe = app.add_subcommand("describe", "instances, ENIs, IPs");
  add_client(describe);
  bool as_json = false;
  describe->add_flag("--json", as_json);

  CLI11_PARSE(app, argc, argv);
  log::Init("vpcsim", log_level);

  if (serve->parsed()) return Serve(world_file, state, listen, port_file, fabric_kind, attach_delay_ms);
  if (destroy->parsed()) return Destroy(state);

  auto client = Client::Find(endpoint, state);
  if (!client.ok()) return Fail(client.error().ToString());
  Result<json> r = json();
  if (fset->parsed()) {
    json body = {{"action", action}};
    if (throttle) body["throttle_rate"] = *throttle;
    if (error_rate) body["error_rate"] = *error_rate;
    if (latency) body["latency_ms"] = *latency;
    if (attach_delay) body["attach_delay_ms"] = *attach_delay;
    if (stuck) body["stuck_detaching"] = *stuck;
    if (throttle_code) body["throttle_code"] = *throttle_code;
    r = client->Call("POST", "/admin/faults", body);
  } else if (fclear->parsed()) {
    json body = json::object();
    if (!clear_action.empty()) body["action"] = clear_action;
    r = client->Call("POST", "/admin/faults/clear", body);
  } else if (flist->parsed()) {
    r = client->Call("GET", "/admin/faults");
  } else if (stats->parsed()) {
    r = client->Call(reset ? "POST" : "GET", reset ? "/admin/stats/reset" : "/admin/stats");
  } else if (iadd->parsed()) {
    json body = {{"instance_type", itype}, {"vswitch", ivsw}};
    if (!iid.empty()) body["id"] = iid;
    if (iipv6 != 0) body["ipv6_address_count"] = iipv6;
    r = client->Call("POST", "/admin/instances", body);
  } else if (irm->parsed()) {
    r = client->Call("DELETE", "/admin/instances/" + iid);
  } else if (describe->parsed()) {
    r = client->Call("GET", "/admin/world");
    if (r.ok() && !as_json) {
      PrintWorld(*r);
      return 0;
    }
  }
  if (!r.ok()) return Fail(r.error().ToString());
  std::cout << r->dump(2) << std::endl;
  return 0;
}
