#include "tools/lab/cluster/lab_args.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include <sstream>

#include <fmt/format.h>

namespace terway::lab {

namespace {

Error Bad(std::string msg) {
  return Error(ErrorCode::kInvalidArgument, std::move(msg) + " (see `terway-lab --help`)");
}

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

bool IsLabelName(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  return alnum(s.front()) && alnum(s.back());
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

Result<int> ParseCount(const std::string& flag, const std::string& text, int min, int max) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || v < min || v > max) {
    return Bad(fmt::format("{} wants a number from {} to {}, got '{}'", flag, min, max, text));
  }
  return v;
}

// Walks the arguments of one subcommand: flags with a value, and positionals.
class ArgCursor {
 public:
  ArgCursor(const std::vector<std::string>& args, size_t pos) : args_(args), pos_(pos) {}
  bool done() const { return pos_ >= args_.size(); }
  const std::string& peek() const { return args_[pos_]; }
  std::string next() { return args_[pos_++]; }
  size_t pos() const { return pos_; }
  // For "--flag value" and "--flag=value".
  Result<std::string> Value(const std::string& flag) {
    const std::string& a = args_[pos_ - 1];
    if (a.size() > flag.size() && a[flag.size()] == '=') return a.substr(flag.size() + 1);
    if (done()) return Bad(fmt::format("{} needs a value", flag));
    return next();
  }

 private:
  const std::vector<std::string>& args_;
  size_t pos_;
};

bool IsFlag(const std::string& a, const std::string& flag) {
  return a == flag || a.rfind(flag + "=", 0) == 0;
}

Result<UpArgs> ParseUp(ArgCursor& c) {
  UpArgs up;
  bool have_nodes = false;
  while (!c.done()) {
    std::string a = c.next();
    if (IsFlag(a, "--nodes")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--nodes"));
      TERWAY_ASSIGN_OR_RETURN(up.nodes, ParseCount("--nodes", v, 1, 16));
      have_nodes = true;
    } else if (IsFlag(a, "--instance-type")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--instance-type"));
      TERWAY_ASSIGN_OR_RETURN(up.instance_types, ParseInstanceTypes(v));
    } else if (IsFlag(a, "--name")) {
      TERWAY_ASSIGN_OR_RETURN(up.name, c.Value("--name"));
      TERWAY_TRY(ValidateWorldName(up.name));
    } else if (IsFlag(a, "--vpc-hosts")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--vpc-hosts"));
      TERWAY_ASSIGN_OR_RETURN(up.vpc_hosts, ParseCount("--vpc-hosts", v, 0, 4));
    } else if (IsFlag(a, "--eni-mode")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--eni-mode"));
      up.eni_modes.clear();
      std::stringstream ss(v);
      for (std::string m; std::getline(ss, m, ',');) {
        if (m != "shared" && m != "exclusive") {
          return Bad(fmt::format("up --eni-mode: '{}' is not an ENI mode (shared or exclusive, one per node, "
                                 "comma-separated; the last repeats)",
                                 m));
        }
        up.eni_modes.push_back(m);
      }
      if (up.eni_modes.empty()) return Bad("up --eni-mode: give shared or exclusive");
    } else if (IsFlag(a, "--eni-config")) {
      TERWAY_ASSIGN_OR_RETURN(up.eni_config_file, c.Value("--eni-config"));
      if (up.eni_config_file.empty()) return Bad("up --eni-config: name an eni_conf JSON file");
    } else if (IsFlag(a, "--node-label")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--node-label"));
      auto colon = v.find(':');
      auto eq = v.find('=', colon == std::string::npos ? 0 : colon);
      if (colon == std::string::npos || colon == 0 || eq == std::string::npos || eq == colon + 1) {
        return Bad(fmt::format("up --node-label: '{}' is not NODE:KEY=VALUE (e.g. "
                               "node2:k8s.aliyun.com/exclusive-mode-eni-type=eniOnly)",
                               v));
      }
      up.node_labels[v.substr(0, colon)][v.substr(colon + 1, eq - colon - 1)] = v.substr(eq + 1);
    } else if (IsFlag(a, "--eniip-virtual-type")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--eniip-virtual-type"));
      TERWAY_ASSIGN_OR_RETURN(up.eniip_virtual_type, ParseEniipVirtualType("up --eniip-virtual-type", v));
    } else if (IsFlag(a, "--node-eniip-virtual-type")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--node-eniip-virtual-type"));
      auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Bad(fmt::format("up --node-eniip-virtual-type: '{}' is not NODE=VALUE (e.g. node2=datapathv2; "
                               "VALUE is veth, IPVlan or datapathv2)",
                               v));
      }
      TERWAY_ASSIGN_OR_RETURN(auto t, ParseEniipVirtualType("up --node-eniip-virtual-type " + v.substr(0, eq),
                                                            v.substr(eq + 1)));
      up.node_eniip_virtual_types[v.substr(0, eq)] = t;
    } else if (IsFlag(a, "--ip-stack")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--ip-stack"));
      TERWAY_ASSIGN_OR_RETURN(up.ip_stack, ParseIpStack("up --ip-stack", v));
    } else if (IsFlag(a, "--cni-timeout")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--cni-timeout"));
      TERWAY_ASSIGN_OR_RETURN(up.cni_timeout_seconds, ParseCount("--cni-timeout", v, 1, 600));
    } else {
      return Bad(fmt::format("up: unknown argument '{}'", a));
    }
  }
  if (!have_nodes) return Bad("up: give the number of nodes, e.g. `up --nodes 2`");
  return up;
}

