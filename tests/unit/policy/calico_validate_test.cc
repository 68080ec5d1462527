// The Calico v3 front end as Calico's validator: each field accepted in
// its valid forms and refused in its invalid ones with an error naming the
// field (docs/calico-semantics.md 2.7); the translation of an EntityRule
// into selectors exactly as Calico's (2.3); and what is valid but cannot be
// enforced, enforced on the safe side with a note.
#include <limits>

#include <gtest/gtest.h>

#include "world.h"

namespace terway::policy {
namespace {

using Json = nlohmann::json;

// A NetworkPolicy x/p (or a GlobalNetworkPolicy g) around one rule.
Json InNp(const std::string& direction, const std::string& rule, const std::string& kind = "NetworkPolicy") {
  std::string meta = kind == "NetworkPolicy" ? R"js({"name":"p","namespace":"x"})js" : R"js({"name":"g"})js";
  return Json::parse("{\"kind\":\"" + kind + "\",\"metadata\":" + meta + ",\"spec\":{\"" + direction + "\":[" + rule +
                     "]}}");
}

struct RuleCase {
  const char* direction;
  const char* rule;
  const char* error;  // "" = valid
  const char* kind = "NetworkPolicy";
};

const RuleCase kRuleCases[] = {
    // action
    {"ingress", R"js({"action":"Allow"})js", ""},
    {"ingress", R"js({"action":"Deny"})js", ""},
    {"ingress", R"js({"action":"Log"})js", ""},
    {"ingress", R"js({"action":"Pass"})js", ""},
    {"ingress", R"js({})js", "spec.ingress[0].action: required"},
    {"ingress", R"js({"action":"allow"})js", "spec.ingress[0].action: \"allow\" (want Allow, Deny, Log or Pass)"},
    // protocol / notProtocol: exact names, numbers 1-255, numeric strings
    {"ingress", R"js({"action":"Allow","protocol":"TCP"})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"UDPLite"})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"ICMPv6"})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":47})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"47"})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":255})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"tcp"})js", "spec.ingress[0].protocol: \"tcp\" is not a Calico protocol"},
    {"ingress", R"js({"action":"Allow","protocol":0})js", "spec.ingress[0].protocol: protocol number 0 is outside 1-255"},
    {"ingress", R"js({"action":"Allow","protocol":256})js", "protocol number 256 is outside 1-255"},
    {"ingress", R"js({"action":"Allow","protocol":"GRE"})js", "\"GRE\" is not a Calico protocol"},
    {"ingress", R"js({"action":"Allow","protocol":true})js", "spec.ingress[0].protocol: want a protocol name or number"},
    {"ingress", R"js({"action":"Allow","notProtocol":"UDP"})js", ""},
    {"ingress", R"js({"action":"Allow","notProtocol":0})js", "spec.ingress[0].notProtocol: protocol number 0"},
    // icmp / notICMP
    {"ingress", R"js({"action":"Allow","protocol":"ICMP","icmp":{"type":8,"code":0}})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"ICMPv6","icmp":{"type":128}})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":1,"icmp":{"type":8}})js", ""},
    {"ingress", R"js({"action":"Allow","icmp":{"type":8}})js", "spec.ingress[0].icmp: needs protocol ICMP or ICMPv6"},
    {"ingress", R"js({"action":"Allow","protocol":"TCP","icmp":{"type":8}})js", "needs protocol ICMP or ICMPv6"},
    {"ingress", R"js({"action":"Allow","protocol":"ICMP","icmp":{"code":0}})js", "spec.ingress[0].icmp.code: a code needs a type"},
    {"ingress", R"js({"action":"Allow","protocol":"ICMP","icmp":{"type":255}})js", "spec.ingress[0].icmp.type: want an ICMP type 0-254"},
    {"ingress", R"js({"action":"Allow","protocol":"ICMP","icmp":{"type":3,"code":256}})js", "icmp.code: want an ICMP code 0-255"},
    {"ingress", R"js({"action":"Deny","notICMP":{"type":3,"code":1}})js", ""},
    {"ingress", R"js({"action":"Deny","notICMP":{"code":1}})js", "spec.ingress[0].notICMP.code: a code needs a type"},
    // ipVersion
    {"ingress", R"js({"action":"Allow","ipVersion":4})js", ""},
    {"ingress", R"js({"action":"Allow","ipVersion":6})js", ""},
    {"ingress", R"js({"action":"Allow","ipVersion":5})js", "spec.ingress[0].ipVersion: want 4 or 6"},
    {"ingress", R"js({"action":"Allow","ipVersion":6,"protocol":"ICMP"})js", "spec.ingress[0].protocol: ICMP is IPv4"},
    {"ingress", R"js({"action":"Allow","ipVersion":4,"protocol":"ICMPv6"})js", "spec.ingress[0].protocol: ICMPv6 is IPv6"},
    {"ingress", R"js({"action":"Allow","ipVersion":6,"notProtocol":"ICMP"})js", "spec.ingress[0].notProtocol: ICMP is IPv4"},
    // nets / notNets
    {"ingress", R"js({"action":"Allow","source":{"nets":["10.0.0.0/8","198.18.1.1"]}})js", ""},
    {"egress", R"js({"action":"Allow","destination":{"notNets":["10.0.0.0/8"]}})js", ""},
    {"ingress", R"js({"action":"Allow","ipVersion":6,"source":{"nets":["fd00::/8"]}})js", ""},
    {"ingress", R"js({"action":"Allow","source":{"nets":"10.0.0.0/8"}})js", "spec.ingress[0].source.nets: want a list"},
    {"ingress", R"js({"action":"Allow","source":{"nets":["10.0.0.1/8"]}})js", "source.nets[0]: \"10.0.0.1/8\" has host bits set"},
    {"ingress", R"js({"action":"Allow","source":{"nets":["fd00::1/8"]}})js", "\"fd00::1/8\" has host bits set"},
    {"ingress", R"js({"action":"Allow","source":{"nets":["nope"]}})js", "source.nets[0]: \"nope\" is not a CIDR"},
    {"ingress", R"js({"action":"Allow","source":{"nets":["10.0.0.0/8"]},"destination":{"notNets":["fd00::/8"]}})js",
     "spec.ingress[0]: mixes IPv4 and IPv6 CIDRs"},
    {"ingress", R"js({"action":"Allow","ipVersion":4,"source":{"nets":["fd00::/8"]}})js", "other IP family than ipVersion 4"},
    {"ingress", R"js({"action":"Allow","source":{"notNets":["0.0.0.0/0"]}})js", "source.notNets[0]: a catch-all notNets"},
    {"ingress", R"js({"action":"Allow","source":{"notNets":["::/0"]}})js", "source.notNets[0]: a catch-all notNets"},
    // selector, notSelector, namespaceSelector
    {"ingress", R"js({"action":"Allow","source":{"selector":"a == 'b'","notSelector":"c == 'd'"}})js", ""},
    {"ingress", R"js({"action":"Allow","source":{"namespaceSelector":"global()"}})js", ""},
    {"ingress", R"js({"action":"Allow","source":{"namespaceSelector":"all()"}})js", ""},
    {"ingress", R"js({"action":"Allow","source":{"selector":"a =="}})js", "spec.ingress[0].source.selector: selector \"a ==\""},
    {"ingress", R"js({"action":"Allow","source":{"selector":"global()"}})js", "source.selector: global() is allowed only as"},
    {"ingress", R"js({"action":"Allow","source":{"notSelector":"global()"}})js", "source.notSelector: global() is allowed only"},
    {"ingress", R"js({"action":"Allow","source":{"namespaceSelector":"global() && a == 'b'"}})js",
     "source.namespaceSelector: global() must be the whole namespaceSelector"},
    // ports / notPorts, both sides
    {"ingress", R"js({"action":"Allow","protocol":"TCP","destination":{"ports":[80,"81","82:90","http"]}})js", ""},
    {"ingress", R"js({"action":"Allow","protocol":"UDP","source":{"ports":[53],"notPorts":["1:1023"]}})js", ""},
    {"ingress", R"js({"action":"Allow","destination":{"ports":["http"]}})js", ""},
    {"ingress", R"js({"action":"Allow","destination":{"ports":[80]}})js",
     "spec.ingress[0].destination.ports: numeric ports need protocol TCP, UDP or SCTP"},
    {"ingress", R"js({"action":"Allow","source":{"notPorts":["1:1023"]}})js", "source.notPorts: numeric ports need protocol"},
    {"ingress", R"js({"action":"Allow","notProtocol":"TCP","destination":{"ports":[80]}})js", "numeric ports need protocol"},
    {"ingress", R"js({"action":"Allow","protocol":"ICMP","destination":{"ports":[80]}})js",
     "destination.ports: protocol ICMP has no ports"},
    {"ingress", R"js({"action":"Allow","protocol":"UDPLite","destination":{"ports":["http"]}})js", "protocol UDPLite has no ports"},
    {"ingress", R"js({"action":"Allow","protocol":47,"source":{"notPorts":[1]}})js", "source.notPorts: protocol 47 has no ports"},
    {"ingress", R"js({"action":"Allow","protocol":"TCP","destination":{"ports":[0]}})js", "destination.ports[0]: port 0 is outside"},
    {"ingress", R"js({"action":"Allow","protocol":"TCP","destination":{"ports":[65536]}})js", "port 65536 is outside 1-65535"},
    {"ingress", R"js({"action":"Allow","protocol":"TCP","destination":{"ports":["90:80"]}})js", "bad port range 90:80"},
    {"ingress", R"js({"action":"Allow","protocol":"TCP","destination":{"ports":["1:2:3"]}})js", "bad port \"1:2:3\""},
    {"ingress", R"js({"action":"Allow","destination":{"ports":["web port"]}})js", "\"web port\" is not a port name"},
    // serviceAccounts
    {"ingress", R"js({"action":"Allow","source":{"serviceAccounts":{"names":["api"],"selector":"team == 'a'"}}})js", ""},
    {"ingress", R"js({"action":"Allow","source":{"serviceAccounts":{"names":"api"}}})js",
     "source.serviceAccounts.names: want a list"},
    {"ingress", R"js({"action":"Allow","source":{"serviceAccounts":{"selector":"a ="}}})js", "serviceAccounts.selector"},
    // services
    {"ingress", R"js({"action":"Allow","source":{"services":{"name":"db","namespace":"y"}}})js", ""},
    {"egress", R"js({"action":"Allow","destination":{"services":{"name":"db"}}})js", ""},
    {"egress", R"js({"action":"Allow","destination":{"services":{"namespace":"y"}}})js",
     "destination.services.name: want the Service's name"},
    {"egress", R"js({"action":"Allow","destination":{"services":{"name":"db"},"selector":"a == 'b'"}})js",
     "destination.services: cannot be combined with selector"},
    {"egress", R"js({"action":"Allow","destination":{"services":{"name":"db"},"nets":["10.0.0.0/8"]}})js",
     "cannot be combined with nets"},
    {"egress", R"js({"action":"Allow","source":{"services":{"name":"db"}}})js",
     "spec.egress[0].source.services: only ingress rules may match a source Service"},
    {"ingress", R"js({"action":"Allow","destination":{"services":{"name":"db"}}})js",
     "spec.ingress[0].destination.services: only egress rules"},
    {"egress", R"js({"action":"Allow","protocol":"TCP","destination":{"services":{"name":"db"},"ports":[80]}})js",
     "cannot be combined with destination ports"},
    {"egress", R"js({"action":"Allow","destination":{"services":{"name":"db"}}})js",
     "destination.services.namespace: a GlobalNetworkPolicy must name", "GlobalNetworkPolicy"},
    // http (valid only on Allow ingress over TCP; enforced as allowing nothing)
    {"ingress", R"js({"action":"Allow","protocol":"TCP","http":{"methods":["GET"],"paths":[{"prefix":"/a"}]}})js", ""},
    {"ingress", R"js({"action":"Deny","http":{"methods":["GET"]}})js", "spec.ingress[0].http: only Allow rules"},
    {"egress", R"js({"action":"Allow","http":{"methods":["GET"]}})js", "spec.egress[0].http: only ingress rules"},
    {"ingress", R"js({"action":"Allow","protocol":"UDP","http":{"methods":["GET"]}})js", "HTTP needs protocol TCP"},
    {"ingress", R"js({"action":"Allow","http":{"paths":[{"exact":"/a","prefix":"/"}]}})js",
     "spec.ingress[0].http.paths[0]: want exactly one of exact or prefix"},
    // metadata: accepted, ignored
    {"ingress", R"js({"action":"Allow","metadata":{"annotations":{"example.com/owner":"team-a","note":"x"}}})js", ""},
    {"ingress", R"js({"action":"Allow","metadata":{"annotations":{"-bad":"x"}}})js",
     "spec.ingress[0].metadata.annotations: \"-bad\" is not a valid key"},
    {"ingress", R"js({"action":"Allow","metadata":{"annotations":{"a":1}}})js", "metadata.annotations.a: want a string"},
};

