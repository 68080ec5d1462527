#include "tools/lab/cluster/lab.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cni/daemon_client.h"
#include "config/node_mode.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "tools/lab/cluster/kubelet.h"
#include "tools/lab/cluster/lab_bpffs.h"
#include "tools/lab/cluster/lab_files.h"
#include "netlink/netns.h"

namespace terway::lab {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRegion = "cn-hangzhou";
constexpr const char* kZone = "cn-hangzhou-h";
constexpr const char* kVswitchCidr = "198.18.0.0/24";
// `--ip-stack dual`: the VPC's IPv6 block (a /56 inside fd00::/8, as vpcsim
// asks: unique local, never routed anywhere real) and the vSwitch's /64 of it.
constexpr const char* kVpcIpv6Cidr = "fd00:1ab::/56";
constexpr const char* kVswitchIpv6Cidr = "fd00:1ab:0:1::/64";

bool Executable(const std::string& p) { return access(p.c_str(), X_OK) == 0; }

// Named namespaces of this world (its instances and its pods).
std::vector<std::string> WorldNetns(const std::string& world) {
  std::vector<std::string> out;
  if (world.empty()) return out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/var/run/netns", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(world + "-", 0) == 0) out.push_back(name);
  }
  return out;
}

// One instance of the world file. Dual stack: the instance gets an IPv6 on
// its primary ENI (eth0), as RunInstances does with Ipv6AddressCount 1, so
// nodes and VPC hosts have IPv6 of their own.
std::string WorldInstanceYaml(const std::string& id, const std::string& type, const std::string& vswitch,
                              bool dual) {
  return fmt::format("  - id: {}\n    instance_type: {}\n    vswitch: {}\n{}", id, type, vswitch,
                     dual ? "    ipv6_address_count: 1\n" : "");
}

// The address of family `inet` or `inet6` that vpcsim configured on a VPC
// host's eth0 (for IPv6 the global one, not the link-local).
Result<std::string> HostAddress(const HostRecord& h, const std::string& family) {
  const bool v6 = family == "inet6";
  auto r = RunCommand({"/usr/sbin/ip", v6 ? "-6" : "-4", "-o", "addr", "show", "dev", "eth0", "scope", "global"},
                      h.netns);
  if (!r.ok()) return std::move(r).error().Wrap("reading the addresses of VPC host " + h.name);
  auto pos = r->out.find(family + " ");
  if (pos == std::string::npos) {
    return Errorf(ErrorCode::kInternal, "VPC host {} ({}) has no {} address on eth0 (vpcsim configures its primary "
                  "ENI's addresses there); `ip addr` says: {}",
                  h.name, h.netns, v6 ? "global IPv6" : "IPv4", r->out + r->err);
  }
  std::string ip = r->out.substr(pos + family.size() + 1);
  return ip.substr(0, ip.find('/'));
}

std::string GenerateWorldName() {
  unsigned v = static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr));
  return fmt::format("lab{:05x}", v & 0xfffff);
}

}  // namespace

Result<LabBinaries> FindLabBinaries() {
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("TERWAY_LAB_BIN_DIR"); d && *d) dirs.push_back(d);
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(self.parent_path().parent_path().string());  // build tree: cmd/<name>/<name>
    dirs.push_back(self.parent_path().string());                // install dir
  }
  auto find = [&](const std::string& name) -> Result<std::string> {
    std::string looked;
    for (const auto& d : dirs) {
      for (const std::string& p : {d + "/" + name + "/" + name, d + "/cmd/" + name + "/" + name,
                                   d + "/" + name}) {
        if (Executable(p) && !fs::is_directory(p)) return p;
        looked += "\n  " + p;
      }
    }
    return Errorf(ErrorCode::kNotFound,
                  "cannot find the {} binary; looked at:{}\nbuild it (cmake --build <build dir> "
                  "--target {}) or set TERWAY_LAB_BIN_DIR",
                  name, looked, name);
  };
  LabBinaries b;
  TERWAY_ASSIGN_OR_RETURN(b.vpcsim, find("vpcsim"));
  TERWAY_ASSIGN_OR_RETURN(b.terwayd, find("terwayd"));
  TERWAY_ASSIGN_OR_RETURN(b.terway, find("terway"));
  TERWAY_ASSIGN_OR_RETURN(b.terway_cli, find("terway-cli"));
  return b;
}

