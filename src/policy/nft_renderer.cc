#include "policy/nft_renderer.h"

#include <nftables/libnftables.h>

#include <map>
#include <memory>
#include <mutex>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/strings.h"
#include "netlink/netns.h"

namespace terway::policy {

namespace {

const char* NftProto(Protocol p) {
  switch (p) {
    case Protocol::kTCP: return "tcp";
    case Protocol::kUDP: return "udp";
    case Protocol::kSCTP: return "sctp";
    case Protocol::kICMP: return "icmp";
  }
  return "tcp";
}

std::string Comment(const std::string& text) {
  // nft comments are at most 128 bytes and quoted; policy ids are DNS names.
  std::string s;
  for (char c : text) s += c == '"' ? '\'' : c;
  if (s.size() > 120) s.resize(120);
  return "comment \"" + s + "\"";
}

std::string Verdict(Action a, Direction d) {
  switch (a) {
    case Action::kDeny: return "drop";
    case Action::kLog: return "";
    // Allow and Pass (to the allowing profile): an egress chain returns so
    // the forward chain goes on to the destination's ingress chain.
    case Action::kAllow:
    case Action::kPass: return d == Direction::kEgress ? "return" : "accept";
  }
  return "drop";
}

void RenderRule(const CompiledPolicy& cp, const CompiledRule& r, std::string* out) {
  std::string match;
  if (r.peer_set) {
    match = fmt::format("ip {} @{} ", r.direction == Direction::kIngress ? "saddr" : "daddr",
                        cp.sets()[*r.peer_set].name);
  }
  std::string tail = fmt::format("counter name \"{}\" ", r.counter);
  if (r.action == Action::kLog) tail += fmt::format("log prefix \"terway {} \" ", r.counter);
  tail += Verdict(r.action, r.direction);
  tail += " " + Comment(cp.DescribeRule(r));
  std::vector<std::string> lines;
  if (r.ports.empty()) lines.push_back(match + tail);
  for (const auto& m : r.ports) {
    if (!m.protocol) {
      lines.push_back(match + tail);
    } else if (m.all_ports || *m.protocol == Protocol::kICMP) {
      lines.push_back(match + fmt::format("meta l4proto {} ", NftProto(*m.protocol)) + tail);
    } else {
      std::vector<std::string> elems;
      for (const auto& [a, b] : m.ranges) elems.push_back(a == b ? std::to_string(a) : fmt::format("{}-{}", a, b));
      lines.push_back(match + fmt::format("{} dport {{ {} }} ", NftProto(*m.protocol), Join(elems, ", ")) + tail);
    }
  }
  for (const auto& l : lines) *out += "    " + l + "\n";
}

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

// libnftables keeps process-wide state it does not document as thread-safe.
std::mutex g_nft_mu;

}  // namespace

NftObjects ObjectsOf(const CompiledPolicy& cp) {
  NftObjects o;
  o.chains.insert("forward");
  o.maps = {"pod_ingress", "pod_egress"};
  for (const auto& set : cp.sets()) o.sets.insert(set.name);
  for (const auto& chain : cp.chains()) {
    o.chains.insert(chain.name);
    o.counters.insert(chain.name + "_drop");
    for (const auto& r : chain.rules) o.counters.insert(r.counter);
  }
  return o;
}

std::string RenderNftScript(const CompiledPolicy& cp, const NftObjects& existing) {
  const NftObjects next = ObjectsOf(cp);
  // Rules first (they reference sets, maps, counters and chains), then map
  // elements (they reference chains): then anything the new model lacks
  // has no references left and can go, in the same transaction.
  std::string s = fmt::format("add table {0} {1}\nflush table {0} {1}\n", kNftFamily, kNftTable);
  for (const auto& m : existing.maps) {
    s += fmt::format("{} map {} {} {}\n", next.maps.count(m) ? "flush" : "delete", kNftFamily, kNftTable, m);
  }
  for (const auto& set : existing.sets) {
    s += fmt::format("{} set {} {} {}\n", next.sets.count(set) ? "flush" : "delete", kNftFamily, kNftTable, set);
  }
  for (const auto& c : existing.chains) {
    if (!next.chains.count(c)) s += fmt::format("delete chain {} {} {}\n", kNftFamily, kNftTable, c);
  }
  for (const auto& c : existing.counters) {
    if (!next.counters.count(c)) s += fmt::format("delete counter {} {} {}\n", kNftFamily, kNftTable, c);
  }
  s += fmt::format("table {} {} {{\n", kNftFamily, kNftTable);
  // Declaring an existing named counter leaves its values alone.
  auto counter = [](const std::string& name) { return fmt::format("  counter {} {{ }}\n", name); };
  for (const auto& set : cp.sets()) {
    s += fmt::format("  set {} {{\n    type ipv4_addr; flags interval;\n", set.name);
    if (!set.addresses.Empty()) s += "    elements = { " + set.addresses.ToString() + " }\n";
    s += "  }\n";
  }
  std::string ingress_elems, egress_elems, chains;
  for (const auto& chain : cp.chains()) {
    s += counter(chain.name + "_drop");
    for (const auto& r : chain.rules) s += counter(r.counter);
    const PodInfo& pod = cp.pods()[chain.pod];
    std::string& elems = chain.direction == Direction::kIngress ? ingress_elems : egress_elems;
    elems += fmt::format("{}{} : jump {}", elems.empty() ? "" : ", ", pod.ip->ToString(), chain.name);
    chains += fmt::format("  chain {} {{\n", chain.name);
    for (const auto& r : chain.rules) RenderRule(cp, r, &chains);
    // Reaching the end: some policy selects the pod and nothing allowed it.
    chains += fmt::format("    counter name \"{}_drop\" drop {}\n  }}\n", chain.name,
                          Comment(fmt::format("{} of {}: no rule matched", DirectionName(chain.direction), pod.Key())));
  }
  for (const char* m : {"pod_ingress", "pod_egress"}) {
    const std::string& e = std::string(m) == "pod_ingress" ? ingress_elems : egress_elems;
    s += fmt::format("  map {} {{\n    type ipv4_addr : verdict;\n", m);
    if (!e.empty()) s += "    elements = { " + e + " }\n";
    s += "  }\n";
  }
  s += chains;
  s += "  chain forward {\n"
       "    type filter hook forward priority filter; policy accept;\n"
       "    ct state established,related accept\n"
       "    ct state invalid drop\n"
       "    ip saddr vmap @pod_egress\n"
       "    ip daddr vmap @pod_ingress\n"
       "  }\n}\n";
  return s;
}

std::string FormatPolicyShow(const CompiledPolicy& cp, const std::vector<RuleCounter>& counters) {
  std::map<std::string, const RuleCounter*> by_name;
  for (const auto& c : counters) by_name[c.name] = &c;
  auto count = [&](const std::string& name) {
    auto it = by_name.find(name);
    return it == by_name.end() ? std::string("-") : fmt::format("{} pkts {} bytes", it->second->packets, it->second->bytes);
  };
  std::string out;
  for (const auto& chain : cp.chains()) {
    out += fmt::format("{} {} ({}):\n", cp.pods()[chain.pod].Key(), DirectionName(chain.direction), chain.name);
    for (const auto& r : chain.rules) {
      std::string peer = r.peer_set ? cp.sets()[*r.peer_set].key : "any";
      out += fmt::format("  {:<50} peer {:<40} {}\n", cp.DescribeRule(r), peer, count(r.counter));
    }
    out += fmt::format("  {:<50} {:<45} {}\n", "default deny", "", count(chain.name + "_drop"));
  }
  return out;
}

Status RunNftBatch(const std::string& netns, const std::string& script, std::string* json_out) {
  auto run = [&]() -> Status {
    std::lock_guard lock(g_nft_mu);
    std::unique_ptr<nft_ctx, CtxDeleter> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
    if (!ctx) return Errorf(ErrorCode::kInternal, "nft_ctx_new failed");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    if (json_out) nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON);
    if (nft_run_cmd_from_buffer(ctx.get(), script.c_str()) != 0) {
      const char* err = nft_ctx_get_error_buffer(ctx.get());
      std::string msg(Trim(err ? err : ""));
      Error e(ErrorCode::kKernel, "nft: " + (msg.empty() ? std::string("command failed") : msg));
      if (msg.find("No such file or directory") != std::string::npos) e.code = ErrorCode::kNotFound;
      return e;
    }
    if (json_out) {
      const char* o = nft_ctx_get_output_buffer(ctx.get());
      *json_out = o ? o : "";
    }
    return Ok();
  };
  if (netns.empty()) return run();
  // nftables state is per namespace and libnftables talks netlink from the
  // calling thread's namespace: run on a thread inside it.
  Status s = netlink::RunInNetns(netns, run);
  if (!s.ok()) return std::move(s).error().Wrap("in network namespace " + netns);
  return Ok();
}

