// netlink::Handle: policy routing rules.
#include "netlink/handle.h"

#include <linux/fib_rules.h>

#include "netlink/handle_internal.h"

namespace terway::netlink {

using namespace internal;

namespace {

std::string Describe(const Rule& r) {
  std::string s = "rule";
  if (r.priority) s += " pref " + std::to_string(r.priority);
  if (r.src) s += " from " + r.src->ToString();
  if (r.dst) s += " to " + r.dst->ToString();
  if (!r.iif.empty()) s += " iif " + r.iif;
  if (!r.oif.empty()) s += " oif " + r.oif;
  if (r.fwmark) s += " fwmark " + std::to_string(r.fwmark);
  s += " lookup " + std::to_string(r.table);
  return s;
}

}  // namespace

// ---- rules ----------------------------------------------------------------

namespace {
Result<RulePtr> MakeRule(const Rule& r) {
  RulePtr rule(rtnl_rule_alloc());
  if (!rule) return OutOfMemory();
  int family = r.EffectiveFamily();
  rtnl_rule_set_family(rule.get(), family);
  if (r.priority) rtnl_rule_set_prio(rule.get(), r.priority);
  for (auto [p, setter] : {std::pair{&r.src, &rtnl_rule_set_src}, std::pair{&r.dst, &rtnl_rule_set_dst}}) {
    if (!*p) continue;
    if ((*p)->family() != family) {
      return Errorf(ErrorCode::kInvalidArgument, "{}: addresses of two families", Describe(r));
    }
    NlAddrPtr a = ToNlAddr((*p)->addr, (*p)->prefix_len);
    if (!a || setter(rule.get(), a.get()) < 0) return OutOfMemory();
  }
  rtnl_rule_set_table(rule.get(), r.table);
  rtnl_rule_set_action(rule.get(), FR_ACT_TO_TBL);
  if (!r.iif.empty()) rtnl_rule_set_iif(rule.get(), r.iif.c_str());
  if (!r.oif.empty()) rtnl_rule_set_oif(rule.get(), r.oif.c_str());
  if (r.fwmark) rtnl_rule_set_mark(rule.get(), r.fwmark);
  if (r.fwmask) rtnl_rule_set_mask(rule.get(), r.fwmask);
  return rule;
}

Status SendRule(Handle::Socket& s, const Rule& r, bool add, int flags, const std::string& what) {
  TERWAY_ASSIGN_OR_RETURN(RulePtr rule, MakeRule(r));
  nl_msg* raw = nullptr;
  int rc = add ? rtnl_rule_build_add_request(rule.get(), flags, &raw)
               : rtnl_rule_build_delete_request(rule.get(), flags, &raw);
  NlMsgPtr msg(raw);
  if (rc < 0) return Errorf(ErrorCode::kInvalidArgument, "{} {}: {}", what, Describe(r), nl_geterror(rc));
  return Transact(s, msg.get(), what + " " + Describe(r));
}
}  // namespace

// NLM_F_EXCL makes the kernel refuse an identical rule with EEXIST (it would
// otherwise happily stack duplicates), which is what EnsureRule relies on.
Status Handle::AddRule(const Rule& r) { return SendRule(*s_, r, true, NLM_F_EXCL, "adding"); }
Status Handle::EnsureRule(const Rule& r) {
  Status s = AddRule(r);
  if (!s.ok() && s.error().code == ErrorCode::kAlreadyExists) return Ok();
  return s;
}
Status Handle::DeleteRule(const Rule& r) { return SendRule(*s_, r, false, 0, "deleting"); }
Status Handle::DeleteRuleIfExists(const Rule& r) {
  Status s = DeleteRule(r);
  if (IsNotFound(s)) return Ok();
  return s;
}

Result<std::vector<Rule>> Handle::ListRules(int family) {
  TERWAY_ASSIGN_OR_RETURN(NlCachePtr cache, DumpWithRetry(*s_, "listing rules", [&](nl_cache** c) {
                            return rtnl_rule_alloc_cache(s_->sk, family ? family : AF_UNSPEC, c);
                          }));
  std::vector<Rule> out;
  ForEach<rtnl_rule>(cache.get(), [&](rtnl_rule* rr) {
    Rule r;
    r.family = rtnl_rule_get_family(rr);
    if (family && r.family != family) return;
    r.priority = rtnl_rule_get_prio(rr);
    if (nl_addr* a = rtnl_rule_get_src(rr)) {
      if (auto ip = FromNlAddr(a, r.family)) r.src = InetPrefix(*ip, nl_addr_get_prefixlen(a));
    }
    if (nl_addr* a = rtnl_rule_get_dst(rr)) {
      if (auto ip = FromNlAddr(a, r.family)) r.dst = InetPrefix(*ip, nl_addr_get_prefixlen(a));
    }
    r.table = rtnl_rule_get_table(rr);
    if (const char* i = rtnl_rule_get_iif(rr)) r.iif = i;
    if (const char* o = rtnl_rule_get_oif(rr)) r.oif = o;
    r.fwmark = rtnl_rule_get_mark(rr);
    r.fwmask = rtnl_rule_get_mask(rr);
    out.push_back(r);
  });
  return out;
}

}  // namespace terway::netlink