Error PodNotFound(const PodRef& ref) {
  return Errorf(ErrorCode::kNotFound, "pod {} is not in the lab; `terway-lab status` lists the pods",
                ref.ToString());
}

std::string DescribeCniFailure(const CommandOutput& o) {
  if (o.timed_out) return "the plugin did not finish within the lab's CNI timeout and was killed";
  if (o.cancelled) return "the plugin was stopped: the control plane is shutting down";
  json j = json::parse(o.out, nullptr, false);
  if (j.is_object() && j.contains("code")) {
    std::string s = fmt::format("CNI error {}: {}", j.value("code", 0), j.value("msg", ""));
    std::string details = j.value("details", "");
    if (!details.empty()) s += " (" + details + ")";
    return s;
  }
  std::string raw = TrimTrailing(o.out + o.err);
  return fmt::format("exit {}: {}", o.exit_code, raw.empty() ? "(no output)" : raw);
}

// ---- up -------------------------------------------------------------------

Status Lab::Up(const std::string& dir, const UpArgs& args) {
  if (access(LabStatePath(dir).c_str(), F_OK) == 0) {
    auto old = LoadLabState(dir);
    return Errorf(ErrorCode::kAlreadyExists,
                  "a lab is already up in {} (world {}); tear it down first with "
                  "`terway-lab --lab {} down`, or pass another --lab",
                  dir, old.ok() ? old->world : "?", dir);
  }
  // Checked before anything is created: a bad flag starts nothing.
  for (const auto& [node, type] : args.node_eniip_virtual_types) {
    bool known = false;
    for (int i = 1; i <= args.nodes; i++) known = known || node == fmt::format("node{}", i);
    if (!known) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "up --node-eniip-virtual-type {}={}: no such node (node1..node{}); nothing was started", node,
                    type, args.nodes);
    }
  }
  LabState s;
  s.dir = dir;
  s.eniip_virtual_type = args.eniip_virtual_type;
  s.ip_stack = args.ip_stack;
  if (s.ip_stack == "dual") {
    s.vpc_ipv6_cidr = kVpcIpv6Cidr;
    s.vswitch_ipv6_cidr = kVswitchIpv6Cidr;
  }
  s.world = args.name.empty() ? GenerateWorldName() : args.name;
  TERWAY_TRY(ValidateWorldName(s.world));
  if (auto used = WorldNetns(s.world); !used.empty()) {
    return Errorf(ErrorCode::kAlreadyExists,
                  "world name {} is in use: namespace {} exists; pick another --name or tear "
                  "down the lab that owns it",
                  s.world, used.front());
  }
  TERWAY_TRY_CTX(MakePrivateDirs(dir + "/nodes"), "creating the lab directory");
  // For the whole of up: a concurrent `down` waits for it, then removes all.
  TERWAY_ASSIGN_OR_RETURN(auto lifecycle, AcquireLifecycleLock(dir));
  if (access(LabStatePath(dir).c_str(), F_OK) == 0) {
    return Errorf(ErrorCode::kAlreadyExists, "another `terway-lab up` started a lab in {} meanwhile", dir);
  }
  s.phase = "starting";
  s.cni_timeout_seconds = args.cni_timeout_seconds;
  s.zone = kZone;
  s.vswitch = "vsw-" + s.world + "a";
  s.vswitch_cidr = kVswitchCidr;
  s.access_key = "LTAIlab" + s.world;
  s.access_secret = "lab-secret-" + s.world;
  s.vpcsim_state = dir + "/vpcsim";
  s.vpcsim_log = dir + "/vpcsim.log";
  // An operator's eni_conf and node labels are checked before anything starts.
  if (!args.eni_config_file.empty()) {
    std::string text = ReadTextFile(args.eni_config_file);
    json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (text.empty() || j.is_discarded() || !j.is_object()) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "up --eni-config {}: not a readable eni_conf JSON object (the eni-config ConfigMap's eni_conf "
                    "key, e.g. `kubectl -n kube-system get cm eni-config -o jsonpath='{{.data.eni_conf}}'`)",
                    args.eni_config_file);
    }
    // The world's IPv6 follows --ip-stack: an eni_conf asking for another
    // stack would run terwayd against a world that cannot serve it.
    if (j.contains("ip_stack") && !(j["ip_stack"].is_string() && j["ip_stack"].get<std::string>() == args.ip_stack)) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "up --eni-config {}: its ip_stack is {} but the lab's is {}; pass `--ip-stack {}` (the lab "
                    "gives the world IPv6 only with --ip-stack dual) or change the file; nothing was started",
                    args.eni_config_file, j["ip_stack"].dump(), args.ip_stack,
                    j["ip_stack"].is_string() ? j["ip_stack"].get<std::string>() : "ipv4|dual");
    }
    s.operator_eni_conf = text;
  }
  for (const auto& [node, labels] : args.node_labels) {
    bool known = false;
    for (int i = 1; i <= args.nodes; i++) known = known || node == fmt::format("node{}", i);
    if (!known) {
      return Errorf(ErrorCode::kInvalidArgument, "up --node-label {}: no such node (node1..node{})", node, args.nodes);
    }
  }
  TERWAY_TRY(StoreLabState(s));
  Status st = StartWorld(s, args);
  if (st.ok()) st = StartNodes(s, args);
  if (!st.ok()) {
    err_ << "terway-lab: up failed; tearing down what it started\n";
    (void)StoreLabState(s);
    (void)TearDown(dir);
    return st;
  }
  s.phase = "up";
  TERWAY_TRY(StoreLabState(s));
  out_ << fmt::format("lab {} is up in {}: world {}, {} node(s), {} VPC host(s), IP stack {}\n", s.world, dir,
                      s.world, s.nodes.size(), s.hosts.size(), s.ip_stack);
  out_ << fmt::format("  kubectl: export KUBECONFIG={}\n", s.kubeconfig);
  for (const auto& n : s.nodes) {
    out_ << fmt::format("  {}  {}  {}  max pods {}  terwayd pid {}  datapath {}\n", n.name, n.instance_id,
                        n.instance_type, n.max_pods, n.terwayd.pid, DescribeNodeDatapath(n));
  }
  for (const auto& h : s.hosts) {
    out_ << fmt::format("  {}  {}  {}{}  (VPC host, no terwayd)\n", h.name, h.instance_id, h.ip,
                        h.ipv6.empty() ? "" : "  " + h.ipv6);
  }
  return Ok();
}

