#include "policy/nft_netlink.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "common/ip.h"
#include "netlink/netns.h"
#include "policy/ip_ranges.h"

namespace terway::policy {

namespace {

// ---- netlink messages ----

// One netlink message with an nfgenmsg header and attributes, as the
// kernel's nla_parse reads them (4-byte aligned, nested attributes flagged).
class Message {
 public:
  Message(uint16_t type, uint16_t flags, uint32_t seq, uint8_t family, uint16_t res_id = 0) {
    buf_.resize(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
    auto* h = reinterpret_cast<nlmsghdr*>(buf_.data());
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(NLM_F_REQUEST | flags);
    h->nlmsg_seq = seq;
    auto* g = reinterpret_cast<nfgenmsg*>(buf_.data() + NLMSG_HDRLEN);
    g->nfgen_family = family;
    g->version = NFNETLINK_V0;
    g->res_id = htons(res_id);
  }
  void Put(uint16_t type, const void* data, size_t len) {
    size_t at = buf_.size();
    buf_.resize(at + NLA_ALIGN(NLA_HDRLEN + len), 0);
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
    a->nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    a->nla_type = type;
    if (len) std::memcpy(buf_.data() + at + NLA_HDRLEN, data, len);
  }
  void PutString(uint16_t type, const std::string& s) { Put(type, s.c_str(), s.size() + 1); }
  void PutU32(uint16_t type, uint32_t v) {
    uint32_t be = htonl(v);
    Put(type, &be, sizeof(be));
  }
  void PutU64(uint16_t type, uint64_t v) {
    uint64_t be = htobe64(v);
    Put(type, &be, sizeof(be));
  }
  size_t Nest(uint16_t type) {
    size_t at = buf_.size();
    Put(static_cast<uint16_t>(type | NLA_F_NESTED), nullptr, 0);
    return at;
  }
  // Nested attributes carry a 16-bit length: callers keep them under 64 KiB.
  void End(size_t nest) { reinterpret_cast<nlattr*>(buf_.data() + nest)->nla_len = static_cast<uint16_t>(buf_.size() - nest); }
  size_t size() const { return buf_.size(); }
  void AppendTo(std::vector<uint8_t>* out) {
    reinterpret_cast<nlmsghdr*>(buf_.data())->nlmsg_len = static_cast<uint32_t>(buf_.size());
    out->insert(out->end(), buf_.begin(), buf_.end());
  }

 private:
  std::vector<uint8_t> buf_;
};

constexpr uint16_t Type(int msg) { return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg); }

// Element lists are split so no nested attribute nears 64 KiB.
constexpr size_t kMaxElementBytes = 48 * 1024;

// ---- the script's vocabulary ----

Status Unsupported(const std::string& line, const std::string& why) {
  return Errorf(ErrorCode::kUnsupported, "nft netlink: \"{}\": {}", line.substr(0, 160), why);
}

// Words, with "quoted strings" (quotes dropped) and { braced groups }
// (braces kept) as single tokens.
std::vector<std::string> Tokens(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == ' ' || s[i] == '\t') {
      i++;
    } else if (s[i] == '"') {
      size_t e = s.find('"', i + 1);
      if (e == std::string::npos) e = s.size();
      out.push_back(s.substr(i + 1, e - i - 1));
      i = e + 1;
    } else if (s[i] == '{') {
      size_t e = s.find('}', i);
      if (e == std::string::npos) e = s.size() - 1;
      out.push_back(s.substr(i, e - i + 1));
      i = e + 1;
    } else {
      size_t e = s.find_first_of(" \t", i);
      if (e == std::string::npos) e = s.size();
      out.push_back(s.substr(i, e - i));
      i = e;
    }
  }
  return out;
}

// "{ a, b, c }" -> {"a", "b", "c"}
std::vector<std::string> GroupItems(const std::string& group) {
  std::vector<std::string> out;
  if (group.size() < 2 || group.front() != '{' || group.back() != '}') return out;
  std::stringstream ss(group.substr(1, group.size() - 2));
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
    if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
  }
  return out;
}

// Inclusive, as the key's own number: an IPv4 address, an IPv6 address
// (128 bits) or a port.
using Range = std::pair<IpKey, IpKey>;

