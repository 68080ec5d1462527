#include "policy/calico_objects.h"

#include <map>
#include <set>

#include <fmt/format.h>

namespace terway::policy {

namespace {

using Json = nlohmann::json;

// Calico sets this label on every NetworkSet itself (its namespace) and its
// validator refuses objects that carry it.
constexpr char kCalicoNamespaceLabel[] = "projectcalico.org/namespace";

Result<k8s::ObjectMeta> MetaOf(const Json& object, const char* kind) {
  if (!object.is_object()) return Errorf(ErrorCode::kInvalidArgument, "{}: want a JSON object", kind);
  auto m = object.find("metadata");
  if (m == object.end()) return Errorf(ErrorCode::kInvalidArgument, "{}: metadata missing", kind);
  auto meta = k8s::ParseObjectMeta(*m);
  if (!meta.ok()) return std::move(meta).error().Wrap(fmt::format("reading {}", kind));
  return meta;
}

// spec (absent: {}), which must be an object.
Result<const Json*> SpecOf(const Json& object, const std::string& what) {
  static const Json kEmpty = Json::object();
  auto s = object.find("spec");
  if (s == object.end() || s->is_null()) return &kEmpty;
  if (!s->is_object()) return Errorf(ErrorCode::kInvalidArgument, "{}: spec: want an object", what);
  return &*s;
}

// Reads a set into *out as far as it goes: out->read says what was read
// when an error stops it (the caller decides whether a partial set counts).
Status ReadNetworkSet(const Json& object, bool global, NetworkSetInfo* out) {
  const char* kind = global ? "GlobalNetworkSet" : "NetworkSet";
  // A GlobalNetworkSet's scope is known before anything is read.
  out->read = global ? NetworkSetInfo::Read::kScope : NetworkSetInfo::Read::kNothing;
  TERWAY_ASSIGN_OR_RETURN(k8s::ObjectMeta meta, MetaOf(object, kind));
  out->name = meta.name;
  if (!global) {
    if (meta.namespace_.empty()) {
      return Errorf(ErrorCode::kInvalidArgument,
                    "NetworkSet {}: metadata.namespace missing (a NetworkSet is namespaced)", meta.name);
    }
    out->namespace_ = meta.namespace_;
    out->read = NetworkSetInfo::Read::kScope;
  }
  const std::string what = fmt::format("{} {}", kind, meta.Key());
  // Labels as written: Felix (with the crd.projectcalico.org/v1 datastore,
  // where no validator stops it) would match a set by them.
  out->labels = std::move(meta.labels);
  out->read = NetworkSetInfo::Read::kLabels;
  if (out->labels.count(kCalicoNamespaceLabel)) {
    return Errorf(ErrorCode::kInvalidArgument, "{}: label {} is reserved for Calico (remove it)", what,
                  kCalicoNamespaceLabel);
  }
  TERWAY_ASSIGN_OR_RETURN(const Json* spec, SpecOf(object, what));
  auto nets = spec->find("nets");
  if (nets != spec->end() && !nets->is_null()) {
    if (!nets->is_array()) return Errorf(ErrorCode::kInvalidArgument, "{}: spec.nets: want a list of CIDRs", what);
    for (size_t i = 0; i < nets->size(); i++) {
      const Json& n = (*nets)[i];
      if (!n.is_string()) {
        return Errorf(ErrorCode::kInvalidArgument, "{}: spec.nets[{}]: want a CIDR string, got {}", what, i,
                      n.type_name());
      }
      std::string text = n.get<std::string>();
      const bool v6 = text.find(':') != std::string::npos;
      // A bare address is a host: /32 or /128, as Calico reads it.
      if (text.find('/') == std::string::npos) text += v6 ? "/128" : "/32";
      if (v6) {
        auto cidr6 = Ipv6Cidr::Parse(text);
        if (!cidr6.ok()) {
          return Errorf(ErrorCode::kInvalidArgument, "{}: spec.nets[{}]: \"{}\" is not a CIDR", what, i, text);
        }
        out->nets6.push_back(*cidr6);  // host bits: IpRangeSet keeps the network
        continue;
      }
      auto cidr = Ipv4Cidr::Parse(text, /*allow_host_bits=*/true);
      if (!cidr.ok()) {
        return Errorf(ErrorCode::kInvalidArgument, "{}: spec.nets[{}]: \"{}\" is not a CIDR", what, i, text);
      }
      // Host bits are allowed (Calico masks them); keep the network.
      out->nets.emplace_back(Ipv4Addr(cidr->network().value() & cidr->mask()), cidr->prefix_len());
    }
  }
  out->read = NetworkSetInfo::Read::kAll;
  return Ok();
}

Result<NetworkSetInfo> NetworkSetOf(const Json& object, bool global) {
  NetworkSetInfo out;
  TERWAY_TRY(ReadNetworkSet(object, global, &out));
  return out;
}

NetworkSetInfo NetworkSetOrUnreadableOf(const Json& object, bool global) {
  NetworkSetInfo out;
  Status st = ReadNetworkSet(object, global, &out);
  if (st.ok()) return out;
  // Addresses read before the error are not all of them: none count.
  out.nets.clear();
  out.nets6.clear();
  out.unreadable = st.error().ToString();
  return out;
}

std::optional<uint8_t> ProtocolNumber(const std::string& name) {
  // The protocols an EndpointSlice port can name (the API validates them).
  if (name.empty() || name == "TCP") return 6;
  if (name == "UDP") return 17;
  if (name == "SCTP") return 132;
  return std::nullopt;
}

}  // namespace

Result<NetworkSetInfo> NetworkSetFromCalico(const Json& object) { return NetworkSetOf(object, false); }
Result<NetworkSetInfo> GlobalNetworkSetFromCalico(const Json& object) { return NetworkSetOf(object, true); }
NetworkSetInfo NetworkSetOrUnreadable(const Json& object) { return NetworkSetOrUnreadableOf(object, false); }
NetworkSetInfo GlobalNetworkSetOrUnreadable(const Json& object) { return NetworkSetOrUnreadableOf(object, true); }

Result<TierInfo> TierFromCalico(const Json& object) {
  TERWAY_ASSIGN_OR_RETURN(k8s::ObjectMeta meta, MetaOf(object, "Tier"));
  const std::string what = "Tier " + meta.name;
  TierInfo t;
  t.name = meta.name;
  TERWAY_ASSIGN_OR_RETURN(const Json* spec, SpecOf(object, what));
  auto order = spec->find("order");
  if (order == spec->end() || order->is_null()) {
    t.order = kDefaultTierOrder;
  } else if (order->is_number()) {
    t.order = order->get<double>();
  } else {
    return Errorf(ErrorCode::kInvalidArgument, "{}: spec.order: want a number, got {}", what, order->type_name());
  }
  auto action = spec->find("defaultAction");
  if (action != spec->end() && !action->is_null()) {
    if (!action->is_string() || (*action != "Deny" && *action != "Pass")) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: spec.defaultAction: {} (want Deny or Pass)", what,
                    action->dump());
    }
    t.default_action_pass = *action == "Pass";
  }
  return t;
}