Result<PodAddArgs> ParsePodAdd(ArgCursor& c) {
  PodAddArgs add;
  bool have_pod = false;
  while (!c.done()) {
    std::string a = c.next();
    if (IsFlag(a, "--node")) {
      TERWAY_ASSIGN_OR_RETURN(add.node, c.Value("--node"));
      if (add.node.empty()) return Bad("pod add: --node must name a node (node1, 1 or an instance id)");
    } else if (IsFlag(a, "--labels")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--labels"));
      TERWAY_ASSIGN_OR_RETURN(add.labels, ParseKeyValues(v, "--labels"));
    } else if (IsFlag(a, "--annotations")) {
      TERWAY_ASSIGN_OR_RETURN(auto v, c.Value("--annotations"));
      TERWAY_ASSIGN_OR_RETURN(add.annotations, ParseKeyValues(v, "--annotations"));
    } else if (IsFlag(a, "--cni-version")) {
      TERWAY_ASSIGN_OR_RETURN(add.cni_version, c.Value("--cni-version"));
      static const std::vector<std::string> kVersions = {"0.3.1", "0.4.0", "1.0.0", "1.1.0"};
      if (std::find(kVersions.begin(), kVersions.end(), add.cni_version) == kVersions.end()) {
        return Bad(fmt::format("--cni-version '{}' is not one terway speaks (0.3.1, 0.4.0, 1.0.0, 1.1.0)",
                               add.cni_version));
      }
    } else if (!a.empty() && a[0] == '-') {
      return Bad(fmt::format("pod add: unknown flag '{}'", a));
    } else if (!have_pod) {
      TERWAY_ASSIGN_OR_RETURN(add.pod, ParsePodRef(a));
      have_pod = true;
    } else {
      return Bad(fmt::format("pod add: unexpected argument '{}'", a));
    }
  }
  if (!have_pod) return Bad("pod add: name the pod as NAMESPACE/NAME");
  if (add.node.empty()) {
    return Bad(fmt::format("pod add {}: give the node, e.g. --node node1", add.pod.ToString()));
  }
  return add;
}

Result<PodRef> ParseOnePod(ArgCursor& c, const std::string& cmd) {
  if (c.done()) return Bad(cmd + ": name the pod as NAMESPACE/NAME");
  std::string a = c.next();
  TERWAY_ASSIGN_OR_RETURN(auto ref, ParsePodRef(a));
  if (!c.done()) return Bad(fmt::format("{}: unexpected argument '{}'", cmd, c.peek()));
  return ref;
}

}  // namespace