// Sorted, overlapping and adjacent ranges merged (as nft merges them).
std::vector<Range> Merged(std::vector<Range> r) {
  std::sort(r.begin(), r.end());
  std::vector<Range> out;
  for (const auto& x : r) {
    if (!out.empty() && (out.back().second == ~IpKey{0} || x.first <= out.back().second + 1)) {
      out.back().second = std::max(out.back().second, x.second);
    } else {
      out.push_back(x);
    }
  }
  return out;
}

// An IPv6 set's element: "a", "a-b" (the renderer writes no prefixes).
Result<Range> ParseIpv6Range(const std::string& item) {
  size_t dash = item.find('-');
  auto a = Ipv6Addr::Parse(item.substr(0, dash));
  auto b = dash == std::string::npos ? a : Ipv6Addr::Parse(item.substr(dash + 1));
  if (!a.ok() || !b.ok() || KeyOf(*b) < KeyOf(*a)) return Errorf(ErrorCode::kUnsupported, "IPv6 range {}", item);
  return Range{KeyOf(*a), KeyOf(*b)};
}

Result<Range> ParseAddressRange(const std::string& item) {
  if (auto dash = item.find('-'); dash != std::string::npos) {
    auto a = Ipv4Addr::Parse(item.substr(0, dash));
    auto b = Ipv4Addr::Parse(item.substr(dash + 1));
    if (!a.ok() || !b.ok() || b->value() < a->value()) return Errorf(ErrorCode::kUnsupported, "range {}", item);
    return Range{a->value(), b->value()};
  }
  if (item.find('/') != std::string::npos) {
    auto c = Ipv4Cidr::Parse(item);
    if (!c.ok()) return Errorf(ErrorCode::kUnsupported, "prefix {}", item);
    return Range{c->network().value(), c->Broadcast().value()};
  }
  auto a = Ipv4Addr::Parse(item);
  if (!a.ok()) return Errorf(ErrorCode::kUnsupported, "address {}", item);
  return Range{a->value(), a->value()};
}

Result<Range> ParsePortRange(const std::string& item) {
  auto num = [](const std::string& s) -> std::optional<uint32_t> {
    if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    uint32_t v = static_cast<uint32_t>(std::stoul(s));
    return v <= 65535 ? std::optional<uint32_t>(v) : std::nullopt;
  };
  size_t dash = item.find('-');
  auto a = num(item.substr(0, dash));
  auto b = dash == std::string::npos ? a : num(item.substr(dash + 1));
  if (!a || !b || *b < *a) return Errorf(ErrorCode::kUnsupported, "port {}", item);
  return Range{*a, *b};
}