ServiceAccountInfo ServiceAccountFromK8s(const k8s::ServiceAccount& sa) {
  return ServiceAccountInfo{sa.metadata.namespace_, sa.metadata.name, sa.metadata.labels};
}

std::vector<ServiceBackends> ServicesFromEndpointSlices(const std::vector<k8s::EndpointSlice>& slices) {
  using Ports = std::vector<ServiceBackends::Port>;
  // Service -> the slices' port lists -> their endpoints' addresses.
  struct Members {
    std::set<Ipv4Addr> v4;
    std::set<Ipv6Addr> v6;
  };
  std::map<std::pair<std::string, std::string>, std::map<Ports, Members>> by_service;
  for (const auto& s : slices) {
    const std::string service = s.ServiceName();
    if (service.empty()) continue;
    // A Service exists for policy as soon as it has a slice, even an empty
    // or FQDN one: its rules then match nothing rather than being unknown.
    auto& groups = by_service[{s.metadata.namespace_, service}];
    if (s.address_type != "IPv4" && s.address_type != "IPv6") continue;
    std::set<ServiceBackends::Port> ports;
    for (const auto& p : s.ports) {
      auto proto = ProtocolNumber(p.protocol);
      if (!p.port || *p.port < 1 || *p.port > 65535 || !proto) continue;
      ports.insert({*proto, static_cast<uint16_t>(*p.port)});
    }
    Members m;
    for (const auto& e : s.endpoints) {
      for (const auto& a : e.addresses) {
        if (auto ip = Ipv4Addr::Parse(a); ip.ok() && s.address_type == "IPv4") m.v4.insert(*ip);
        if (auto ip = Ipv6Addr::Parse(a); ip.ok() && s.address_type == "IPv6") m.v6.insert(*ip);
      }
    }
    if (m.v4.empty() && m.v6.empty()) continue;  // adds no member, whatever its ports
    Members& g = groups[Ports(ports.begin(), ports.end())];
    g.v4.insert(m.v4.begin(), m.v4.end());
    g.v6.insert(m.v6.begin(), m.v6.end());
  }
  std::vector<ServiceBackends> out;
  out.reserve(by_service.size());
  for (auto& [key, groups] : by_service) {
    ServiceBackends b;
    b.namespace_ = key.first;
    b.name = key.second;
    for (auto& [ports, m] : groups) {
      b.groups.push_back({std::vector<Ipv4Addr>(m.v4.begin(), m.v4.end()), ports,
                          std::vector<Ipv6Addr>(m.v6.begin(), m.v6.end())});
    }
    out.push_back(std::move(b));
  }
  return out;
}

std::string DescribeFailClosed(const FailClosed& f) {
  return fmt::format("{}: {}; enforced as: {}", f.where, f.why, f.enforced_as);
}

std::string FailClosedMessage(const std::vector<FailClosed>& entries, size_t max_bytes) {
  auto rest = [](size_t k) { return fmt::format("; and {} more: see terway-cli policy show", k); };
  std::string out = "not enforced as written, terway enforces the safe side instead: ";
  for (size_t i = 0; i < entries.size(); i++) {
    const std::string item = (i ? "; " : "") + DescribeFailClosed(entries[i]);
    const size_t after = entries.size() - i - 1;
    if (out.size() + item.size() + (after ? rest(after).size() : 0) <= max_bytes) {
      out += item;
      continue;
    }
    // Room for this pointer was kept when the previous entry went in.
    if (i > 0) return out + rest(after + 1);
    // The first entry alone is too long: cut it, on a UTF-8 character
    // boundary (the API server refuses broken UTF-8).
    const std::string cut = " ... (cut: see terway-cli policy show)";
    if (out.size() + cut.size() >= max_bytes) return out.substr(0, max_bytes);
    size_t room = max_bytes - out.size() - cut.size();
    while (room > 0 && (static_cast<unsigned char>(item[room]) & 0xC0) == 0x80) room--;
    return out + item.substr(0, room) + cut;
  }
  return out;
}

}  // namespace terway::policy
