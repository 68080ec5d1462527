#include "cni/config.h"

#include <algorithm>
#include <cctype>

#include <fmt/ranges.h>

#include "cni/json_text.h"
#include "cni/protocol.h"
#include "common/ip.h"

namespace terway::cni {

using nlohmann::json;

Result<json> DecodeConfigJson(std::string_view stdin_data) {
  // ParseJsonText refuses a NUL byte: the JSON parser would stop there and
  // ignore the rest, so "{...}\0<anything>" would pass as the configuration.
  TERWAY_ASSIGN_OR_RETURN(json j, ParseJsonText(stdin_data, "network configuration on stdin"));
  if (!j.is_object())
    return MakeError(ErrorCode::kInvalidArgument, "network configuration on stdin must be a JSON object");
  return j;
}

Result<SpecVersion> ConfigVersion(const json& conf) {
  std::string text = "0.1.0";
  auto it = conf.find("cniVersion");
  if (it != conf.end()) {
    if (!it->is_string())
      return MakeError(ErrorCode::kInvalidArgument, "incompatible CNI version: cniVersion must be a string");
    text = it->get<std::string>();
  }
  auto v = ParseSpecVersion(text);
  if (!v)
    return Errorf(ErrorCode::kUnsupported, "incompatible CNI version {:?}: terway supports {}", text,
                  fmt::join(SupportedVersionStrings(), ", "));
  return *v;
}

namespace {

// Rates and bursts are unsigned integers; JSON numbers like 1e6 are accepted
// when they are whole.
Result<uint64_t> GetUnsigned(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return uint64_t{0};
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return Errorf(ErrorCode::kInvalidArgument, "\"{}\" must not be negative", key);
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d >= 0 && d < 1.8e19 && d == static_cast<double>(static_cast<uint64_t>(d)))
      return static_cast<uint64_t>(d);
  }
  return Errorf(ErrorCode::kInvalidArgument, "\"{}\" must be a non-negative integer", key);
}

Result<Bandwidth> ParseBandwidth(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "must be an object");
  Bandwidth b;
  TERWAY_ASSIGN_OR_RETURN(b.ingress_rate, GetUnsigned(j, "ingressRate"));
  TERWAY_ASSIGN_OR_RETURN(b.ingress_burst, GetUnsigned(j, "ingressBurst"));
  TERWAY_ASSIGN_OR_RETURN(b.egress_rate, GetUnsigned(j, "egressRate"));
  TERWAY_ASSIGN_OR_RETURN(b.egress_burst, GetUnsigned(j, "egressBurst"));
  // A token bucket needs both numbers; one without the other is a typo the
  // operator should hear about rather than a silently unlimited pod.
  if ((b.ingress_rate == 0) != (b.ingress_burst == 0))
    return MakeError(ErrorCode::kInvalidArgument, "ingressRate and ingressBurst must be set together");
  if ((b.egress_rate == 0) != (b.egress_burst == 0))
    return MakeError(ErrorCode::kInvalidArgument, "egressRate and egressBurst must be set together");
  for (auto [name, rate] : {std::pair{"ingressRate", b.ingress_rate}, {"egressRate", b.egress_rate}}) {
    if (rate != 0 && (rate < kMinBandwidthBitsPerSec || rate > kMaxBandwidthBitsPerSec)) {
      return Errorf(ErrorCode::kInvalidArgument, "{} {} bit/s is outside {}..{} bit/s (rates are bits per second)",
                    name, rate, kMinBandwidthBitsPerSec, kMaxBandwidthBitsPerSec);
    }
  }
  return b;
}