Status Lab::StartWorld(LabState& s, const UpArgs& args) {
  // The world: one VPC, one vSwitch, the nodes and the plain VPC hosts as
  // ECS instances (vpcsim gives each a namespace whose eth0 is its primary ENI).
  // With --ip-stack dual the VPC and its vSwitch carry IPv6 blocks.
  const bool dual = !s.vpc_ipv6_cidr.empty();
  std::string yaml = fmt::format(R"(name: {w}
region: {region}
zones: [{zone}]
vpc:
  id: vpc-{w}
  cidr: {vpc}
{vpc6}  vswitches:
    - id: {vsw}
      zone: {zone}
      cidr: {cidr}
{vsw6}instances:
)", fmt::arg("w", s.world), fmt::arg("region", kRegion), fmt::arg("zone", kZone),
                                 fmt::arg("vpc", kLabVpcCidr), fmt::arg("vsw", s.vswitch),
                                 fmt::arg("cidr", s.vswitch_cidr),
                                 fmt::arg("vpc6", dual ? fmt::format("  ipv6_cidr: \"{}\"\n", s.vpc_ipv6_cidr) : ""),
                                 fmt::arg("vsw6", dual ? fmt::format("      ipv6_cidr: \"{}\"\n", s.vswitch_ipv6_cidr)
                                                       : ""));
  for (int i = 0; i < args.nodes; i++) {
    NodeRecord n;
    n.name = fmt::format("node{}", i + 1);
    n.instance_id = fmt::format("i-{}n{}", s.world, i + 1);
    n.instance_type = InstanceTypeOfNode(args.instance_types, i);
    n.eni_mode = EniModeOfNode(args.eni_modes, i);
    if (auto l = args.node_labels.find(n.name); l != args.node_labels.end()) {
      n.labels = l->second;
      // Upstream's exclusive-ENI label: terwayd reads it from the node object.
      if (config::LabelsSelectExclusiveEni(n.labels)) {
        n.eni_mode = "exclusive";
        n.exclusive_by_label = true;
      }
    }
    n.netns = s.world + "-" + n.instance_id;
    n.dir = s.dir + "/nodes/" + n.name;
    n.socket = n.dir + "/eni.socket";
    n.state_db = n.dir + "/terwayd.db";
    n.eni_conf = n.dir + "/eni.json";
    n.conflist = n.dir + "/net.d/10-terway.conflist";
    n.log = n.dir + "/terwayd.log";
    n.eniip_virtual_type = VirtualTypeOfNode(args, n.name);
    n.bpffs = n.dir + "/bpffs";
    yaml += WorldInstanceYaml(n.instance_id, n.instance_type, s.vswitch, dual);
    s.nodes.push_back(std::move(n));
  }
  for (int i = 0; i < args.vpc_hosts; i++) {
    HostRecord h;
    h.name = fmt::format("host{}", i + 1);
    h.instance_id = fmt::format("i-{}h{}", s.world, i + 1);
    h.netns = s.world + "-" + h.instance_id;
    yaml += WorldInstanceYaml(h.instance_id, kDefaultInstanceType, s.vswitch, dual);
    s.hosts.push_back(std::move(h));
  }
  yaml += fmt::format(R"(access_keys:
  - id: {}
    secret: {}
ram_role: TerwayRole
security_group: sg-{}
sts_ttl_seconds: 3600
metadata_hardened: false
)", s.access_key, s.access_secret, s.world);
  TERWAY_TRY(WriteTextFileAtomic(s.dir + "/world.yaml", yaml));

  std::string port_file = s.dir + "/vpcsim.port";
  unlink(port_file.c_str());
  out_ << fmt::format("starting vpcsim (world {}, log {})\n", s.world, s.vpcsim_log);
  TERWAY_ASSIGN_OR_RETURN_CTX(
      s.vpcsim,
      StartDaemon({{bins_.vpcsim, "serve", "--world", s.dir + "/world.yaml", "--state",
                    s.vpcsim_state, "--listen", "127.0.0.1:0", "--port-file", port_file,
                    "--fabric", "linux"},
                   "",
                   s.vpcsim_log}),
      "starting vpcsim");
  TERWAY_TRY(StoreLabState(s));
  bool up = WaitUntil(
      [&] { return !TrimTrailing(ReadTextFile(port_file)).empty() || !DaemonAlive(s.vpcsim); },
      std::chrono::seconds(90));
  if (!DaemonAlive(s.vpcsim) || !up) {
    return Errorf(ErrorCode::kUnavailable,
                  "vpcsim {} (the emulated cloud); its log {}:\n{}",
                  up ? "exited while starting" : "did not bind its port within 90 s", s.vpcsim_log,
                  QuoteLogTail(s.vpcsim_log));
  }
  s.vpcsim_port = std::atoi(TrimTrailing(ReadTextFile(port_file)).c_str());
  TERWAY_TRY(StoreLabState(s));
  for (auto& h : s.hosts) {
    TERWAY_ASSIGN_OR_RETURN(h.ip, HostAddress(h, "inet"));
    if (dual) {
      TERWAY_ASSIGN_OR_RETURN(h.ipv6, HostAddress(h, "inet6"));
    }
  }
  return StoreLabState(s);
}