TEST(CalicoValidate, EachRuleFieldValidAndInvalid) {
  for (const auto& c : kRuleCases) {
    Json obj = InNp(c.direction, c.rule, c.kind);
    auto p = PolicyFromCalico(obj);
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(p.ok()) << c.rule << ": " << p.error().ToString();
      continue;
    }
    ASSERT_FALSE(p.ok()) << c.rule << " was accepted";
    EXPECT_NE(p.error().ToString().find(c.error), std::string::npos) << c.rule << "\n  got: " << p.error().ToString();
    EXPECT_NE(p.error().ToString().find(std::string(c.kind) + " "), std::string::npos) << p.error().ToString();
  }
}

struct SpecCase {
  const char* object;
  const char* error;  // "" = valid
};

const SpecCase kSpecCases[] = {
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"tier":"security","order":10.5,
        "selector":"app == 'a'","serviceAccountSelector":"team == 'x'","types":["Ingress","Egress"],
        "performanceHints":["AssumeNeededOnEveryNode"]}})js",
     ""},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"namespaceSelector":"all()","doNotTrack":true,
        "applyOnForward":true,"ingress":[{"action":"Allow"}]}})js",
     ""},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"preDNAT":true,"applyOnForward":true,
        "ingress":[{"action":"Deny"}]}})js",
     ""},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"doNotTrack":false,"applyOnForward":false}})js", ""},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"types":["Ingress","Ingress"]}})js",
     "spec.types: Ingress is listed twice"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"types":["Both"]}})js", "spec.types: unknown type Both"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"types":"Ingress"}})js", "spec.types: want a list"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"namespaceSelector":"all()"}})js",
     "spec.namespaceSelector: not a field of a NetworkPolicy"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"doNotTrack":true}})js", "spec.doNotTrack: not a field"},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"doNotTrack":true}})js",
     "spec.doNotTrack: needs applyOnForward: true"},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"doNotTrack":true,"preDNAT":true,"applyOnForward":true}})js",
     "spec.doNotTrack: cannot be combined with preDNAT"},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"preDNAT":true,"applyOnForward":true,
        "egress":[{"action":"Deny"}]}})js",
     "spec.preDNAT: a preDNAT policy has no egress rules"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"tier":"Sec.urity"}})js",
     "spec.tier: \"Sec.urity\" is not a tier name"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"order":"1"}})js", "spec.order: want a number"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"performanceHints":["Fast"]}})js",
     "spec.performanceHints: unknown hint \"Fast\""},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"selector":"global()"}})js",
     "spec.selector: global() is allowed only as a rule's whole namespaceSelector"},
    {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"namespaceSelector":"global()"}})js",
     "spec.namespaceSelector: global() is allowed only"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"ingress":{"action":"Allow"}}})js",
     "spec.ingress: want a list of rules"},
    {R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":{"ingress":["Allow"]}})js", "spec.ingress[0]: want an object"},
    {R"js({"kind":"NetworkPolicy","metadata":{"namespace":"x"},"spec":{}})js", "metadata.name: empty"},
};

