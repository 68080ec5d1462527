#include "tools/lab/cluster/lab_state.h"

#include <unistd.h>

#include <fmt/format.h>

namespace terway::lab {

using nlohmann::json;

NodeRecord* LabState::FindNode(const std::string& selector) {
  for (auto& n : nodes) {
    if (n.name == selector || n.instance_id == selector || n.name == "node" + selector) return &n;
  }
  return nullptr;
}

PodRecord* LabState::FindPod(const std::string& ns, const std::string& name) {
  for (auto& p : pods) {
    if (p.ns == ns && p.name == name) return &p;
  }
  return nullptr;
}

void LabState::RemovePod(const std::string& ns, const std::string& name) {
  std::erase_if(pods, [&](const PodRecord& p) { return p.ns == ns && p.name == name; });
}

std::string LabState::NodeNames() const {
  std::string s;
  for (const auto& n : nodes) s += (s.empty() ? "" : ", ") + n.name;
  return s.empty() ? "(none)" : s;
}

namespace {

json DaemonToJson(const DaemonId& d) { return {{"pid", d.pid}, {"start_time", d.start_time}}; }

DaemonId DaemonFromJson(const json& j) {
  DaemonId d;
  if (j.is_object()) {
    d.pid = j.value("pid", 0);
    d.start_time = j.value("start_time", 0LL);
  }
  return d;
}

}  // namespace

json LabStateToJson(const LabState& s) {
  json nodes = json::array();
  for (const auto& n : s.nodes) {
    nodes.push_back({{"name", n.name}, {"instance_id", n.instance_id},
                     {"instance_type", n.instance_type}, {"netns", n.netns}, {"dir", n.dir},
                     {"socket", n.socket}, {"state_db", n.state_db}, {"eni_conf", n.eni_conf},
                     {"conflist", n.conflist}, {"log", n.log}, {"max_pods", n.max_pods},
                     {"eni_mode", n.eni_mode}, {"labels", n.labels},
                     {"exclusive_by_label", n.exclusive_by_label},
                     {"eniip_virtual_type", n.eniip_virtual_type}, {"bpffs", n.bpffs},
                     {"terwayd", DaemonToJson(n.terwayd)},
                     {"kubeconfig", n.kubeconfig}});
  }
  json hosts = json::array();
  for (const auto& h : s.hosts) {
    hosts.push_back(
        {{"name", h.name}, {"instance_id", h.instance_id}, {"netns", h.netns}, {"ip", h.ip}, {"ipv6", h.ipv6}});
  }
  json pods = json::array();
  for (const auto& p : s.pods) {
    pods.push_back({{"namespace", p.ns}, {"name", p.name}, {"node", p.node},
                    {"container_id", p.container_id}, {"netns", p.netns}, {"ifname", p.ifname},
                    {"cni_version", p.cni_version}, {"ip", p.ip}, {"labels", p.labels},
                    {"annotations", p.annotations}, {"result", p.result}});
  }
  return {{"version", 1},
          {"world", s.world},
          {"phase", s.phase},
          {"cni_timeout_seconds", s.cni_timeout_seconds},
          {"vswitch", s.vswitch},
          {"vswitch_cidr", s.vswitch_cidr},
          {"ip_stack", s.ip_stack},
          {"vpc_ipv6_cidr", s.vpc_ipv6_cidr},
          {"vswitch_ipv6_cidr", s.vswitch_ipv6_cidr},
          {"zone", s.zone},
          {"access_key", s.access_key},
          {"operator_eni_conf", s.operator_eni_conf},
          {"eniip_virtual_type", s.eniip_virtual_type},
          {"access_secret", s.access_secret},
          {"vpcsim", {{"state", s.vpcsim_state}, {"log", s.vpcsim_log}, {"port", s.vpcsim_port},
                      {"process", DaemonToJson(s.vpcsim)}}},
          {"control_plane", {{"log", s.control_plane_log}, {"kubeconfig", s.kubeconfig},
                             {"process", DaemonToJson(s.control_plane)}}},
          {"nodes", nodes},
          {"hosts", hosts},
          {"pods", pods}};
}

Result<LabState> LabStateFromJson(const json& j) {
  // nlohmann throws on type mismatches: caught here, at the module's edge.
  try {
    if (!j.is_object() || j.value("version", 0) != 1) {
      return Errorf(ErrorCode::kInvalidArgument, "not a version-1 lab state");
    }
    LabState s;
    s.world = j.at("world").get<std::string>();
    s.phase = j.value("phase", "");
    s.cni_timeout_seconds = j.value("cni_timeout_seconds", 120);
    s.vswitch = j.value("vswitch", "");
    s.vswitch_cidr = j.value("vswitch_cidr", "");
    // A lab.json from before --ip-stack: IPv4 only.
    s.ip_stack = j.value("ip_stack", "ipv4");
    s.vpc_ipv6_cidr = j.value("vpc_ipv6_cidr", "");
    s.vswitch_ipv6_cidr = j.value("vswitch_ipv6_cidr", "");
    s.zone = j.value("zone", "");
    s.access_key = j.value("access_key", "");
    s.operator_eni_conf = j.value("operator_eni_conf", "");
    s.eniip_virtual_type = j.value("eniip_virtual_type", "veth");
    s.access_secret = j.value("access_secret", "");
    if (j.contains("vpcsim")) {
      const json& v = j.at("vpcsim");
      s.vpcsim_state = v.value("state", "");
      s.vpcsim_log = v.value("log", "");
      s.vpcsim_port = v.value("port", 0);
      s.vpcsim = DaemonFromJson(v.value("process", json::object()));
    }
    if (j.contains("control_plane")) {
      const json& v = j.at("control_plane");
      s.control_plane_log = v.value("log", "");
      s.kubeconfig = v.value("kubeconfig", "");
      s.control_plane = DaemonFromJson(v.value("process", json::object()));
    }
    for (const auto& n : j.value("nodes", json::array())) {
      NodeRecord r;
      r.name = n.at("name").get<std::string>();
      r.instance_id = n.at("instance_id").get<std::string>();
      r.instance_type = n.value("instance_type", "");
      r.netns = n.value("netns", "");
      r.dir = n.value("dir", "");
      r.socket = n.value("socket", "");
      r.state_db = n.value("state_db", "");
      r.eni_conf = n.value("eni_conf", "");
      r.conflist = n.value("conflist", "");
      r.log = n.value("log", "");
      r.max_pods = n.value("max_pods", 0);
      r.eni_mode = n.value("eni_mode", "shared");
      r.labels = n.value("labels", std::map<std::string, std::string>{});
      r.exclusive_by_label = n.value("exclusive_by_label", false);
      r.eniip_virtual_type = n.value("eniip_virtual_type", "veth");
      r.bpffs = n.value("bpffs", "");
      r.terwayd = DaemonFromJson(n.value("terwayd", json::object()));
      r.kubeconfig = n.value("kubeconfig", "");
      s.nodes.push_back(std::move(r));
    }
    for (const auto& h : j.value("hosts", json::array())) {
      s.hosts.push_back({h.at("name").get<std::string>(), h.at("instance_id").get<std::string>(),
                         h.value("netns", ""), h.value("ip", ""), h.value("ipv6", "")});
    }
    for (const auto& p : j.value("pods", json::array())) {
      PodRecord r;
      r.ns = p.at("namespace").get<std::string>();
      r.name = p.at("name").get<std::string>();
      r.node = p.at("node").get<std::string>();
      r.container_id = p.at("container_id").get<std::string>();
      r.netns = p.at("netns").get<std::string>();
      r.ifname = p.value("ifname", "eth0");
      r.cni_version = p.value("cni_version", "1.0.0");
      r.ip = p.value("ip", "");
      r.labels = p.value("labels", std::map<std::string, std::string>{});
      r.annotations = p.value("annotations", std::map<std::string, std::string>{});
      r.result = p.value("result", json());
      s.pods.push_back(std::move(r));
    }
    return s;
  } catch (const std::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "malformed lab state: {}", e.what());
  }
}