Status ValidateWorldName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 8 && name[0] >= 'a' && name[0] <= 'z';
  for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  if (!ok) {
    return Bad(fmt::format(
        "world name '{}' must be 1-8 characters of [a-z0-9] starting with a letter "
        "(it prefixes namespace and link names)",
        name));
  }
  return Ok();
}

Result<PodRef> ParsePodRef(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos || text.find('/', slash + 1) != std::string::npos) {
    return Bad(fmt::format("pod '{}' must be written NAMESPACE/NAME, e.g. default/web-1", text));
  }
  PodRef r{text.substr(0, slash), text.substr(slash + 1)};
  if (!IsDnsLabel(r.ns) || !IsDnsLabel(r.name)) {
    return Bad(fmt::format(
        "pod '{}': namespace and name must be lowercase DNS labels ([a-z0-9-], at most 63)", text));
  }
  return r;
}

Result<std::map<std::string, std::string>> ParseKeyValues(const std::string& text,
                                                          const std::string& what) {
  std::map<std::string, std::string> out;
  if (text.empty()) return out;
  for (const auto& item : Split(text, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos) {
      return Bad(fmt::format("{}: '{}' is not key=value", what, item));
    }
    std::string key = item.substr(0, eq);
    std::string value = item.substr(eq + 1);
    // A key is [prefix/]name, the prefix a DNS subdomain (k8s label keys).
    std::string name = key;
    if (auto slash = key.find('/'); slash != std::string::npos) {
      std::string prefix = key.substr(0, slash);
      name = key.substr(slash + 1);
      bool prefix_ok = !prefix.empty() && prefix.size() <= 253;
      for (const auto& part : Split(prefix, '.')) prefix_ok = prefix_ok && IsDnsLabel(part);
      if (!prefix_ok) return Bad(fmt::format("{}: key '{}' has a bad prefix '{}'", what, key, prefix));
    }
    if (!IsLabelName(name)) {
      return Bad(fmt::format("{}: key '{}' must be [prefix/]name with name of [A-Za-z0-9-_.]", what, key));
    }
    if (out.count(key)) return Bad(fmt::format("{}: key '{}' given twice", what, key));
    out[key] = value;
  }
  return out;
}

Result<std::vector<std::string>> ParseInstanceTypes(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& t : Split(text, ',')) {
    bool ok = t.rfind("ecs.", 0) == 0 && t.size() > 4;
    for (char c : t) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-');
    if (!ok) {
      return Bad(fmt::format("--instance-type: '{}' is not an instance type like ecs.g7.large", t));
    }
    out.push_back(t);
  }
  return out;
}

Result<std::string> ParseEniipVirtualType(const std::string& flag, const std::string& text) {
  std::string lower;
  for (char ch : text) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const char* v : {"veth", "IPVlan", "datapathv2"}) {
    std::string lv;
    for (const char* p = v; *p; ++p) lv += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    if (lower == lv) return std::string(v);
  }
  return Bad(fmt::format("{}: '{}' is not an eniip_virtual_type (veth, IPVlan or datapathv2, any case; "
                         "IPVlan and datapathv2 select the eBPF datapath)",
                         flag, text));
}

Result<std::string> ParseIpStack(const std::string& flag, const std::string& text) {
  // Upstream's eni_conf takes exactly these spellings; `ipv6` (IPv6 only)
  // is not offered until terwayd makes it real.
  if (text == "ipv4" || text == "dual") return text;
  return Bad(fmt::format("{}: '{}' is not an IP stack (ipv4 or dual, as eni_conf's ip_stack)", flag, text));
}

bool IsEbpfVirtualType(const std::string& canonical) { return canonical == "IPVlan" || canonical == "datapathv2"; }

std::string VirtualTypeOfNode(const UpArgs& up, const std::string& name) {
  auto it = up.node_eniip_virtual_types.find(name);
  return it != up.node_eniip_virtual_types.end() ? it->second : up.eniip_virtual_type;
}