Result<int> Lab::MaxPods(const LabState& s, const std::string& instance_type, const std::string& eni_mode) {
  TERWAY_ASSIGN_OR_RETURN(
      auto r, RunCommand({bins_.terway_cli, "maxpods", "--instance-type", instance_type, "--mode",
                           eni_mode, "--endpoint", fmt::format("http://127.0.0.1:{}", s.vpcsim_port),
                           "--region", kRegion, "--access-key", s.access_key, "--access-secret",
                           s.access_secret}));
  if (r.exit_code != 0) {
    return Errorf(ErrorCode::kInvalidArgument, "max pods of {} (DescribeInstanceTypes): {}",
                  instance_type, TrimTrailing(r.out + r.err));
  }
  return std::atoi(r.out.c_str());
}

std::string DescribeNodeDatapath(const NodeRecord& n) {
  if (n.eni_mode == "exclusive") return "exclusive ENI (eniip_virtual_type applies to shared ENI only)";
  if (IsEbpfVirtualType(n.eniip_virtual_type)) {
    return fmt::format("eBPF (eniip_virtual_type {}; maps pinned under {}/terway)", n.eniip_virtual_type, n.bpffs);
  }
  return "veth + policy routing (eniip_virtual_type veth)";
}

json LabCniConf(const std::string& eniip_virtual_type) {
  json conf = {{"cniVersion", "0.4.0"}, {"name", "terway"}, {"type", "terway"}, {"capabilities", {{"bandwidth", true}}}};
  if (eniip_virtual_type != "veth") conf["eniip_virtual_type"] = eniip_virtual_type;
  return conf;
}