Status NftPolicyTable::Apply(const CompiledPolicy& policy) {
  Status s = Ok();
  for (int attempt = 0; attempt < 2; attempt++) {
    if (!applied_) {
      TERWAY_ASSIGN_OR_RETURN_CTX(NftObjects listed, ListObjects(),
                                  fmt::format("reading table {} {}", kNftFamily, kNftTable));
      applied_ = std::move(listed);
    }
    s = RunNftBatch(netns_, RenderNftScript(policy, *applied_));
    if (s.ok()) {
      applied_ = ObjectsOf(policy);
      return Ok();
    }
    // Someone else changed our table (or it is gone): what we remember is
    // stale. List what is there and try once more.
    applied_.reset();
  }
  return std::move(s).error().Wrap(fmt::format("installing table {} {}", kNftFamily, kNftTable));
}

Status NftPolicyTable::Remove() {
  applied_.reset();
  Status s = RunNftBatch(netns_, fmt::format("add table {0} {1}\ndelete table {0} {1}\n", kNftFamily, kNftTable));
  if (!s.ok()) return std::move(s).error().Wrap(fmt::format("removing table {} {}", kNftFamily, kNftTable));
  return Ok();
}

Result<NftObjects> NftPolicyTable::ListObjects() const {
  NftObjects o;
  // Declarations only for chains; sets and maps list their elements too
  // (peer sets and pod maps: modest next to the rules, which we skip).
  for (const char* kind : {"chains", "sets", "maps", "counters"}) {
    std::string out;
    // nft 1.0.6 lists chains, sets and maps per family only ("list chains
    // table ..." is a syntax error there); the entries name their table.
    Status s = RunNftBatch(netns_, std::string(kind) == "counters"
                                       ? fmt::format("list counters table {} {}", kNftFamily, kNftTable)
                                       : fmt::format("list {} {}", kind, kNftFamily),
                           &out);
    if (!s.ok()) {
      if (s.error().code == ErrorCode::kNotFound) return NftObjects{};  // no table yet
      return std::move(s).error();
    }
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.contains("nftables") || !j["nftables"].is_array()) {
      return Errorf(ErrorCode::kInternal, "listing our {}: unexpected nft JSON output", kind);
    }
    for (const auto& item : j["nftables"]) {
      if (!item.is_object()) continue;
      for (const auto& [key, into] : {std::pair<const char*, std::set<std::string>*>{"chain", &o.chains},
                                      {"set", &o.sets}, {"map", &o.maps}, {"counter", &o.counters}}) {
        auto it = item.find(key);
        if (it != item.end() && it->contains("name") && (*it)["name"].is_string() &&
            it->value("table", std::string()) == kNftTable) {
          into->insert((*it)["name"].get<std::string>());
        }
      }
    }
  }
  return o;
}

Result<std::vector<RuleCounter>> NftPolicyTable::ReadCounters() const {
  std::string out;
  Status s = RunNftBatch(netns_, fmt::format("list counters table {} {}", kNftFamily, kNftTable), &out);
  if (!s.ok()) return std::move(s).error().Wrap("reading policy counters");
  auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.contains("nftables") || !j["nftables"].is_array()) {
    return Errorf(ErrorCode::kInternal, "reading policy counters: unexpected nft JSON output");
  }
  std::vector<RuleCounter> counters;
  for (const auto& item : j["nftables"]) {
    if (!item.is_object() || !item.contains("counter")) continue;
    const auto& c = item["counter"];
    if (!c.contains("name") || !c["name"].is_string()) continue;
    RuleCounter rc;
    rc.name = c["name"].get<std::string>();
    if (c.contains("packets") && c["packets"].is_number_unsigned()) rc.packets = c["packets"].get<uint64_t>();
    if (c.contains("bytes") && c["bytes"].is_number_unsigned()) rc.bytes = c["bytes"].get<uint64_t>();
    counters.push_back(std::move(rc));
  }
  return counters;
}

}  // namespace terway::policy