TEST(CalicoValidate, EachSpecFieldValidAndInvalid) {
  for (const auto& c : kSpecCases) {
    auto p = PolicyFromCalico(Json::parse(c.object));
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(p.ok()) << c.object << ": " << p.error().ToString();
      continue;
    }
    ASSERT_FALSE(p.ok()) << c.object << " was accepted";
    EXPECT_NE(p.error().ToString().find(c.error), std::string::npos) << c.object << "\n  got: " << p.error().ToString();
  }
}

TEST(CalicoValidate, TypesDefaultAsCalicoDefaultsThem) {
  struct Case {
    const char* spec;
    bool in, eg;
  };
  const Case cases[] = {
      {R"js({})js", true, false},
      {R"js({"ingress":[{"action":"Allow"}]})js", true, false},
      {R"js({"egress":[{"action":"Allow"}]})js", false, true},
      {R"js({"ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]})js", true, true},
      {R"js({"egress":[],"types":[]})js", true, false},
      {R"js({"types":["Egress"],"ingress":[{"action":"Allow"}]})js", false, true},
  };
  for (const auto& c : cases) {
    auto p = PolicyFromCalico(Json::parse(std::string(R"js({"kind":"NetworkPolicy","metadata":{"name":"p"},"spec":)js") +
                                          c.spec + "}"));
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    EXPECT_EQ(p->applies_ingress, c.in) << c.spec;
    EXPECT_EQ(p->applies_egress, c.eg) << c.spec;
  }
  // doNotTrack / preDNAT policies are for host endpoints: no pod is subject.
  auto untracked = PolicyFromCalico(Json::parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{
      "doNotTrack":true,"applyOnForward":true,"ingress":[{"action":"Deny"}]}})js"));
  ASSERT_TRUE(untracked.ok());
  EXPECT_FALSE(untracked->applies_ingress || untracked->applies_egress);
}