// Key bytes of `v`, big-endian, `len` bytes (16: IPv6, 4: IPv4, 2: port).
std::string KeyBytes(IpKey v, size_t len) {
  std::string out(len, '\0');
  for (size_t i = 0; i < len; i++) out[len - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// ---- the batch ----

class BatchWriter {
 public:
  explicit BatchWriter(uint32_t first_seq) : seq_(first_seq) {
    Message begin(NFNL_MSG_BATCH_BEGIN, 0, seq_++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    begin.AppendTo(&bytes_);
  }

  Status Command(const std::string& line);

  std::vector<uint8_t> Finish(const std::string& last_command) {
    // The last command asks for an acknowledgement: the kernel delivers it
    // only once the whole transaction committed.
    if (last_ < bytes_.size()) {
      reinterpret_cast<nlmsghdr*>(bytes_.data() + last_)->nlmsg_flags |= NLM_F_ACK;
    }
    (void)last_command;
    Message end(NFNL_MSG_BATCH_END, 0, seq_++, AF_UNSPEC, NFNL_SUBSYS_NFTABLES);
    end.AppendTo(&bytes_);
    return std::move(bytes_);
  }

  const std::map<uint32_t, std::string>& commands() const { return commands_; }
  uint32_t last_seq() const { return last_seq_; }

 private:
  Message New(int msg, uint16_t flags) { return Message(Type(msg), flags, seq_, NFPROTO_INET); }
  void Add(Message& m, const std::string& line) {
    last_ = bytes_.size();
    last_seq_ = seq_;
    commands_[seq_++] = line;
    m.AppendTo(&bytes_);
  }

  Status AddRule(const std::string& line, const std::string& table, const std::string& chain,
                 const std::vector<std::string>& t, size_t from);
  void AddElements(const std::string& line, const std::string& table, const std::string& set, uint32_t set_id,
                   const std::vector<std::pair<std::string, uint32_t>>& elements,
                   const std::vector<std::string>& jump_to, bool remove);
  // Interval elements of ranges: each start and, unless the range reaches
  // the end of the key space, the element after it (flagged end); to add,
  // nft puts an end marker at 0 first when the first range starts later.
  static std::vector<std::pair<std::string, uint32_t>> IntervalElements(const std::vector<Range>& ranges, size_t len,
                                                                        bool zero_marker);

  std::vector<uint8_t> bytes_;
  std::map<uint32_t, std::string> commands_;
  uint32_t seq_;
  uint32_t last_seq_ = 0;
  size_t last_ = SIZE_MAX;
  uint32_t next_set_id_ = 1;
};

std::vector<std::pair<std::string, uint32_t>> BatchWriter::IntervalElements(const std::vector<Range>& ranges,
                                                                            size_t len, bool zero_marker) {
  const IpKey max = len >= 16 ? ~IpKey{0} : (IpKey{1} << (8 * len)) - 1;
  std::vector<std::pair<std::string, uint32_t>> out;
  for (size_t i = 0; i < ranges.size(); i++) {
    if (i == 0 && zero_marker && ranges[i].first > 0) out.push_back({KeyBytes(0, len), NFT_SET_ELEM_INTERVAL_END});
    out.push_back({KeyBytes(ranges[i].first, len), 0});
    if (ranges[i].second < max) out.push_back({KeyBytes(ranges[i].second + 1, len), NFT_SET_ELEM_INTERVAL_END});
  }
  return out;
}

void BatchWriter::AddElements(const std::string& line, const std::string& table, const std::string& set,
                              uint32_t set_id, const std::vector<std::pair<std::string, uint32_t>>& elements,
                              const std::vector<std::string>& jump_to, bool remove) {
  size_t i = 0;
  do {
    Message m = New(remove ? NFT_MSG_DELSETELEM : NFT_MSG_NEWSETELEM, remove ? 0 : NLM_F_CREATE);
    m.PutString(NFTA_SET_ELEM_LIST_TABLE, table);
    m.PutString(NFTA_SET_ELEM_LIST_SET, set);
    if (set_id) m.PutU32(NFTA_SET_ELEM_LIST_SET_ID, set_id);
    size_t list = m.Nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    for (; i < elements.size() && m.size() - list < kMaxElementBytes; i++) {
      size_t e = m.Nest(NFTA_LIST_ELEM);
      size_t key = m.Nest(NFTA_SET_ELEM_KEY);
      m.Put(NFTA_DATA_VALUE, elements[i].first.data(), elements[i].first.size());
      m.End(key);
      if (elements[i].second) m.PutU32(NFTA_SET_ELEM_FLAGS, elements[i].second);
      if (i < jump_to.size() && !jump_to[i].empty()) {
        size_t data = m.Nest(NFTA_SET_ELEM_DATA);
        size_t verdict = m.Nest(NFTA_DATA_VERDICT);
        m.PutU32(NFTA_VERDICT_CODE, static_cast<uint32_t>(NFT_JUMP));
        m.PutString(NFTA_VERDICT_CHAIN, jump_to[i]);
        m.End(verdict);
        m.End(data);
      }
      m.End(e);
    }
    m.End(list);
    Add(m, line);
  } while (i < elements.size());
}

Status BatchWriter::Command(const std::string& line) {
  std::vector<std::string> t = Tokens(line);
  if (t.empty()) return Ok();
  if (t.size() < 5 || t[2] != "inet") return Unsupported(line, "not a command on an inet table");
  const std::string &verb = t[0], &object = t[1], &table = t[3], &name = t[4];
  const bool is_map6 = name == "pod_ingress6" || name == "pod_egress6";
  const bool is_map = name == "pod_ingress" || name == "pod_egress" || is_map6;
  // Our peer sets: ipv4_addr interval sets named s_<hash>, their ipv6_addr
  // twins s6_<hash> (nft_model.h).
  const bool is_set6 = name.rfind("s6_", 0) == 0;
  const bool is_set = name.rfind("s_", 0) == 0 || is_set6;
  const size_t key_len = is_set6 || is_map6 ? 16 : 4;
  if (object == "chain" && t.size() == 5 && (verb == "add" || verb == "delete" || verb == "flush")) {
    Message m = verb == "add"      ? New(NFT_MSG_NEWCHAIN, NLM_F_CREATE)
                : verb == "delete" ? New(NFT_MSG_DELCHAIN, 0)
                                   : New(NFT_MSG_DELRULE, 0);  // no handle: every rule of the chain
    const bool flush = verb == "flush";
    m.PutString(flush ? uint16_t{NFTA_RULE_TABLE} : uint16_t{NFTA_CHAIN_TABLE}, table);
    m.PutString(flush ? uint16_t{NFTA_RULE_CHAIN} : uint16_t{NFTA_CHAIN_NAME}, name);
    Add(m, line);
    return Ok();
  }
  if (object == "counter" && t.size() == 5 && (verb == "add" || verb == "delete")) {
    Message m = New(verb == "add" ? NFT_MSG_NEWOBJ : NFT_MSG_DELOBJ, verb == "add" ? NLM_F_CREATE : 0);
    m.PutString(NFTA_OBJ_TABLE, table);
    m.PutString(NFTA_OBJ_NAME, name);
    m.PutU32(NFTA_OBJ_TYPE, NFT_OBJECT_COUNTER);
    if (verb == "add") {
      size_t data = m.Nest(NFTA_OBJ_DATA);
      m.PutU64(NFTA_COUNTER_BYTES, 0);
      m.PutU64(NFTA_COUNTER_PACKETS, 0);
      m.End(data);
    }
    Add(m, line);
    return Ok();
  }
  if (object == "set" && is_set && t.size() == 5 && (verb == "delete" || verb == "flush")) {
    Message m = verb == "delete" ? New(NFT_MSG_DELSET, 0) : New(NFT_MSG_DELSETELEM, 0);  // no elements: all
    const bool drop = verb == "delete";
    m.PutString(drop ? uint16_t{NFTA_SET_TABLE} : uint16_t{NFTA_SET_ELEM_LIST_TABLE}, table);
    m.PutString(drop ? uint16_t{NFTA_SET_NAME} : uint16_t{NFTA_SET_ELEM_LIST_SET}, name);
    Add(m, line);
    return Ok();
  }
  if (object == "set" && is_set && verb == "add") {
    const char* want = is_set6 ? "{ type ipv6_addr; flags interval; }" : "{ type ipv4_addr; flags interval; }";
    if (t.size() != 6 || t[5] != want) return Unsupported(line, "set declaration");
    Message m = New(NFT_MSG_NEWSET, NLM_F_CREATE);
    m.PutString(NFTA_SET_TABLE, table);
    m.PutString(NFTA_SET_NAME, name);
    m.PutU32(NFTA_SET_FLAGS, NFT_SET_INTERVAL);
    m.PutU32(NFTA_SET_KEY_TYPE, is_set6 ? 8 : 7);  // nft's ipv6_addr / ipv4_addr datatypes
    m.PutU32(NFTA_SET_KEY_LEN, static_cast<uint32_t>(key_len));
    m.PutU32(NFTA_SET_ID, next_set_id_++);
    const uint8_t byteorder[] = {0, 4, 2, 0, 0, 0};  // udata: key byte order big-endian, as nft writes it
    m.Put(NFTA_SET_USERDATA, byteorder, sizeof(byteorder));
    Add(m, line);
    return Ok();
  }
  if (object == "element" && t.size() == 6 && (verb == "add" || verb == "delete")) {
    std::vector<std::string> items = GroupItems(t[5]);
    if (items.empty()) return Unsupported(line, "element list");
    if (is_map) {
      std::vector<std::pair<std::string, uint32_t>> keys;
      std::vector<std::string> jumps;
      for (const auto& item : items) {
        std::vector<std::string> w = Tokens(item);
        const std::string key = w.empty() ? "" : w[0];
        std::optional<IpKey> k;
        if (auto a6 = Ipv6Addr::Parse(key); is_map6 && a6.ok()) k = KeyOf(*a6);
        if (auto a4 = Ipv4Addr::Parse(key); !is_map6 && a4.ok()) k = a4->value();
        if (!k) return Unsupported(line, "map key " + item);
        if (verb == "add" && (w.size() != 4 || w[1] != ":" || w[2] != "jump")) {
          return Unsupported(line, "map element " + item);
        }
        if (verb == "delete" && w.size() != 1) return Unsupported(line, "map key " + item);
        keys.push_back({KeyBytes(*k, key_len), 0});
        jumps.push_back(verb == "add" ? w[3] : "");
      }
      AddElements(line, table, name, 0, keys, jumps, verb == "delete");
      return Ok();
    }
    if (is_set) {
      std::vector<Range> ranges;
      for (const auto& item : items) {
        auto r = is_set6 ? ParseIpv6Range(item) : ParseAddressRange(item);
        if (!r.ok()) return Unsupported(line, r.error().message);
        ranges.push_back(*r);
      }
      if (verb == "add") {
        AddElements(line, table, name, 0, IntervalElements(Merged(ranges), key_len, true), {}, false);
      } else {
        // Each range as it was added (the model never writes a range that
        // merges with another): its start, and the end after it.
        std::sort(ranges.begin(), ranges.end());
        AddElements(line, table, name, 0, IntervalElements(ranges, key_len, false), {}, true);
      }
      return Ok();
    }
    return Unsupported(line, "elements of this set");
  }
  if (object == "rule" && verb == "add") return AddRule(line, table, name, t, 5);
  return Unsupported(line, "command");
}

// One expression of a rule.
template <typename F>
void Expr(Message& m, const char* name, F data) {
  size_t elem = m.Nest(NFTA_LIST_ELEM);
  m.PutString(NFTA_EXPR_NAME, name);
  size_t d = m.Nest(NFTA_EXPR_DATA);
  data(m);
  m.End(d);
  m.End(elem);
}

void Meta(Message& m, uint32_t key) {
  Expr(m, "meta", [&](Message& x) {
    x.PutU32(NFTA_META_DREG, NFT_REG_1);
    x.PutU32(NFTA_META_KEY, key);
  });
}

void Cmp(Message& m, uint32_t op, const std::string& value) {
  Expr(m, "cmp", [&](Message& x) {
    x.PutU32(NFTA_CMP_SREG, NFT_REG_1);
    x.PutU32(NFTA_CMP_OP, op);
    size_t data = x.Nest(NFTA_CMP_DATA);
    x.Put(NFTA_DATA_VALUE, value.data(), value.size());
    x.End(data);
  });
}

void Payload(Message& m, uint32_t base, uint32_t offset, uint32_t len) {
  Expr(m, "payload", [&](Message& x) {
    x.PutU32(NFTA_PAYLOAD_DREG, NFT_REG_1);
    x.PutU32(NFTA_PAYLOAD_BASE, base);
    x.PutU32(NFTA_PAYLOAD_OFFSET, offset);
    x.PutU32(NFTA_PAYLOAD_LEN, len);
  });
}

void Lookup(Message& m, const std::string& set, uint32_t set_id, bool inverted = false) {
  Expr(m, "lookup", [&](Message& x) {
    x.PutString(NFTA_LOOKUP_SET, set);
    x.PutU32(NFTA_LOOKUP_SREG, NFT_REG_1);
    if (set_id) x.PutU32(NFTA_LOOKUP_SET_ID, set_id);
    if (inverted) x.PutU32(NFTA_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
  });
}

void RangeExpr(Message& m, uint32_t op, const std::string& from, const std::string& to) {
  Expr(m, "range", [&](Message& x) {
    x.PutU32(NFTA_RANGE_SREG, NFT_REG_1);
    x.PutU32(NFTA_RANGE_OP, op);
    size_t a = x.Nest(NFTA_RANGE_FROM_DATA);
    x.Put(NFTA_DATA_VALUE, from.data(), from.size());
    x.End(a);
    size_t b = x.Nest(NFTA_RANGE_TO_DATA);
    x.Put(NFTA_DATA_VALUE, to.data(), to.size());
    x.End(b);
  });
}

// A layer-4 protocol as the renderer names it: tcp, udp, sctp, icmp or a
// number (nft_model.cc's NftProto).
std::optional<uint8_t> L4Proto(const std::string& name) {
  if (name == "tcp") return IPPROTO_TCP;
  if (name == "udp") return IPPROTO_UDP;
  if (name == "sctp") return IPPROTO_SCTP;
  if (name == "icmp") return IPPROTO_ICMP;
  if (!name.empty() && name.size() <= 3 && name.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::stoi(name);
    if (n >= 0 && n <= 255) return static_cast<uint8_t>(n);
  }
  return std::nullopt;
}
bool HasPorts(const std::string& name) { return name == "tcp" || name == "udp" || name == "sctp"; }

// The statements nft_model.cc writes, those this encoder knows: ip|ip6
// saddr|daddr [!=] @set; meta l4proto [!=] P; P sport|dport [!=] { ports };
// counter name "c"; log prefix "p"; accept, drop, return, goto|jump chain;
// comment "text". Not (yet): tuple sets (ip . l4proto . port), ICMP types,
// protocol lists: those scripts go through libnftables.
Status BatchWriter::AddRule(const std::string& line, const std::string& table, const std::string& chain,
                            const std::vector<std::string>& t, size_t i) {
  struct AnonSet {
    uint32_t id;
    std::vector<std::pair<std::string, uint32_t>> elements;
  };
  std::vector<AnonSet> anon;  // declared before the rule, in the same batch
  Message rule = New(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  rule.PutString(NFTA_RULE_TABLE, table);
  rule.PutString(NFTA_RULE_CHAIN, chain);
  size_t exprs = rule.Nest(NFTA_RULE_EXPRESSIONS);
  std::string comment;
  bool verdict = false;
  auto more = [&](size_t n) { return i + n <= t.size(); };
  while (i < t.size()) {
    if (verdict && t[i] != "comment") return Unsupported(line, "statement after the verdict: " + t[i]);
    if ((t[i] == "ip" || t[i] == "ip6") && (more(3) || more(4)) && (t[i + 1] == "saddr" || t[i + 1] == "daddr")) {
      // ip|ip6 saddr|daddr [!=] @set
      const bool v6 = t[i] == "ip6";
      const bool neq = more(4) && t[i + 2] == "!=";
      const std::string& set = t[i + (neq ? 3 : 2)];
      if (set.size() < 2 || set[0] != '@') return Unsupported(line, "address match " + set);
      Meta(rule, NFT_META_NFPROTO);
      Cmp(rule, NFT_CMP_EQ, std::string(1, static_cast<char>(v6 ? NFPROTO_IPV6 : NFPROTO_IPV4)));
      if (v6) Payload(rule, NFT_PAYLOAD_NETWORK_HEADER, t[i + 1] == "saddr" ? 8 : 24, 16);
      else Payload(rule, NFT_PAYLOAD_NETWORK_HEADER, t[i + 1] == "saddr" ? 12 : 16, 4);
      Lookup(rule, set.substr(1), 0, neq);
      i += neq ? 4 : 3;
    } else if (t[i] == "meta" && more(3) && t[i + 1] == "l4proto" && L4Proto(t[i + 2])) {
      Meta(rule, NFT_META_L4PROTO);
      Cmp(rule, NFT_CMP_EQ, std::string(1, static_cast<char>(*L4Proto(t[i + 2]))));
      i += 3;
    } else if (t[i] == "meta" && more(4) && t[i + 1] == "l4proto" && t[i + 2] == "!=" && L4Proto(t[i + 3])) {
      Meta(rule, NFT_META_L4PROTO);
      Cmp(rule, NFT_CMP_NEQ, std::string(1, static_cast<char>(*L4Proto(t[i + 3]))));
      i += 4;
    } else if (more(3) && HasPorts(t[i]) && (t[i + 1] == "dport" || t[i + 1] == "sport") &&
               (t[i + 2].front() == '{' || (more(4) && t[i + 2] == "!=" && t[i + 3].front() == '{'))) {
      // P dport|sport [!=] { ports }; nft_model.cc writes the protocol with
      // every port term, so each one carries its protocol check.
      const bool neq = t[i + 2] == "!=";
      std::vector<std::string> items = GroupItems(t[i + (neq ? 3 : 2)]);
      if (items.empty()) return Unsupported(line, "port list");
      std::vector<Range> ports;
      for (const auto& item : items) {
        auto r = ParsePortRange(item);
        if (!r.ok()) return Unsupported(line, r.error().message);
        ports.push_back(*r);
      }
      if (neq && ports.size() > 1) return Unsupported(line, "a negated port list");
      Meta(rule, NFT_META_L4PROTO);
      Cmp(rule, NFT_CMP_EQ, std::string(1, static_cast<char>(*L4Proto(t[i]))));
      Payload(rule, NFT_PAYLOAD_TRANSPORT_HEADER, t[i + 1] == "dport" ? 2 : 0, 2);
      // As nft evaluates a set of one element: a comparison.
      if (ports.size() == 1 && ports[0].first == ports[0].second) {
        Cmp(rule, neq ? NFT_CMP_NEQ : NFT_CMP_EQ, KeyBytes(ports[0].first, 2));
      } else if (ports.size() == 1 && neq) {
        RangeExpr(rule, NFT_RANGE_NEQ, KeyBytes(ports[0].first, 2), KeyBytes(ports[0].second, 2));
      } else if (ports.size() == 1) {
        Cmp(rule, NFT_CMP_GTE, KeyBytes(ports[0].first, 2));
        Cmp(rule, NFT_CMP_LTE, KeyBytes(ports[0].second, 2));
      } else {
        AnonSet a{next_set_id_++, IntervalElements(Merged(ports), 2, true)};
        Lookup(rule, "__set%d", a.id);
        anon.push_back(std::move(a));
      }
      i += neq ? 4 : 3;
    } else if (t[i] == "counter" && more(3) && t[i + 1] == "name") {
      Expr(rule, "objref", [&](Message& x) {
        x.PutU32(NFTA_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
        x.PutString(NFTA_OBJREF_IMM_NAME, t[i + 2]);
      });
      i += 3;
    } else if (t[i] == "log" && more(3) && t[i + 1] == "prefix") {
      Expr(rule, "log", [&](Message& x) { x.PutString(NFTA_LOG_PREFIX, t[i + 2]); });
      i += 3;
    } else if (t[i] == "accept" || t[i] == "drop" || t[i] == "return" ||
               ((t[i] == "goto" || t[i] == "jump") && more(2))) {
      // goto: a tier's chain continues in the next tier's (nft_model.h).
      const int32_t code = t[i] == "accept" ? NF_ACCEPT
                           : t[i] == "drop" ? NF_DROP
                           : t[i] == "return" ? NFT_RETURN
                           : t[i] == "goto" ? NFT_GOTO
                                            : NFT_JUMP;
      const std::string target = code == NFT_GOTO || code == NFT_JUMP ? t[i + 1] : "";
      Expr(rule, "immediate", [&](Message& x) {
        x.PutU32(NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        size_t data = x.Nest(NFTA_IMMEDIATE_DATA);
        size_t v = x.Nest(NFTA_DATA_VERDICT);
        x.PutU32(NFTA_VERDICT_CODE, static_cast<uint32_t>(code));
        if (!target.empty()) x.PutString(NFTA_VERDICT_CHAIN, target);
        x.End(v);
        x.End(data);
      });
      verdict = true;
      i += target.empty() ? 1 : 2;
    } else if (t[i] == "comment" && more(2) && i + 2 == t.size()) {
      comment = t[i + 1];
      i += 2;
    } else {
      return Unsupported(line, "rule statement \"" + t[i] + "\"");
    }
  }
  rule.End(exprs);
  if (!comment.empty()) {
    if (comment.size() > 250) return Unsupported(line, "comment too long");
    // nft's rule userdata: a TLV of type 0 (comment), NUL-terminated.
    std::string tlv;
    tlv += static_cast<char>(0);
    tlv += static_cast<char>(comment.size() + 1);
    tlv += comment;
    tlv += '\0';
    rule.Put(NFTA_RULE_USERDATA, tlv.data(), tlv.size());
  }
  for (auto& a : anon) {
    Message set = New(NFT_MSG_NEWSET, NLM_F_CREATE);
    set.PutString(NFTA_SET_TABLE, table);
    set.PutString(NFTA_SET_NAME, "__set%d");
    set.PutU32(NFTA_SET_FLAGS, NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_INTERVAL);
    set.PutU32(NFTA_SET_KEY_TYPE, 13);  // nft's inet_service datatype
    set.PutU32(NFTA_SET_KEY_LEN, 2);
    set.PutU32(NFTA_SET_ID, a.id);
    size_t desc = set.Nest(NFTA_SET_DESC);
    set.PutU32(NFTA_SET_DESC_SIZE, static_cast<uint32_t>(a.elements.size()));
    set.End(desc);
    Add(set, line);
    AddElements(line, table, "__set%d", a.id, a.elements, {}, false);
  }
  Add(rule, line);
  return Ok();
}

}  // namespace

Result<std::vector<uint8_t>> EncodeNftBatch(const std::string& script, uint32_t first_seq) {
  BatchWriter w(first_seq);
  std::stringstream ss(script);
  std::string line, last;
  while (std::getline(ss, line)) {
    TERWAY_TRY(w.Command(line));
    if (!line.empty()) last = line;
  }
  return w.Finish(last);
}

namespace {

// Sends the batch and reads what the kernel answered. nfnetlink runs the
// whole batch inside our sendmsg, so every answer is queued when it returns.
Status Talk(const std::vector<uint8_t>& batch, const std::map<uint32_t, std::string>& commands, uint32_t last_seq) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) return Errorf(ErrorCode::kKernel, "nft netlink: socket: {}", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) < 0) {
    return Errorf(ErrorCode::kKernel, "nft netlink: bind: {}", std::strerror(errno));
  }
  // A batch is one datagram: the send buffer must hold it (root may force).
  int size = static_cast<int>(std::max<size_t>(batch.size() + 4096, 1 << 20));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  }
  int one = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));  // errors without our message echoed
  int rcv = 1 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv));
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  ssize_t sent = sendto(fd, batch.data(), batch.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel));
  if (sent < 0 || static_cast<size_t>(sent) != batch.size()) {
    return Errorf(ErrorCode::kKernel, "nft netlink: sending {} bytes: {}", batch.size(),
                  sent < 0 ? std::strerror(errno) : "short write");
  }
  bool committed = false;
  std::string errors;
  std::vector<uint8_t> buf(1 << 16);
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n < 0) return Errorf(ErrorCode::kKernel, "nft netlink: reading the answer: {}", std::strerror(errno));
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n));
         h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != NLMSG_ERROR) continue;
      const auto* e = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(h));
      if (e->error == 0) {
        committed = committed || h->nlmsg_seq == last_seq;
        continue;
      }
      auto cmd = commands.find(h->nlmsg_seq);
      errors += fmt::format("{}{}: {}", errors.empty() ? "" : "; ",
                            cmd == commands.end() ? std::string("the batch") : cmd->second.substr(0, 160),
                            std::strerror(-e->error));
    }
  }
  if (!errors.empty()) return Errorf(ErrorCode::kKernel, "nft netlink: {}", errors);
  if (!committed) return Errorf(ErrorCode::kKernel, "nft netlink: no acknowledgement of the transaction");
  return Ok();
}

}  // namespace

Status RunNftBatchNetlink(const std::string& netns, const std::string& script) {
  BatchWriter w(1);
  std::stringstream ss(script);
  std::string line;
  while (std::getline(ss, line)) TERWAY_TRY(w.Command(line));
  if (w.commands().empty()) return Ok();
  std::map<uint32_t, std::string> commands = w.commands();
  const uint32_t last = w.last_seq();
  std::vector<uint8_t> batch = w.Finish("");
  auto run = [&]() { return Talk(batch, commands, last); };
  if (netns.empty()) return run();
  Status s = netlink::RunInNetns(netns, run);
  if (!s.ok()) return std::move(s).error().Wrap("in network namespace " + netns);
  return Ok();
}

}  // namespace terway::policy