json LabEniConf(const LabState& s) {
  if (!s.operator_eni_conf.empty()) {
    // The operator's, as given; only the API endpoints, which on Alibaba
    // Cloud follow from the region, point at the emulator when absent.
    // Empty credentials mean the instance's RAM role, which vpcsim serves.
    json j = json::parse(s.operator_eni_conf, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) j = json::object();  // checked at up
    for (const char* key : {"ecs_endpoint", "vpc_endpoint"}) {
      if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty()) j[key] = "http://100.100.0.1";
    }
    // Checked at up to agree with --ip-stack; dual is written when absent.
    if (s.ip_stack != "ipv4" && !j.contains("ip_stack")) j["ip_stack"] = s.ip_stack;
    return j;
  }
  // As on ECS: the API and the metadata service are reached through the VPC
  // from inside the instance, and credentials come from its RAM role.
  json conf = {{"version", "1"},
               {"max_pool_size", 5},
               {"min_pool_size", 0},
               {"vswitches", {{s.zone, {s.vswitch}}}},
               {"security_group", "sg-" + s.world},
               {"ecs_endpoint", "http://100.100.0.1"},
               {"vpc_endpoint", "http://100.100.0.1"},
               {"credential_source", "ram_role"},
               {"ip_pool_sync_period", "30s"},
               {"idle_ip_reclaim_interval", "5s"}};
  // Upstream's key and spelling; IPv4 only is upstream's default, so an
  // IPv4 lab leaves it out as upstream's shipped eni-config does.
  if (s.ip_stack != "ipv4") conf["ip_stack"] = s.ip_stack;
  return conf;
}