// The selectors a rule's EntityRule becomes, as Calico's rules.go builds
// them (docs/calico-semantics.md 2.3), and the policy subject.
TEST(CalicoValidate, SelectorTranslationIsCalicos) {
  struct Case {
    const char* kind;
    const char* source;
    const char* selector;      // "" = none
    const char* not_selector;  // "" = none
  };
  const Case cases[] = {
      {"NetworkPolicy", R"js({"selector":"app == 'a'"})js", "(projectcalico.org/namespace == 'x' && app == 'a')", ""},
      {"NetworkPolicy", R"js({"selector":"app == 'a'","namespaceSelector":"team == 't'"})js",
       "(pcns.team == 't' && app == 'a')", ""},
      {"NetworkPolicy", R"js({"namespaceSelector":"all()"})js", "has(projectcalico.org/namespace)", ""},
      {"NetworkPolicy", R"js({"namespaceSelector":"global()","selector":"role == 'x'"})js",
       "(!(has(projectcalico.org/namespace)) && role == 'x')", ""},
      // notSelector alone in a namespaced policy: scoped by the namespace
      // clause (folded); in a global one: a separate, unscoped not-in set.
      {"NetworkPolicy", R"js({"notSelector":"app == 'a'"})js",
       "(projectcalico.org/namespace == 'x' && !(app == 'a'))", ""},
      {"GlobalNetworkPolicy", R"js({"notSelector":"app == 'a'"})js", "", "app == 'a'"},
      {"GlobalNetworkPolicy", R"js({"selector":"app == 'a'","notSelector":"tier == 'b'"})js",
       "(app == 'a' && !(tier == 'b'))", ""},
      {"GlobalNetworkPolicy", R"js({"nets":["10.0.0.0/8"]})js", "", ""},
      {"NetworkPolicy", R"js({"nets":["10.0.0.0/8"]})js", "", ""},
      {"NetworkPolicy", R"js({"serviceAccounts":{"names":["api","web"],"selector":"team == 'a'"}})js",
       "(projectcalico.org/namespace == 'x' && (pcsa.team == 'a' && projectcalico.org/serviceaccount in {'api', 'web'}))",
       ""},
      {"GlobalNetworkPolicy", R"js({"serviceAccounts":{"names":["api"]},"selector":"app == 'a'"})js",
       "(projectcalico.org/serviceaccount in {'api'} && app == 'a')", ""},
  };
  for (const auto& c : cases) {
    auto p = PolicyFromCalico(InNp("ingress", std::string(R"js({"action":"Allow","source":)js") + c.source + "}", c.kind));
    ASSERT_TRUE(p.ok()) << p.error().ToString();
    ASSERT_EQ(p->ingress.size(), 1u);
    ASSERT_EQ(p->ingress[0].peers.size(), 1u) << c.source;
    const Peer& peer = p->ingress[0].peers[0];
    EXPECT_EQ(peer.selector ? peer.selector->ToString() : "", c.selector) << c.kind << " " << c.source;
    EXPECT_EQ(peer.not_selector ? peer.not_selector->ToString() : "", c.not_selector) << c.kind << " " << c.source;
  }
  auto np = PolicyFromCalico(Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},
      "spec":{"selector":"app == 'a'","serviceAccountSelector":"team == 't'"}})js"));
  ASSERT_TRUE(np.ok());
  EXPECT_EQ(np->subject.Key(), "calico{((projectcalico.org/namespace == 'x' && app == 'a') && pcsa.team == 't')}");
  auto gnp = PolicyFromCalico(Json::parse(R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},
      "spec":{"namespaceSelector":"ns == 'y'","serviceAccountSelector":"all()"}})js"));
  ASSERT_TRUE(gnp.ok());
  EXPECT_EQ(gnp->subject.Key(), "calico{(pcns.ns == 'y' && has(projectcalico.org/serviceaccount))}");
}