std::string EniModeOfNode(const std::vector<std::string>& modes, int i) {
  if (modes.empty()) return "shared";
  return modes[std::min<size_t>(static_cast<size_t>(i), modes.size() - 1)];
}

std::string InstanceTypeOfNode(const std::vector<std::string>& types, int i) {
  if (types.empty()) return kDefaultInstanceType;
  return types[std::min<size_t>(static_cast<size_t>(i), types.size() - 1)];
}

Result<LabCommand> ParseLabArgs(const std::vector<std::string>& args,
                                const std::string& default_lab_dir) {
  LabCommand cmd;
  cmd.lab_dir = default_lab_dir;
  ArgCursor c(args, 0);
  // Global flags come before the command.
  while (!c.done() && !c.peek().empty() && c.peek()[0] == '-') {
    std::string a = c.next();
    if (a == "--help" || a == "-h") {
      cmd.action = HelpArgs{};
      return cmd;
    }
    if (IsFlag(a, "--lab")) {
      TERWAY_ASSIGN_OR_RETURN(cmd.lab_dir, c.Value("--lab"));
      if (cmd.lab_dir.empty() || cmd.lab_dir[0] != '/') {
        return Bad(fmt::format("--lab wants an absolute directory, got '{}'", cmd.lab_dir));
      }
      while (cmd.lab_dir.size() > 1 && cmd.lab_dir.back() == '/') cmd.lab_dir.pop_back();
      if (cmd.lab_dir == "/") return Bad("--lab / would remove the root directory on `down`");
      continue;
    }
    return Bad(fmt::format("unknown flag '{}'", a));
  }
  if (c.done()) return Bad("no command given (up, pod, exec, status, down)");
  std::string verb = c.next();
  if (verb == "help") {
    cmd.action = HelpArgs{};
  } else if (verb == "up") {
    TERWAY_ASSIGN_OR_RETURN(cmd.action, ParseUp(c));
  } else if (verb == "pod") {
    if (c.done()) return Bad("pod: say add, del or check");
    std::string sub = c.next();
    if (sub == "add") {
      TERWAY_ASSIGN_OR_RETURN(cmd.action, ParsePodAdd(c));
    } else if (sub == "del" || sub == "delete") {
      TERWAY_ASSIGN_OR_RETURN(auto ref, ParseOnePod(c, "pod del"));
      cmd.action = PodDelArgs{ref};
    } else if (sub == "check") {
      TERWAY_ASSIGN_OR_RETURN(auto ref, ParseOnePod(c, "pod check"));
      cmd.action = PodCheckArgs{ref};
    } else {
      return Bad(fmt::format("pod: unknown subcommand '{}' (add, del, check)", sub));
    }
  } else if (verb == "exec") {
    if (c.done()) return Bad("exec: name the pod as NAMESPACE/NAME, then -- COMMAND");
    ExecArgs ex;
    TERWAY_ASSIGN_OR_RETURN(ex.pod, ParsePodRef(c.next()));
    if (c.done() || c.next() != "--") {
      return Bad("exec: separate the command with --, e.g. exec default/a -- ip addr");
    }
    while (!c.done()) ex.command.push_back(c.next());
    if (ex.command.empty()) return Bad("exec: no command after --");
    cmd.action = std::move(ex);
  } else if (verb == "control-plane") {
    if (!c.done()) return Bad(fmt::format("control-plane: unexpected argument '{}'", c.peek()));
    cmd.action = ControlPlaneArgs{};
  } else if (verb == "terwayd") {
    if (c.done()) return Bad("terwayd: say kill NODE or start NODE");
    std::string sub = c.next();
    if (sub != "kill" && sub != "start") return Bad(fmt::format("terwayd: unknown subcommand '{}' (kill, start)", sub));
    if (c.done()) return Bad(fmt::format("terwayd {}: name the node (node1, 1 or its instance id)", sub));
    TerwaydArgs t;
    t.start = sub == "start";
    t.node = c.next();
    if (!c.done()) return Bad(fmt::format("terwayd {}: unexpected argument '{}'", sub, c.peek()));
    cmd.action = t;
  } else if (verb == "vpcsim") {
    if (c.done()) return Bad("vpcsim: say kill or start");
    std::string sub = c.next();
    if (sub != "kill" && sub != "start") return Bad(fmt::format("vpcsim: unknown subcommand '{}' (kill, start)", sub));
    if (!c.done()) return Bad(fmt::format("vpcsim {}: unexpected argument '{}'", sub, c.peek()));
    cmd.action = VpcsimArgs{sub == "start"};
  } else if (verb == "status" || verb == "down") {
    if (!c.done()) return Bad(fmt::format("{}: unexpected argument '{}'", verb, c.peek()));
    if (verb == "status") {
      cmd.action = StatusArgs{};
    } else {
      cmd.action = DownArgs{};
    }
  } else {
    return Bad(fmt::format("unknown command '{}' (up, pod, exec, status, down)", verb));
  }
  return cmd;
}

