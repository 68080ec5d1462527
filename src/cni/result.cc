#include "cni/result.h"

#include <nlohmann/json.hpp>

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

// Strict accessors: a wrong type in a prevResult is a decoding failure the
// caller reports, never an exception.
Result<std::string> OptString(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be a string", key);
  return it->get<std::string>();
}
Result<std::optional<int>> OptInt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int>();
  if (!it->is_number_integer()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be an integer", key);
  return std::optional<int>(it->get<int>());
}
Result<std::vector<std::string>> OptStrings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must be an array", key);
  for (const auto& e : *it) {
    if (!e.is_string()) return Errorf(ErrorCode::kInvalidArgument, "field \"{}\" must hold strings", key);
    out.push_back(e.get<std::string>());
  }
  return out;
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
      TERWAY_ASSIGN_OR_RETURN_CTX(i.mtu, OptInt(e, "mtu"), "interfaces[]");
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
      TERWAY_ASSIGN_OR_RETURN_CTX(ip.interface, OptInt(e, "interface"), "ips[]");
      if (ip.interface && (*ip.interface < 0 || *ip.interface >= static_cast<int>(r.interfaces.size())))
        return Errorf(ErrorCode::kInvalidArgument, "ips[]: interface index {} out of range", *ip.interface);
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
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.mtu, OptInt(e, "mtu"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.advmss, OptInt(e, "advmss"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.priority, OptInt(e, "priority"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.table, OptInt(e, "table"), "routes[]");
      TERWAY_ASSIGN_OR_RETURN_CTX(rt.scope, OptInt(e, "scope"), "routes[]");
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
  // error_handler replace: messages may quote bytes from malformed input.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string RenderVersionReply() {
  json j = json::object();
  j["cniVersion"] = std::string(SpecVersionString(kLatestVersion));
  j["supportedVersions"] = SupportedVersionStrings();
  return j.dump();
}

}  // namespace terway::cni