TEST(CalicoValidate, UnenforceableCriteriaFailClosedPerRule) {
  auto p = PolicyFromCalico(Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "ingress":[{"action":"Allow","protocol":"TCP","http":{"methods":["GET"]}},
                 {"action":"Deny","protocol":"TCP","source":{"selector":"a == 'b'","domains":["example.com"]}},
                 {"action":"Log","frobnicate":1},
                 {"action":"Pass","color":"blue"},
                 {"action":"Allow"}]}})js"));
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  ASSERT_EQ(p->ingress.size(), 5u);
  EXPECT_TRUE(p->ingress[0].matches_nothing);   // an Allow we cannot enforce allows nothing
  EXPECT_FALSE(p->ingress[1].matches_nothing);  // a Deny drops the criterion: denies more
  ASSERT_EQ(p->ingress[1].peers.size(), 1u);
  EXPECT_TRUE(p->ingress[1].peers[0].selector.has_value());
  EXPECT_TRUE(p->ingress[2].matches_nothing);   // a Log is dropped
  EXPECT_FALSE(p->ingress[3].matches_nothing);  // a Pass becomes a Deny of all it could match:
  EXPECT_EQ(p->ingress[3].action, Action::kDeny);  // passing more could let a later tier allow
  EXPECT_FALSE(p->ingress[4].matches_nothing);
  ASSERT_EQ(p->fail_closed.size(), 4u);
  EXPECT_EQ(p->fail_closed[0].where, "spec.ingress[0].http");
  EXPECT_NE(p->fail_closed[0].why.find("L7 proxy"), std::string::npos);
  EXPECT_EQ(p->fail_closed[0].enforced_as, "the rule allows nothing; the policy still isolates the pods it selects");
  EXPECT_EQ(p->fail_closed[1].where, "spec.ingress[1].source.domains");
  EXPECT_NE(p->fail_closed[1].enforced_as.find("denies everything else it matches"), std::string::npos);
  EXPECT_EQ(p->fail_closed[2].where, "spec.ingress[2].frobnicate");
  EXPECT_NE(p->fail_closed[2].enforced_as.find("Log rule is dropped"), std::string::npos);
  EXPECT_EQ(p->fail_closed[3].where, "spec.ingress[3].color");
  EXPECT_NE(p->fail_closed[3].enforced_as.find("Pass is enforced as a Deny"), std::string::npos);
  EXPECT_TRUE(p->applies_ingress);
}

