#include "datapath/wiring_plan.h"

#include <fmt/format.h>

namespace terway::datapath {

std::string Describe(const RoutePlan& r) {
  std::string s = r.dst.prefix_len == 0 ? std::string("default route") : "route " + r.dst.ToString();
  if (r.via) s += " via " + r.via->ToString();
  s += " dev " + r.dev;
  if (r.src) s += " src " + r.src->ToString();
  if (r.onlink) s += " onlink";
  if (r.table != netlink::kMainTable) s += " table " + std::to_string(r.table);
  return s;
}

std::string Describe(const RulePlan& r) {
  std::string sel;
  if (r.from) sel += "from " + r.from->addr.ToString() + (r.from->prefix_len == r.from->addr.max_prefix_len()
                                                             ? ""
                                                             : "/" + std::to_string(r.from->prefix_len));
  if (r.to) {
    if (!sel.empty()) sel += " ";
    sel += "to " + r.to->addr.ToString() +
           (r.to->prefix_len == r.to->addr.max_prefix_len() ? "" : "/" + std::to_string(r.to->prefix_len));
  }
  std::string table = r.table == netlink::kMainTable ? "main" : std::to_string(r.table);
  return fmt::format("rule '{} lookup {}' (priority {})", sel, table, r.priority);
}

std::string Describe(const NeighborPlan& n, const std::string& mac) {
  return fmt::format("permanent neighbour {} -> {} on {}", n.ip.ToString(), mac, n.dev);
}

std::string Describe(const ProxyNeighborPlan& n) {
  return fmt::format("proxy neighbour {} on {}", n.ip.ToString(), n.dev);
}

}  // namespace terway::datapath