Status Lab::StartTerwayd(const LabState& s, NodeRecord& n) {
  TERWAY_TRY(MakePrivateDirs(n.dir + "/net.d"));
  // Kept for reference and for terwayd without the API; with --kubeconfig
  // terwayd reads the ConfigMap eni-config instead (same content).
  json eni_conf = LabEniConf(s);
  if (n.eni_mode == "exclusive" && !n.exclusive_by_label) eni_conf["eni_mode"] = "exclusive";
  TERWAY_TRY(WriteTextFileAtomic(n.eni_conf, eni_conf.dump(2) + "\n"));
  // What a runtime reads from /etc/cni/net.d.
  // Upstream's init container turns eni-config's 10-terway.conf into
  // /etc/cni/net.d/10-terway.conflist; here each node's conflist carries its
  // eniip_virtual_type (the cluster's, or the node's own).
  json plugin = {{"type", "terway"}, {"daemon_socket", n.socket}, {"capabilities", {{"bandwidth", true}}}};
  if (n.eniip_virtual_type != "veth") plugin["eniip_virtual_type"] = n.eniip_virtual_type;
  json conflist = {{"cniVersion", "1.0.0"}, {"name", "terway"}, {"plugins", json::array({plugin})}};
  TERWAY_TRY(WriteTextFileAtomic(n.conflist, conflist.dump(2) + "\n"));
  std::vector<std::string> argv = {bins_.terwayd, "--config", n.eni_conf, "--socket", n.socket, "--state",
                                   n.state_db, "--metrics-listen", "127.0.0.1:0", "--metrics-port-file",
                                   n.dir + "/metrics.port", "--datapath", "auto", "--log-level", "info"};
  if (!n.bpffs.empty()) {
    // Every node its own bpffs (see lab_bpffs.h); a veth node's terwayd
    // pins nothing, so only eBPF nodes get a mount.
    if (IsEbpfVirtualType(n.eniip_virtual_type)) {
      TERWAY_TRY_CTX(EnsureBpffs(n.bpffs), fmt::format("node {} ({})", n.name, n.eniip_virtual_type));
    }
    argv.insert(argv.end(), {"--bpffs", n.bpffs});
  }
  if (!n.kubeconfig.empty()) {
    argv.insert(argv.end(), {"--kubeconfig", n.kubeconfig, "--node-name", n.name});
  }
  unlink((n.dir + "/metrics.port").c_str());
  // umask 077: what terwayd creates in the node's directory (its state
  // database, the socket, the metrics port) is the lab's, owner-only too.
  TERWAY_ASSIGN_OR_RETURN_CTX(n.terwayd, StartDaemon({argv, n.netns, n.log, mode_t{077}}),
                              fmt::format("starting terwayd on {} (namespace {})", n.name, n.netns));
  return Ok();
}

Status Lab::StartControlPlane(LabState& s) {
  s.control_plane_log = s.dir + "/control-plane.log";
  const std::string ready = s.dir + "/control-plane.ready";
  unlink(ready.c_str());
  out_ << fmt::format("starting the control plane (API stand-in + kubelets, log {})\n", s.control_plane_log);
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return SysError("finding terway-lab's own binary (/proc/self/exe)");
  self[len] = '\0';
  TERWAY_ASSIGN_OR_RETURN_CTX(
      s.control_plane, StartDaemon({{self, "--lab", s.dir, "control-plane"}, "", s.control_plane_log}),
      "starting the control plane");
  TERWAY_TRY(StoreLabState(s));
  bool up = WaitUntil([&] { return access(ready.c_str(), F_OK) == 0 || !DaemonAlive(s.control_plane); },
                      std::chrono::seconds(60));
  if (!DaemonAlive(s.control_plane) || !up) {
    return Errorf(ErrorCode::kUnavailable, "the control plane {}; its log {}:\n{}",
                  up ? "exited while starting" : "was not ready within 60 s", s.control_plane_log,
                  QuoteLogTail(s.control_plane_log));
  }
  // The control plane wrote the kubeconfigs; record where they are.
  s.kubeconfig = s.dir + "/kubeconfig";
  for (auto& n : s.nodes) n.kubeconfig = n.dir + "/kubeconfig";
  return StoreLabState(s);
}

