#include "e2e/harness/world.h"

#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "cni/daemon_client.h"
#include "test_util.h"

namespace terway::testing {

namespace {
std::string Bin(const std::string& name) { return BinaryPath(name); }
}  // namespace

Result<std::unique_ptr<VpcsimWorld>> VpcsimWorld::Start(const WorldSpec& spec) {
  std::unique_ptr<VpcsimWorld> w(new VpcsimWorld());
  // Short (vpcsim allows 8 characters: the name prefixes namespace and link
  // names), and unique per run so parallel tests never share a world.
  static int worlds = 0;
  w->name_ = fmt::format("e{:x}{:x}", getpid() & 0xffff, worlds++ & 0xff);
  std::string vsw = "vsw-" + w->name_ + "a";
  w->vswitches_.push_back(vsw);
  std::string yaml = fmt::format(R"(name: {name}
region: cn-hangzhou
zones: [cn-hangzhou-h]
vpc:
  id: vpc-{name}
  cidr: 198.18.0.0/16
{vpc6}  vswitches:
    - id: {vsw}
      zone: cn-hangzhou-h
      cidr: {cidr}
{vsw6})", fmt::arg("name", w->name_), fmt::arg("vsw", vsw), fmt::arg("cidr", spec.vswitch_cidr),
                                 fmt::arg("vpc6", spec.vpc_ipv6_cidr.empty()
                                                      ? ""
                                                      : fmt::format("  ipv6_cidr: \"{}\"\n", spec.vpc_ipv6_cidr)),
                                 fmt::arg("vsw6", spec.vswitch_ipv6_cidr.empty()
                                                      ? ""
                                                      : fmt::format("      ipv6_cidr: \"{}\"\n", spec.vswitch_ipv6_cidr)));
  if (!spec.extra_vswitch_cidr.empty()) {
    std::string vsw2 = "vsw-" + w->name_ + "b";
    w->vswitches_.push_back(vsw2);
    yaml += fmt::format("    - id: {}\n      zone: cn-hangzhou-h\n      cidr: {}\n", vsw2,
                        spec.extra_vswitch_cidr);
  }
  yaml += "instances:\n";
  for (int i = 0; i < spec.instances; i++) {
    std::string id = fmt::format("i-{}n{}", w->name_, i);
    w->instances_.push_back(id);
    yaml += fmt::format("  - id: {}\n    instance_type: {}\n    vswitch: {}\n", id,
                        spec.instance_type, vsw);
  }
  yaml += fmt::format(R"(access_keys:
  - id: {}
    secret: {}
ram_role: TerwayRole
security_group: sg-{}
sts_ttl_seconds: 3600
metadata_hardened: false
)", kAccessKey, kAccessSecret, w->name_);
  TERWAY_TRY(WriteFile(w->dir_.File("world.yaml"), yaml));
  TERWAY_TRY(w->Launch());
  return w;
}

Status VpcsimWorld::Launch() {
  unlink(dir_.File("port").c_str());
  ProcessOptions po;
  po.argv = {Bin("vpcsim"), "serve", "--world", dir_.File("world.yaml"), "--state",
             dir_.File("state"), "--listen", "127.0.0.1:0", "--port-file", dir_.File("port"),
             "--fabric", "linux"};
  po.log_path = dir_.File("vpcsim.log");
  TERWAY_ASSIGN_OR_RETURN(vpcsim_, Process::Start(po));
  bool up = WaitFor([&] { return !ReadFile(dir_.File("port")).empty() || !vpcsim_.running(); },
                    std::chrono::seconds(60));
  if (!up || !vpcsim_.running()) {
    return Errorf(ErrorCode::kUnavailable, "vpcsim did not start; its log:\n{}", vpcsim_.Log());
  }
  port_ = std::stoi(ReadFile(dir_.File("port")));
  return Ok();
}

Status VpcsimWorld::Restart(bool kill9) {
  if (kill9) {
    vpcsim_.Kill9();
  } else {
    vpcsim_.Stop();
  }
  return Launch();
}

VpcsimWorld::~VpcsimWorld() {
  vpcsim_.Stop();
  RunCommand({Bin("vpcsim"), "destroy", "--state", dir_.File("state")}, "",
             std::chrono::seconds(60));
}

std::string VpcsimWorld::InstanceNetns(const std::string& instance_id) const {
  return name_ + "-" + instance_id;
}

Result<nlohmann::json> VpcsimWorld::Admin(const std::string& method, const std::string& path,
                                          const nlohmann::json& body) {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(30, 0);
  httplib::Result r{nullptr, httplib::Error::Unknown};
  if (method == "GET") {
    r = c.Get(path.c_str());
  } else if (method == "DELETE") {
    r = c.Delete(path.c_str());
  } else {
    std::string b = body.is_null() ? "{}" : body.dump();
    r = c.Post(path.c_str(), b, "application/json");
  }
  if (!r) return Errorf(ErrorCode::kUnavailable, "vpcsim admin {} {}: no answer", method, path);
  if (r->status >= 300) {
    return Errorf(ErrorCode::kInternal, "vpcsim admin {} {}: HTTP {} {}", method, path, r->status,
                  r->body);
  }
  try {
    return r->body.empty() ? nlohmann::json::object() : nlohmann::json::parse(r->body);
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInternal, "vpcsim admin {}: bad JSON: {}", path, e.what());
  }
}

