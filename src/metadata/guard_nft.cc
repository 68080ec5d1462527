#include "metadata/guard_nft.h"

#include <fmt/format.h>

namespace terway::metadata {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); i++) out += (i ? ", " : "") + items[i];
  return out;
}

// Every way a packet from a pod's host link is matched: one rule per
// prefix, then the set of explicit names.
std::vector<std::string> PodLinkMatches(const GuardTableSpec& spec) {
  std::vector<std::string> m;
  for (const auto& p : spec.guarded_prefixes) m.push_back(fmt::format("iifname \"{}*\"", p));
  m.push_back("iifname @guarded_ifaces");
  return m;
}

}  // namespace

Status ValidateInterfaceName(std::string_view name) {
  if (name.empty() || name.size() > 15) {
    return Errorf(ErrorCode::kInvalidArgument, "link name \"{}\" must be 1 to 15 bytes long", name);
  }
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == '/' || c == '"' || c == '\\' || c == '*' || c == ':') {
      return Errorf(ErrorCode::kInvalidArgument,
                    "link name \"{}\" holds byte 0x{:02x}, which a link name cannot (or nft would read as a "
                    "wildcard)",
                    name, c);
    }
  }
  return Ok();
}

Status ValidateSpec(const GuardTableSpec& spec) {
  if (spec.guarded_prefixes.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the metadata guard needs at least one host link prefix (terwayd's is \"tw\")");
  }
  for (const auto& p : spec.guarded_prefixes) {
    Status s = ValidateInterfaceName(p);
    if (!s.ok()) return std::move(s).error().Wrap("guarded link prefix");
  }
  if (spec.metadata_ip == spec.proxy_ip) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the proxy cannot listen on the metadata service's own address: pods' packets to it "
                     "would loop back into the proxy and the node's own requests would never leave");
  }
  return Ok();
}

std::string RenderGuardTable(const GuardTableSpec& spec, const GuardMembers& members) {
  const std::string md = spec.metadata_ip.ToString();
  const std::string px = spec.proxy_ip.ToString();
  std::vector<std::string> exempt, ifaces;
  for (const auto& ip : members.exempt_pods) exempt.push_back(ip.ToString());
  for (const auto& n : members.guarded_ifaces) ifaces.push_back("\"" + n + "\"");

  std::string s = fmt::format("add table {0} {1}\ndelete table {0} {1}\ntable {0} {1} {{\n", kGuardFamily,
                              kGuardTable);
  s += "  set exempt_pods {\n    type ipv4_addr\n";
  if (!exempt.empty()) s += "    elements = { " + Join(exempt) + " }\n";
  s += "  }\n  set guarded_ifaces {\n    type ifname\n";
  if (!ifaces.empty()) s += "    elements = { " + Join(ifaces) + " }\n";
  s += "  }\n";

  s += "  chain steer {\n    type nat hook prerouting priority dstnat; policy accept;\n";
  s += fmt::format("    ip daddr {} tcp dport {} ip saddr @exempt_pods return\n", md, spec.metadata_port);
  for (const auto& m : PodLinkMatches(spec)) {
    s += fmt::format("    {} ip daddr {} tcp dport {} dnat to {}:{}\n", m, md, spec.metadata_port, px,
                     spec.proxy_port);
  }
  s += "  }\n";

  s += "  chain fence {\n    type filter hook forward priority filter; policy accept;\n";
  s += fmt::format("    ip daddr {} ip saddr @exempt_pods return\n", md);
  for (const auto& m : PodLinkMatches(spec)) s += fmt::format("    {} ip daddr {} reject\n", m, md);
  s += "  }\n";

  s += "  chain proxy_input {\n    type filter hook input priority filter; policy accept;\n";
  s += fmt::format("    ip daddr {} tcp dport {} iifname \"lo\" accept\n", px, spec.proxy_port);
  for (const auto& m : PodLinkMatches(spec)) {
    s += fmt::format("    {} ip daddr {} tcp dport {} accept\n", m, px, spec.proxy_port);
  }
  s += fmt::format("    ip daddr {} drop\n", px);
  s += "  }\n}\n";
  return s;
}

std::string RenderExemptPod(Ipv4Addr ip, bool present) {
  std::string add = fmt::format("add element {} {} exempt_pods {{ {} }}\n", kGuardFamily, kGuardTable, ip.ToString());
  if (present) return add;
  return add + fmt::format("delete element {} {} exempt_pods {{ {} }}\n", kGuardFamily, kGuardTable, ip.ToString());
}

std::string RenderGuardedInterface(std::string_view name, bool present) {
  std::string add = fmt::format("add element {} {} guarded_ifaces {{ \"{}\" }}\n", kGuardFamily, kGuardTable, name);
  if (present) return add;
  return add + fmt::format("delete element {} {} guarded_ifaces {{ \"{}\" }}\n", kGuardFamily, kGuardTable, name);
}

std::string RenderRemoveGuardTable() {
  return fmt::format("add table {0} {1}\ndelete table {0} {1}\n", kGuardFamily, kGuardTable);
}

}  // namespace terway::metadata
