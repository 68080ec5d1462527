#include "cni/result.h"

#include <nlohmann/json.hpp>

#include "cni/json_text.h"

namespace terway::cni {

using nlohmann::json;

namespace {

bool IsLegacy(SpecVersion v) { return v == SpecVersion::k031 || v == SpecVersion::k040; }

json RenderInterface(const Interface& i, SpecVersion v) {
  json j = json::object();
  j["name"] = i.name;
  if (!i.mac.empty()) j["mac"] = i.mac;
  if (!i.sandbox.empty()) j["sandbox"] = i.sandbox;
  if (i.mtu && v == SpecVersion::k110) j["mtu"] = *i.mtu;
  return j;
}

json RenderIp(const IpConfig& ip, SpecVersion v) {
  json j = json::object();
  if (IsLegacy(v)) j["version"] = ip.IsV6() ? "6" : "4";
  j["address"] = ip.address;
  if (!ip.gateway.empty()) j["gateway"] = ip.gateway;
  if (ip.interface) j["interface"] = *ip.interface;
  return j;
}

json RenderRoute(const Route& r, SpecVersion v) {
  json j = json::object();
  j["dst"] = r.dst;
  if (!r.gw.empty()) j["gw"] = r.gw;
  if (v == SpecVersion::k110) {
    if (r.mtu) j["mtu"] = *r.mtu;
    if (r.advmss) j["advmss"] = *r.advmss;
    if (r.priority) j["priority"] = *r.priority;
    if (r.table) j["table"] = *r.table;
    if (r.scope) j["scope"] = *r.scope;
  }
  return j;
}

json RenderDns(const Dns& d) {
  json j = json::object();
  if (!d.nameservers.empty()) j["nameservers"] = d.nameservers;
  if (!d.domain.empty()) j["domain"] = d.domain;
  if (!d.search.empty()) j["search"] = d.search;
  if (!d.options.empty()) j["options"] = d.options;
  return j;
}

// A number in 0..max as the uint32_t the model holds (max <= UINT32_MAX).
Result<std::optional<uint32_t>> OptU32(const json& j, const char* key, uint32_t max = UINT32_MAX) {
  TERWAY_ASSIGN_OR_RETURN(std::optional<uint64_t> v, OptUint(j, key, max));
  if (!v) return std::optional<uint32_t>();
  return std::optional<uint32_t>(static_cast<uint32_t>(*v));
}

Result<const json*> OptArray(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return static_cast<const json*>(nullptr);
  if (!it->is_array()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be an array", key);
  return &*it;
}

}  // namespace

json RenderResult(const CniResult& r, SpecVersion v) {
  json j = json::object();
  j["cniVersion"] = std::string(SpecVersionString(v));
  if (!r.interfaces.empty()) {
    json a = json::array();
    for (const auto& i : r.interfaces) a.push_back(RenderInterface(i, v));
    j["interfaces"] = std::move(a);
  }
  json ips = json::array();
  for (const auto& ip : r.ips) ips.push_back(RenderIp(ip, v));
  j["ips"] = std::move(ips);
  if (!r.routes.empty()) {
    json a = json::array();
    for (const auto& rt : r.routes) a.push_back(RenderRoute(rt, v));
    j["routes"] = std::move(a);
  }
  j["dns"] = RenderDns(r.dns);
  return j;
}

void ResultToJson(const CniResult& r, json& j) {
  j = RenderResult(r, SpecVersion::k110);
  j.erase("cniVersion");
}

Result<CniResult> ParseResult(const json& j) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "result must be a JSON object");
  CniResult r;
  TERWAY_ASSIGN_OR_RETURN(const json* ifs, OptArray(j, "interfaces"));
  if (ifs) {
    for (const auto& e : *ifs) {
      if (!e.is_object()) return MakeError(ErrorCode::kInvalidArgument, "interfaces[] must hold objects");
      Interface i;
      TERWAY_ASSIGN_OR_RETURN_CTX(i.name, OptString(e, "name"), "interfaces[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(i.mac, OptString(e, "mac"), "interfaces[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(i.sandbox, OptString(e, "sandbox"), "interfaces[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(i.mtu, OptU32(e, "mtu"), "interfaces[]");
      r.interfaces.push_back(std::move(i));
    }
  }
  TERWAY_ASSIGN_OR_RETURN(const json* ips, OptArray(j, "ips"));
  if (ips) {
    for (const auto& e : *ips) {
      if (!e.is_object()) return MakeError(ErrorCode::kInvalidArgument, "ips[] must hold objects");
      IpConfig ip;
      TERWAY_ASSIGN_OR_RETURN_CTX(ip.address, OptString(e, "address"), "ips[]");
      if (ip.address.empty()) return MakeError(ErrorCode::kInvalidArgument, "ips[]: missing address");
      TERWAY_ASSIGN_OR_RETURN_CTX(ip.gateway, OptString(e, "gateway"), "ips[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(std::optional<uint64_t> index, OptUint(e, "interface", UINT64_MAX), "ips[]");
      if (index) {
        // Compared as read: an index of 2^32 must not wrap to a valid 0.
        if (*index >= r.interfaces.size())
          return Errorf(ErrorCode::kInvalidArgument,
                        "ips[]: interface index {} is out of range: the result lists {} interface(s)", *index,
                        r.interfaces.size());
        ip.interface = static_cast<int>(*index);
      }
      r.ips.push_back(std::move(ip));
    }
  }
  TERWAY_ASSIGN_OR_RETURN(const json* routes, OptArray(j, "routes"));
  if (routes) {
    for (const auto& e : *routes) {
      if (!e.is_object()) return MakeError(ErrorCode::kInvalidArgument, "routes[] must hold objects");
      Route rt;
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.dst, OptString(e, "dst"), "routes[]");
      if (rt.dst.empty()) return MakeError(ErrorCode::kInvalidArgument, "routes[]: missing dst");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.gw, OptString(e, "gw"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.mtu, OptU32(e, "mtu"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.advmss, OptU32(e, "advmss"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.priority, OptU32(e, "priority"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.table, OptU32(e, "table"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.scope, OptU32(e, "scope", 255), "routes[]");
      r.routes.push_back(std::move(rt));
    }
  }
  auto dns = j.find("dns");
  if (dns != j.end() && !dns->is_null()) {
    if (!dns->is_object()) return MakeError(ErrorCode::kInvalidArgument, "field \"dns\" must be an object");
    TERWAY_ASSIGN_OR_RETURN_CTX(r.dns.nameservers, OptStrings(*dns, "nameservers"), "dns");
    TERWAY_ASSIGN_OR_RETURN_CTX(r.dns.domain, OptString(*dns, "domain"), "dns");
    TERWAY_ASSIGN_OR_RETURN_CTX(r.dns.search, OptStrings(*dns, "search"), "dns");
    TERWAY_ASSIGN_OR_RETURN_CTX(r.dns.options, OptStrings(*dns, "options"), "dns");
  }
  return r;
}

CniResult MergeResults(const CniResult& prev, const CniResult& ours) {
  CniResult out = prev;
  const int shift = static_cast<int>(prev.interfaces.size());
  for (const auto& i : ours.interfaces) out.interfaces.push_back(i);
  for (IpConfig ip : ours.ips) {
    if (ip.interface) *ip.interface += shift;
    out.ips.push_back(std::move(ip));
  }
  for (const auto& r : ours.routes) out.routes.push_back(r);
  // DNS: the earlier plugin's settings win; ours fill only what it left empty.
  if (out.dns.empty()) out.dns = ours.dns;
  return out;
}

std::string RenderError(const CniError& e, std::string_view cni_version) {
  json j = json::object();
  j["cniVersion"] = std::string(cni_version);
  j["code"] = e.code;
  j["msg"] = e.msg;
  if (!e.details.empty()) j["details"] = e.details;
  // Messages may quote bytes from malformed input; DumpJson cannot throw.
  return DumpJson(j);
}

std::string RenderVersionReply() {
  json j = json::object();
  j["cniVersion"] = std::string(SpecVersionString(kLatestVersion));
  j["supportedVersions"] = SupportedVersionStrings();
  return DumpJson(j);
}

}  // namespace terway::cni