TEST(CalicoValidate, IPv6RulesAreReadForTheDualStackDatapath) {
  auto p = PolicyFromCalico(Json::parse(R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{
      "ingress":[{"action":"Deny","ipVersion":6},{"action":"Deny","protocol":"ICMPv6","icmp":{"type":128,"code":0}},
                 {"action":"Deny","source":{"nets":["fd00::/8","fd01::1"],"notNets":["fd00::/64"]}},
                 {"action":"Deny","protocol":58},{"action":"Allow","ipVersion":4}]}})js"));
  ASSERT_TRUE(p.ok()) << p.error().ToString();
  ASSERT_EQ(p->ingress.size(), 5u);
  for (const auto& r : p->ingress) EXPECT_FALSE(r.matches_nothing);
  EXPECT_EQ(p->ingress[0].ip_version, 6);
  EXPECT_EQ(p->ingress[1].protocol, Protocol::kICMPv6);
  ASSERT_TRUE(p->ingress[1].icmp);
  EXPECT_EQ(p->ingress[1].icmp->type, 128);
  ASSERT_EQ(p->ingress[2].peers.size(), 1u);
  const Peer& peer = p->ingress[2].peers[0];
  ASSERT_TRUE(peer.nets);
  EXPECT_TRUE(peer.nets->empty());  // no IPv4 net: no IPv4 address matches
  EXPECT_EQ(peer.nets6, (std::vector<Ipv6Cidr>{*Ipv6Cidr::Parse("fd00::/8"), *Ipv6Cidr::Parse("fd01::1/128")}));
  EXPECT_EQ(peer.not_nets6, std::vector<Ipv6Cidr>{*Ipv6Cidr::Parse("fd00::/64")});
  EXPECT_FALSE(p->ingress[3].ip_version);  // 58 implies no IP version
  EXPECT_EQ(p->ingress[4].ip_version, 4);
  EXPECT_TRUE(p->fail_closed.empty());
}