Status Lab::WaitTerwaydReady(const NodeRecord& n) {
  std::string last = "no answer yet";
  bool ready = WaitUntil(
      [&] {
        if (!DaemonAlive(n.terwayd)) return true;
        auto client = cni::MakeUnixDaemonClient(n.socket, std::chrono::seconds(2));
        cni::protocol::Request req;
        req.op = cni::protocol::Op::kStatus;
        auto r = client->Call(req);
        if (!r.ok()) {
          last = r.error().ToString();
          return false;
        }
        if (r->status && r->status->ready) return true;
        last = r->status ? r->status->message : "not ready";
        return false;
      },
      std::chrono::seconds(90), std::chrono::milliseconds(100));
  if (!DaemonAlive(n.terwayd)) {
    return Errorf(ErrorCode::kUnavailable, "terwayd on {} exited while starting; its log {}:\n{}",
                  n.name, n.log, QuoteLogTail(n.log));
  }
  if (!ready) {
    return Errorf(ErrorCode::kTimeout, "terwayd on {} not ready within 90 s ({}); its log {}:\n{}",
                  n.name, last, n.log, QuoteLogTail(n.log));
  }
  return Ok();
}

Status Lab::StartNodes(LabState& s, const UpArgs&) {
  std::map<std::string, int> max_pods;  // by "type/mode"
  for (auto& n : s.nodes) {
    if (!netlink::NetnsExists(n.netns)) {
      return Errorf(ErrorCode::kNotFound, "vpcsim made no namespace {} for node {}; its log {}:\n{}",
                    n.netns, n.name, s.vpcsim_log, QuoteLogTail(s.vpcsim_log));
    }
    const std::string key = n.instance_type + "/" + n.eni_mode;
    if (!max_pods.count(key)) {
      TERWAY_ASSIGN_OR_RETURN(max_pods[key], MaxPods(s, n.instance_type, n.eni_mode));
    }
    n.max_pods = max_pods[key];
    TERWAY_TRY(MakePrivateDirs(n.dir));
  }
  TERWAY_TRY(StoreLabState(s));
  // Node objects and eni-config exist before any terwayd asks for them.
  TERWAY_TRY(StartControlPlane(s));
  for (auto& n : s.nodes) {
    out_ << fmt::format("starting terwayd on {} ({}, {}, namespace {})\n", n.name, n.instance_id,
                        n.instance_type, n.netns);
    TERWAY_TRY(StartTerwayd(s, n));
    TERWAY_TRY(StoreLabState(s));
  }
  // The daemons start in parallel; each is waited for in turn.
  for (const auto& n : s.nodes) TERWAY_TRY(WaitTerwaydReady(n));
  return Ok();
}

// ---- down -----------------------------------------------------------------

Status Lab::Down(const std::string& dir) {
  if (access(dir.c_str(), F_OK) != 0) {
    out_ << fmt::format("no lab in {}: nothing to tear down\n", dir);
    return Ok();
  }
  // Waits for an `up` or `terwayd start` in progress: what they start is
  // recorded by the time they let go, so it is torn down too.
  auto lifecycle = AcquireLifecycleLock(dir);
  if (!lifecycle.ok()) {
    if (access(dir.c_str(), F_OK) != 0) {  // removed meanwhile, by the failed up we waited for
      out_ << fmt::format("no lab in {}: nothing to tear down\n", dir);
      return Ok();
    }
    return std::move(lifecycle).error();
  }
  if (access(LabStatePath(dir).c_str(), F_OK) != 0) {
    // Nothing was ever recorded: at most an empty directory from a failed up.
    std::error_code ec;
    for (const char* f : {"nodes", "lifecycle.lock", "lab.lock"}) fs::remove(dir + "/" + f, ec);
    fs::remove(dir, ec);
    out_ << fmt::format("no lab in {}: nothing to tear down\n", dir);
    return Ok();
  }
  return TearDown(dir);
}

