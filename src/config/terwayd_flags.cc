#include "config/terwayd_flags.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <map>

#include <fmt/format.h>

namespace terway::config {
namespace {

struct Flag {
  const char* help;
  bool takes_value;
  // Stores the value (or, for a boolean, "true"/"false"); an error names
  // the value and what is allowed.
  std::function<Status(TerwaydCommandLine&, const std::string& value)> set;
};

Error BadValue(const std::string& flag, const std::string& value, const std::string& allowed) {
  return Errorf(ErrorCode::kInvalidArgument, "invalid value \"{}\" for flag -{}: {}", value, flag, allowed);
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

auto Into(std::string TerwaydCommandLine::*field) {
  return [field](TerwaydCommandLine& c, const std::string& v) -> Status {
    c.*field = v;
    return Ok();
  };
}

const std::map<std::string, Flag>& Flags() {
  static const auto* flags = new std::map<std::string, Flag>{
      {"config", {"eni_conf JSON file (the eni-config ConfigMap's eni_conf); read when terwayd runs without a "
                  "Kubernetes API (default /etc/eni/eni.json)",
                  true, Into(&TerwaydCommandLine::config_path)}},
      {"socket", {"CNI socket (default: eni_conf daemon_socket)", true, Into(&TerwaydCommandLine::socket_path)}},
      {"state", {"state database (default: eni_conf state_path)", true, Into(&TerwaydCommandLine::state_path)}},
      {"metrics-listen", {"host:port for /metrics; '' disables (default 127.0.0.1:9190)", true,
                          Into(&TerwaydCommandLine::metrics_listen)}},
      {"metrics-port-file", {"write the bound metrics port here", true, Into(&TerwaydCommandLine::metrics_port_file)}},
      {"datapath", {"auto (as the node's ENI mode), shared, exclusive, or none (IPAM only, shared mode)", true,
                    [](TerwaydCommandLine& c, const std::string& v) -> Status {
                      if (v != "auto" && v != "shared" && v != "exclusive" && v != "none") {
                        return BadValue("datapath", v, "use auto, shared, exclusive or none");
                      }
                      c.datapath = v;
                      return Ok();
                    }}},
      {"ebpf-datapath", {"auto (serve networks asking eniip_virtual_type IPVlan/datapathv2 with the eBPF datapath "
                         "when the kernel can) or off (veth for every network)",
                         true,
                         [](TerwaydCommandLine& c, const std::string& v) -> Status {
                           if (v != "auto" && v != "off") return BadValue("ebpf-datapath", v, "use auto or off");
                           c.ebpf_datapath = v == "auto";
                           return Ok();
                         }}},
      {"bpffs", {"bpf filesystem where the eBPF datapath pins its maps, under terway/ (default /sys/fs/bpf)", true,
                 Into(&TerwaydCommandLine::bpffs)}},
      {"kubeconfig", {"kubeconfig of the Kubernetes API (default: in-cluster when KUBERNETES_SERVICE_HOST is set, "
                      "else no API: eni_conf from -config)",
                      true, Into(&TerwaydCommandLine::kubeconfig)}},
      {"master", {"the Kubernetes API server, overriding the kubeconfig's (upstream's flag)", true,
                  Into(&TerwaydCommandLine::api_server)}},
      {"node-name", {"this node's name in Kubernetes (default: $NODE_NAME)", true, Into(&TerwaydCommandLine::node_name)}},
      {"log-level", {"trace, debug, info, warn or error (default info)", true,
                     [](TerwaydCommandLine& c, const std::string& v) -> Status {
                       std::string l = Lower(v);
                       if (l == "warning") l = "warn";
                       static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical"};
                       if (std::find(std::begin(kLevels), std::end(kLevels), l) == std::end(kLevels)) {
                         return BadValue("log-level", v, "use trace, debug, info, warn or error");
                       }
                       c.log_level = l;
                       return Ok();
                     }}},
      {"daemon-mode", {"upstream's network mode: ENIMultiIP (shared ENI; nodes labelled "
                       "k8s.aliyun.com/exclusive-mode-eni-type=eniOnly run exclusive ENI) or ENIOnly (exclusive "
                       "ENI on every node)",
                       true,
                       [](TerwaydCommandLine& c, const std::string& v) -> Status {
                         if (v == "ENIMultiIP" || v == "ENIOnly") {
                           c.daemon_mode = v;
                           return Ok();
                         }
                         if (v == "VPC") {
                           return BadValue("daemon-mode", v,
                                           "Terway's VPC mode (pods routed without ENI addresses) is not "
                                           "implemented; use ENIMultiIP or ENIOnly");
                         }
                         return BadValue("daemon-mode", v, "use ENIMultiIP or ENIOnly");
                       }}},
      {"readonly-listen", {"upstream's read-only debug socket: accepted, not used", true,
                           [](TerwaydCommandLine& c, const std::string& v) -> Status {
                             c.warnings.push_back(fmt::format(
                                 "-readonly-listen {} is upstream Terway's debug socket for its CLI; this terwayd "
                                 "opens none: terway-cli inspects the node over the CNI socket",
                                 v));
                             return Ok();
                           }}},
      {"feature-gates", {"upstream's feature gates: accepted, not used", true,
                         [](TerwaydCommandLine& c, const std::string& v) -> Status {
                           c.warnings.push_back(fmt::format(
                               "-feature-gates {} names upstream Terway's feature gates; this terwayd has none and "
                               "runs with its own behaviour",
                               v));
                           return Ok();
                         }}},
      {"help", {"show this help", false, [](TerwaydCommandLine& c, const std::string& v) -> Status {
                  c.help = v == "true";
                  return Ok();
                }}},
  };
  return *flags;
}

Result<bool> ParseBool(const std::string& flag, const std::string& v) {
  // Go's strconv.ParseBool.
  static const char* kTrue[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char* kFalse[] = {"0", "f", "F", "FALSE", "false", "False"};
  if (std::find(std::begin(kTrue), std::end(kTrue), v) != std::end(kTrue)) return true;
  if (std::find(std::begin(kFalse), std::end(kFalse), v) != std::end(kFalse)) return false;
  return BadValue(flag, v, "use true or false");
}

}  // namespace

Result<TerwaydCommandLine> ParseTerwaydCommandLine(const std::vector<std::string>& args) {
  TerwaydCommandLine out;
  const auto& flags = Flags();
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (i + 1 < args.size()) {
        return Errorf(ErrorCode::kInvalidArgument, "terwayd takes no arguments, got \"{}\"; see terwayd -help",
                      args[i + 1]);
      }
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      return Errorf(ErrorCode::kInvalidArgument, "terwayd takes no arguments, got \"{}\"; flags start with - (see "
                                                 "terwayd -help)",
                    arg);
    }
    std::string body = arg.substr(arg[1] == '-' ? 2 : 1);
    if (body.empty() || body[0] == '-' || body[0] == '=') {
      return Errorf(ErrorCode::kInvalidArgument, "bad flag syntax: {}", arg);
    }
    std::string name = body;
    std::string value;
    bool has_value = false;
    if (auto eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (name == "h") name = "help";
    auto f = flags.find(name);
    if (f == flags.end()) {
      std::vector<std::string> known;
      for (const auto& [n, _] : flags) known.push_back("-" + n);
      return Errorf(ErrorCode::kInvalidArgument, "flag provided but not defined: -{}; terwayd accepts {}", name,
                    fmt::join(known, ", "));
    }
    if (!f->second.takes_value) {
      bool on = true;
      if (has_value) {
        TERWAY_ASSIGN_OR_RETURN(on, ParseBool(name, value));
      }
      TERWAY_TRY(f->second.set(out, on ? "true" : "false"));
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size()) {
        return Errorf(ErrorCode::kInvalidArgument, "flag needs an argument: -{}", name);
      }
      value = args[++i];
    }
    TERWAY_TRY(f->second.set(out, value));
  }
  return out;
}

std::string TerwaydUsage() {
  std::string s =
      "terwayd: Terway's node daemon (ENI/IP pool, CNI service)\n\n"
      "Flags take one or two dashes, and -flag value or -flag=value (Go's flag syntax, as upstream terwayd):\n";
  for (const auto& [name, f] : Flags()) {
    s += fmt::format("  -{}{}\n      {}\n", name, f.takes_value ? " value" : "", f.help);
  }
  return s;
}

}  // namespace terway::config