Status VpcsimWorld::SetFaults(const nlohmann::json& fault) {
  auto r = Admin("POST", "/admin/faults", fault);
  if (!r.ok()) return std::move(r).error();
  return Ok();
}

Status VpcsimWorld::ClearFaults() {
  auto r = Admin("POST", "/admin/faults/clear", nlohmann::json::object());
  if (!r.ok()) return std::move(r).error();
  return Ok();
}

Result<std::unique_ptr<TerwaydNode>> TerwaydNode::Start(VpcsimWorld* world, const TerwaydSpec& spec) {
  std::unique_ptr<TerwaydNode> n(new TerwaydNode());
  n->world_ = world;
  n->netns_ = world->InstanceNetns(spec.instance_id);
  std::string base = world->dir().File(spec.instance_id);
  n->socket_ = base + ".sock";
  n->state_ = base + ".db";
  n->config_ = base + ".json";
  n->log_ = base + ".terwayd.log";
  n->datapath_ = spec.datapath;
  n->extra_args_ = spec.extra_args;
  // As on ECS: the API and the metadata service are reached through the VPC
  // from inside the instance, and credentials come from the RAM role.
  std::string conf = fmt::format(R"({{
  "version": "1",
  "max_pool_size": {max},
  "min_pool_size": {min},
  "vswitches": {{"{zone}": ["{vsw}"]}},
  "security_group": "sg-{name}",
  "ecs_endpoint": "http://100.100.0.1",
  "vpc_endpoint": "http://100.100.0.1",
  "credential_source": "ram_role",
  "ip_pool_sync_period": "30s",
  "idle_ip_reclaim_interval": "5s"{extra}
}}
)", fmt::arg("max", spec.max_pool_size), fmt::arg("min", spec.min_pool_size),
      fmt::arg("zone", world->zone()), fmt::arg("vsw", world->vswitches()[0]),
      fmt::arg("name", world->name()),
      fmt::arg("extra", spec.extra_conf.empty() ? "" : ",\n  " + spec.extra_conf));
  TERWAY_TRY(WriteFile(n->config_, conf));
  TERWAY_TRY(n->Launch());
  return n;
}

Status TerwaydNode::Launch() {
  ProcessOptions po;
  po.argv = {BinaryPath("terwayd"), "--config", config_, "--socket", socket_, "--state", state_,
             "--metrics-listen", "127.0.0.1:0", "--metrics-port-file", log_ + ".port",
             "--datapath", datapath_, "--log-level", "info"};
  po.argv.insert(po.argv.end(), extra_args_.begin(), extra_args_.end());
  po.netns = netns_;
  po.log_path = log_;
  TERWAY_ASSIGN_OR_RETURN(proc_, Process::Start(po));
  return Ok();
}

Status TerwaydNode::Restart() {
  if (proc_.running()) proc_.Stop();
  return Launch();
}

Status TerwaydNode::WaitReady(std::chrono::milliseconds deadline) {
  std::string last;
  bool ok = WaitFor(
      [&] {
        if (!proc_.running()) return true;
        auto c = cni::MakeUnixDaemonClient(socket_, std::chrono::seconds(2));
        cni::protocol::Request req;
        req.op = cni::protocol::Op::kStatus;
        auto r = c->Call(req);
        if (!r.ok()) {
          last = r.error().ToString();
          return false;
        }
        return r->ok() && r->status && r->status->ready;
      },
      deadline, std::chrono::milliseconds(100));
  if (!proc_.running()) {
    return Errorf(ErrorCode::kUnavailable, "terwayd exited; its log:\n{}", proc_.Log());
  }
  if (!ok) {
    return Errorf(ErrorCode::kTimeout, "terwayd not ready ({}); its log:\n{}", last, proc_.Log());
  }
  return Ok();
}

long TerwaydNode::RssKib() {
  std::ifstream in("/proc/" + std::to_string(proc_.pid()) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

Result<std::string> TerwaydNode::Metrics() {
  std::string port = ReadFile(log_ + ".port");
  if (port.empty()) return Errorf(ErrorCode::kUnavailable, "terwayd wrote no metrics port");
  while (!port.empty() && (port.back() == '\n')) port.pop_back();
  auto r = RunCommand({"/usr/bin/curl", "-sf", "http://127.0.0.1:" + port + "/metrics"}, netns_,
                      std::chrono::seconds(20));
  if (r.exit_code != 0) {
    return Errorf(ErrorCode::kUnavailable, "curl /metrics failed ({}): {}", r.exit_code, r.output);
  }
  return r.output;
}

TerwaydNode::~TerwaydNode() { proc_.Stop(); }

}  // namespace terway::testing