TEST(CalicoFailClosed, UnreadablePoliciesIsolateTheWidestScopeTheyCanDetermine) {
  struct Case {
    const char* object;
    const char* subject;
    bool in, eg;
    std::optional<double> order;
    const char* tier;
  };
  const double inf = std::numeric_limits<double>::infinity();
  const Case cases[] = {
      // The selector parses; a rule does not: its pods, its types.
      {R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"order":5,"tier":"sec",
          "selector":"app == 'a'","types":["Egress"],"egress":[{"action":"Maybe"}]}})js",
       "calico{(projectcalico.org/namespace == 'x' && app == 'a')}", false, true, 5, "sec"},
      // The selector does not parse: the namespace; types from the rules.
      {R"js({"kind":"NetworkPolicy","metadata":{"name":"p","namespace":"x"},"spec":{"selector":"app ==",
          "ingress":[{"action":"Allow"}],"egress":[{"action":"Allow"}]}})js",
       "calico{projectcalico.org/namespace == 'x'}", true, true, std::nullopt, "default"},
      // A global policy without a readable selector: every pod, minus no
      // part that still parses; unreadable types: both; unreadable order:
      // first of its tier.
      {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"selector":"((","namespaceSelector":"ns == 'y'",
          "types":["Sideways"],"order":"high"}})js",
       "calico{pcns.ns == 'y'}", true, true, -inf, "default"},
      {R"js({"kind":"GlobalNetworkPolicy","metadata":{"name":"g"},"spec":{"selector":"global()"}})js", "calico{all()}", true,
       false, std::nullopt, "default"},
  };
  for (const auto& c : cases) {
    Json obj = Json::parse(c.object);
    auto parsed = PolicyFromCalico(obj);
    ASSERT_FALSE(parsed.ok()) << c.object;
    Policy p = CalicoPolicyOrFailClosed(obj);
    EXPECT_EQ(p.subject.Key(), c.subject) << c.object;
    EXPECT_EQ(p.applies_ingress, c.in) << c.object;
    EXPECT_EQ(p.applies_egress, c.eg) << c.object;
    EXPECT_EQ(p.order, c.order) << c.object;
    EXPECT_EQ(p.tier, c.tier) << c.object;
    for (const auto* rules : {&p.ingress, &p.egress}) {
      for (const auto& r : *rules) {
        EXPECT_EQ(r.action, Action::kDeny);
        EXPECT_TRUE(r.peers.empty() && r.ports.empty() && !r.protocol);
      }
    }
    EXPECT_EQ(p.ingress.size(), c.in ? 1u : 0u);
    EXPECT_EQ(p.egress.size(), c.eg ? 1u : 0u);
    ASSERT_EQ(p.fail_closed.size(), 1u);
    EXPECT_EQ(p.fail_closed[0].where, "policy");
    EXPECT_EQ(p.fail_closed[0].why, parsed.error().ToString());
    EXPECT_NE(p.fail_closed[0].enforced_as.find("denies all"), std::string::npos);
  }
  // A readable policy passes through untouched.
  Policy ok = CalicoPolicyOrFailClosed(InNp("ingress", R"js({"action":"Allow"})js"));
  EXPECT_TRUE(ok.fail_closed.empty());
  EXPECT_EQ(ok.ingress[0].action, Action::kAllow);
}

TEST(K8sFailClosed, ARefusedNetworkPolicyDeniesItsPods) {
  auto np = k8s::ParseNetworkPolicy(Json::parse(R"js({"metadata":{"name":"p","namespace":"x"},"spec":{
      "podSelector":{"matchLabels":{"pod":"a"}},"policyTypes":["Ingress"],
      "ingress":[{"ports":[{"protocol":"ICMP","port":1}]}]}})js"));
  ASSERT_TRUE(np.ok()) << np.error().ToString();
  auto refused = PolicyFromK8s(*np);
  ASSERT_FALSE(refused.ok());
  Policy p = K8sPolicyOrFailClosed(*np);
  EXPECT_TRUE(p.applies_ingress);
  EXPECT_FALSE(p.applies_egress);
  ASSERT_EQ(p.ingress.size(), 1u);
  EXPECT_EQ(p.ingress[0].action, Action::kDeny);
  EXPECT_EQ(p.order, kK8sPolicyOrder);
  ASSERT_EQ(p.fail_closed.size(), 1u);
  EXPECT_EQ(p.fail_closed[0].why, refused.error().ToString());
}

}  // namespace
}  // namespace terway::policy