std::string LabStatePath(const std::string& lab_dir) { return lab_dir + "/lab.json"; }

Error NoLabError(const std::string& lab_dir) {
  return Errorf(ErrorCode::kNotFound,
                "no lab at {} (no {}); start one with `terway-lab --lab {} up --nodes 2`", lab_dir,
                LabStatePath(lab_dir), lab_dir);
}

Result<LabState> LoadLabState(const std::string& lab_dir) {
  std::string path = LabStatePath(lab_dir);
  if (access(path.c_str(), F_OK) != 0) return NoLabError(lab_dir);
  json j = json::parse(ReadTextFile(path), nullptr, false);
  if (j.is_discarded()) {
    return Errorf(ErrorCode::kInvalidArgument,
                  "lab state {} is not JSON; remove the lab by hand (`ip netns list`, {})", path,
                  lab_dir);
  }
  auto s = LabStateFromJson(j);
  if (!s.ok()) return std::move(s).error().Wrap("reading " + path);
  s->dir = lab_dir;
  return s;
}

Status SaveLabState(const LabState& s) {
  return WriteTextFileAtomic(LabStatePath(s.dir), LabStateToJson(s).dump(2) + "\n");
}

Result<FileLock> AcquireLabLock(const std::string& lab_dir) { return FileLock::Acquire(lab_dir + "/lab.lock"); }

Result<FileLock> AcquireLifecycleLock(const std::string& lab_dir) {
  return FileLock::Acquire(lab_dir + "/lifecycle.lock");
}

Status UpdateLabState(const std::string& lab_dir, const std::function<Status(LabState&)>& change) {
  TERWAY_ASSIGN_OR_RETURN(auto lock, AcquireLabLock(lab_dir));
  TERWAY_ASSIGN_OR_RETURN(auto s, LoadLabState(lab_dir));
  TERWAY_TRY(change(s));
  return SaveLabState(s);
}

Status StoreLabState(const LabState& s) {
  TERWAY_ASSIGN_OR_RETURN(auto lock, AcquireLabLock(s.dir));
  return SaveLabState(s);
}

namespace {
std::string Sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    out += ok ? c : '_';
  }
  return out;
}
}  // namespace

std::string PodContainerId(const std::string& world, const std::string& ns,
                           const std::string& name) {
  return Sanitize(fmt::format("lab-{}-{}-{}", world, ns, name));
}

std::string PodNetnsName(const std::string& world, const std::string& ns,
                         const std::string& name) {
  return Sanitize(fmt::format("{}-pod-{}-{}", world, ns, name));
}

}  // namespace terway::lab