Status Lab::TearDown(const std::string& dir) {
  std::vector<std::string> problems;
  auto note = [&](const std::string& what, const Status& st) {
    if (!st.ok()) {
      problems.push_back(what + ": " + st.error().ToString());
      err_ << "terway-lab: warning: " << problems.back() << "\n";
    }
  };
  // From now on no pod starts: the kubelets' ADD refuses unless the phase
  // is "up".
  LabState s;
  TERWAY_TRY(UpdateLabState(dir, [&](LabState& st) {
    st.phase = "stopping";
    s = st;
    return Ok();
  }));
  // The kubelets first; a plugin they run is stopped with them.
  note("stopping the control plane", StopDaemon(s.control_plane));
  // The pods as they are now that no kubelet is left, next, while terwayd
  // can still free their IPs and links.
  if (auto now = LoadLabState(dir); now.ok()) s = std::move(now).value();
  for (const auto& p : std::vector<PodRecord>(s.pods)) {
    NodeRecord* n = s.FindNode(p.node);
    if (n && DaemonAlive(n->terwayd)) {
      auto r = RunPlugin(*n, p, "DEL", s.cni_timeout());
      if (!r.ok()) {
        note("DEL of pod " + p.Key(), std::move(r).error());
      } else if (r->exit_code != 0) {
        note("DEL of pod " + p.Key(), Error(ErrorCode::kUnavailable, DescribeCniFailure(*r)));
      }
    }
    note("removing the namespace of pod " + p.Key(), netlink::DeleteNamedNetns(p.netns));
    (void)UpdateLabState(dir, [&](LabState& st) {
      st.RemovePod(p.ns, p.name);
      return Ok();
    });
  }
  for (auto& n : s.nodes) note("stopping terwayd on " + n.name, StopDaemon(n.terwayd));
  // The nodes' bpf filesystems (and with them every pin), whoever mounted
  // them, before the directory that holds them is removed.
  note("unmounting the nodes' bpf filesystems", UnmountBpffsUnder(s.dir));
  note("stopping vpcsim", StopDaemon(s.vpcsim));
  // destroy removes the fabric (namespaces, links, nft tables) and the state;
  // it refuses while a vpcsim serves the state, which is why vpcsim stops first.
  if (fs::exists(s.vpcsim_state)) {
    auto r = RunCommand({bins_.vpcsim, "destroy", "--state", s.vpcsim_state});
    if (!r.ok()) {
      note("vpcsim destroy", std::move(r).error());
    } else if (r->exit_code != 0) {
      note("vpcsim destroy", Error(ErrorCode::kInternal, TrimTrailing(r->out + r->err)));
    }
  }
  // Whatever namespace of the world is left (a destroy that failed half-way,
  // a pod whose ADD was running when the control plane stopped).
  for (const auto& ns : WorldNetns(s.world)) note("removing namespace " + ns, netlink::DeleteNamedNetns(ns));
  // Only what the lab itself wrote: --lab may point at a directory holding
  // other files too. The lock files go last, with the lifecycle lock still
  // held (a waiter re-opens and finds the directory gone).
  std::error_code ec;
  for (const char* f : kLabFileNames) fs::remove_all(s.dir + "/" + f, ec);
  fs::remove(s.dir, ec);  // only when empty
  // The default's parent (/run/terway-lab) too, when no other lab is left in it.
  if (fs::path(s.dir).parent_path().filename() == "terway-lab") {
    fs::remove(fs::path(s.dir).parent_path(), ec);
  }
  if (!problems.empty()) {
    return Errorf(ErrorCode::kInternal, "down of lab {} finished with {} problem(s); first: {}",
                  s.world, problems.size(), problems.front());
  }
  out_ << fmt::format("lab {} is down: pods deleted, daemons stopped, world destroyed\n", s.world);
  return Ok();
}

}  // namespace terway::lab