std::string LabUsage() {
  return R"(terway-lab: a Terway cluster on this machine, on vpcsim's emulated VPC.

  terway-lab [--lab DIR] up --nodes N [--instance-type T[,T...]] [--eni-mode shared|exclusive[,...]]
                         [--name NAME] [--vpc-hosts K] [--cni-timeout SECONDS]
                         [--eni-config FILE] [--node-label NODE:KEY=VALUE ...]
                         [--eniip-virtual-type veth|IPVlan|datapathv2]
                         [--node-eniip-virtual-type NODE=veth|IPVlan|datapathv2 ...]
                         [--ip-stack ipv4|dual]
      start vpcsim, N ECS instances each running terwayd, and K plain VPC hosts (default 1);
      a kubelet kills a CNI plugin run after --cni-timeout (default 120) and fails the pod;
      --eni-config runs an operator's eni_conf as given (the lab adds only its API endpoints
      when absent); --node-label labels a node object before its terwayd starts (e.g.
      node2:k8s.aliyun.com/exclusive-mode-eni-type=eniOnly selects exclusive ENI, as Terway);
      --eniip-virtual-type sets the CNI conf's eniip_virtual_type (eni-config's 10-terway.conf
      and every node's conflist; default veth): IPVlan and datapathv2 wire shared-ENI pods with
      terwayd's eBPF datapath; --node-eniip-virtual-type gives one node its own;
      --ip-stack dual gives the VPC an IPv6 /56 and each vSwitch an IPv6 /64, and sets
      eni_conf's ip_stack to dual (default ipv4)
  terway-lab [--lab DIR] pod add NS/NAME --node NODE [--labels k=v,...] [--annotations k=v,...]
                                 [--cni-version 0.3.1|0.4.0|1.0.0|1.1.0]
      create the Pod object; the node's kubelet creates its namespace and runs the terway
      CNI plugin (ADD) as a runtime does; prints the pod IP once Running, or the CNI error.
      NODE: node1, 1, or the instance id
  terway-lab [--lab DIR] pod check NS/NAME     CNI CHECK of the pod
  terway-lab [--lab DIR] pod del NS/NAME       delete the Pod object; waits until its kubelet ran
                                               CNI DEL and removed the pod's namespace
  terway-lab [--lab DIR] terwayd kill NODE     SIGKILL the node's terwayd (a crash)
  terway-lab [--lab DIR] terwayd start NODE    start the node's terwayd again (after kill)
  terway-lab [--lab DIR] vpcsim kill           SIGKILL vpcsim, the emulated cloud (its fabric stays)
  terway-lab [--lab DIR] vpcsim start          start vpcsim again from its state, on the same port
  terway-lab [--lab DIR] exec NS/NAME -- CMD...  run CMD inside the pod's namespace
  terway-lab [--lab DIR] status                nodes, ENIs and IPs, pods
  terway-lab [--lab DIR] down                  remove everything of the lab (idempotent)

The lab directory (default /run/terway-lab/default, or $TERWAY_LAB_DIR) keeps the
state (lab.json), the world, vpcsim's state, every daemon's config, socket and log, and
`kubeconfig` for kubectl against the lab's API stand-in.
Needs root.
)";
}

}  // namespace terway::lab