Status ParseAttachments(const json& conf, const char* key, NetConf& out) {
  auto it = conf.find(key);
  if (it == conf.end() || it->is_null()) return Ok();
  if (!it->is_array()) return Errorf(ErrorCode::kInvalidArgument, "\"{}\" must be an array", key);
  out.has_valid_attachments = true;
  for (const auto& e : *it) {
    if (!e.is_object()) return Errorf(ErrorCode::kInvalidArgument, "\"{}\" must hold objects", key);
    Attachment a;
    TERWAY_ASSIGN_OR_RETURN_CTX(a.container_id, OptString(e, "containerID"), key);
    TERWAY_ASSIGN_OR_RETURN_CTX(a.ifname, OptString(e, "ifname"), key);
    if (a.container_id.empty())
      return Errorf(ErrorCode::kInvalidArgument, "\"{}\": an entry has no containerID", key);
    if (std::find(out.valid_attachments.begin(), out.valid_attachments.end(), a) == out.valid_attachments.end())
      out.valid_attachments.push_back(std::move(a));
  }
  return Ok();
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<NetConf> ParseNetConf(const json& conf) {
  NetConf out;
  TERWAY_ASSIGN_OR_RETURN(out.version, ConfigVersion(conf));
  out.cni_version = std::string(SpecVersionString(out.version));
  TERWAY_ASSIGN_OR_RETURN(out.name, OptString(conf, "name"));
  if (out.name.empty()) return MakeError(ErrorCode::kInvalidArgument, "missing network name");
  TERWAY_TRY(ValidateNetworkName(out.name));
  TERWAY_ASSIGN_OR_RETURN(out.type, OptString(conf, "type"));

  TERWAY_ASSIGN_OR_RETURN(std::string vt, OptString(conf, "eniip_virtual_type"));
  out.eniip_virtual_type = Lower(vt);
  if (!out.eniip_virtual_type.empty() && out.eniip_virtual_type != "veth" &&
      out.eniip_virtual_type != "ipvlan" && out.eniip_virtual_type != "datapathv2")
    return Errorf(ErrorCode::kUnsupported,
                  "eniip_virtual_type {:?} is not supported (use veth, ipvlan or datapathv2)", vt);

  // 68 is IPv4's minimum MTU (RFC 791); 65535 the largest an IP packet can be.
  TERWAY_ASSIGN_OR_RETURN(std::optional<uint64_t> mtu, OptUint(conf, "mtu", 65535));
  if (mtu && *mtu != 0 && *mtu < 68)
    return Errorf(ErrorCode::kInvalidArgument, "\"mtu\" {} is outside 68..65535", *mtu);
  out.mtu = static_cast<int>(mtu.value_or(0));

  TERWAY_ASSIGN_OR_RETURN(out.service_cidr, OptString(conf, "service_cidr"));
  if (!out.service_cidr.empty()) {
    auto c = Ipv4Cidr::Parse(out.service_cidr);
    if (!c.ok()) return std::move(c).error().Wrap("service_cidr");
  }
  if (auto it = conf.find("host_stack_cidrs"); it != conf.end() && !it->is_null()) {
    if (!it->is_array()) return MakeError(ErrorCode::kInvalidArgument, "\"host_stack_cidrs\" must be an array");
    for (const auto& e : *it) {
      if (!e.is_string()) return MakeError(ErrorCode::kInvalidArgument, "\"host_stack_cidrs\" must hold strings");
      auto c = Ipv4Cidr::Parse(e.get<std::string>());
      if (!c.ok()) return std::move(c).error().Wrap("host_stack_cidrs");
      out.host_stack_cidrs.push_back(e.get<std::string>());
    }
  }
  TERWAY_ASSIGN_OR_RETURN(out.daemon_socket, OptString(conf, "daemon_socket"));
  // Checked here, before anything connects: a path connect() cannot take is
  // a configuration mistake (7), not an unreadable reply.
  if (!out.daemon_socket.empty()) TERWAY_TRY_CTX(protocol::CheckSocketPath(out.daemon_socket), "daemon_socket");

  // capabilities: the runtime leaves them in the config (podman does); they
  // only tell which runtimeConfig keys we accept, so we check the shape only.
  if (auto it = conf.find("capabilities"); it != conf.end() && !it->is_null() && !it->is_object())
    return MakeError(ErrorCode::kInvalidArgument, "\"capabilities\" must be an object");

  if (auto it = conf.find("runtimeConfig"); it != conf.end() && !it->is_null()) {
    if (!it->is_object()) return MakeError(ErrorCode::kInvalidArgument, "\"runtimeConfig\" must be an object");
    if (auto bw = it->find("bandwidth"); bw != it->end() && !bw->is_null()) {
      auto b = ParseBandwidth(*bw);
      if (!b.ok()) return std::move(b).error().Wrap("runtimeConfig.bandwidth");
      out.bandwidth = *b;
    }
    // portMappings and other capabilities are tolerated: terway does not
    // implement them (chain the "portmap" plugin for hostPort).
  }

  if (auto it = conf.find("prevResult"); it != conf.end() && !it->is_null()) {
    auto r = ParseResult(*it);
    if (!r.ok()) return std::move(r).error().Wrap("prevResult");
    out.prev_result = std::move(*r);
  }

  TERWAY_TRY(ParseAttachments(conf, "cni.dev/valid-attachments", out));
  TERWAY_TRY(ParseAttachments(conf, "cni.dev/attachments", out));
  return out;
}

}  // namespace terway::cni
