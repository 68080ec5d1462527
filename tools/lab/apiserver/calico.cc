#include "tools/lab/apiserver/calico.h"

#include <set>

namespace terway::lab {
namespace {

constexpr const char* kTierLabel = "projectcalico.org/tier";
constexpr const char* kNamespaceLabel = "projectcalico.org/namespace";

std::string NameOf(const Json& obj) {
  const Json& m = obj.contains("metadata") ? obj["metadata"] : Json();
  return m.is_object() && m.contains("name") && m["name"].is_string() ? m["name"].get<std::string>() : "";
}

// `<Kind>.projectcalico.org "<name>" is invalid: <field>: <detail>`, as the
// API server words a refused write (HTTP 422).
Error Invalid(const ResourceType& t, const std::string& name, const std::string& field, const std::string& detail) {
  return Errorf(ErrorCode::kInvalidArgument, "{}.{} \"{}\" is invalid: {}: {}", t.kind, t.group, name, field,
                detail);
}

bool IsPolicy(const ResourceType& t) { return t.kind == "NetworkPolicy" || t.kind == "GlobalNetworkPolicy"; }
bool IsNetworkSet(const ResourceType& t) { return t.kind == "NetworkSet" || t.kind == "GlobalNetworkSet"; }

// spec as an object (created when absent), or an error naming the object.
Result<Json*> SpecOf(const ResourceType& t, Json& obj) {
  if (!obj.contains("spec") || obj["spec"].is_null()) obj["spec"] = Json::object();
  if (!obj["spec"].is_object()) return Invalid(t, NameOf(obj), "spec", "Invalid value: must be an object");
  return &obj["spec"];
}

size_t RuleCount(const Json& spec, const char* direction) {
  return spec.contains(direction) && spec[direction].is_array() ? spec[direction].size() : 0;
}

// Calico's types defaulting (api/pkg/defaults/networkpolicy.go): absent or
// empty types become Ingress when there are no egress rules (also with no
// rules at all), Egress with only egress rules, both with both. Given types
// must be Ingress/Egress without repeats (the Go validator's rule).
Status DefaultPolicyTypes(const ResourceType& t, const std::string& name, Json& spec) {
  Json& types = spec["types"];
  if (types.is_null() || (types.is_array() && types.empty())) {
    if (RuleCount(spec, "egress") == 0) {
      types = Json::array({"Ingress"});
    } else if (RuleCount(spec, "ingress") == 0) {
      types = Json::array({"Egress"});
    } else {
      types = Json::array({"Ingress", "Egress"});
    }
    return Ok();
  }
  if (!types.is_array()) return Invalid(t, name, "spec.types", "Invalid value: must be a list of Ingress, Egress");
  std::set<std::string> seen;
  for (const auto& v : types) {
    if (!v.is_string() || (v != "Ingress" && v != "Egress")) {
      return Invalid(t, name, "spec.types", fmt::format("Unsupported value: {}: supported values: \"Ingress\", \"Egress\"",
                                                        v.dump()));
    }
    if (!seen.insert(v.get<std::string>()).second) {
      return Invalid(t, name, "spec.types", fmt::format("Duplicate value: {}", v.dump()));
    }
  }
  return Ok();
}

// A policy's tier: `default` when empty, mirrored into the
// projectcalico.org/tier label on every write (setTierLabel), and, on
// create, a tier that exists (clientv3's NetworkPolicies().Create gets the
// tier first and fails without it).
Status AdmitPolicy(WriteOp op, const ResourceType& t, Json& obj, const StoreView& view) {
  const std::string name = NameOf(obj);
  TERWAY_ASSIGN_OR_RETURN(Json * spec, SpecOf(t, obj));
  Json& tier = (*spec)["tier"];
  if (tier.is_null() || (tier.is_string() && tier.get<std::string>().empty())) tier = kDefaultTier;
  if (!tier.is_string()) return Invalid(t, name, "spec.tier", "Invalid value: must be a tier's name");
  const std::string tier_name = tier.get<std::string>();
  TERWAY_TRY(DefaultPolicyTypes(t, name, *spec));
  Json& meta = obj["metadata"];
  if (!meta.contains("labels") || !meta["labels"].is_object()) meta["labels"] = Json::object();
  meta["labels"][kTierLabel] = tier_name;
  if (op == WriteOp::kCreate && !view.Get(std::string(kCalicoGroup) + "/tiers", "", tier_name)) {
    return Invalid(t, name, "spec.tier",
                   fmt::format("Not found: \"{}\": the tier does not exist; create the Tier first "
                               "(kubectl get tiers lists them)",
                               tier_name));
  }
  return Ok();
}

// A DNS label without dots, at most 63 characters (validator.go validateTier).
bool ValidTierName(const std::string& n) {
  if (n.empty() || n.size() > 63) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return n.front() != '-' && n.back() != '-';
}

// Tier defaulting (DefaultTierFields: order 1000000, defaultAction Deny) and
// the constraints Calico's schema and CEL rules put on tiers.
Status AdmitTier(WriteOp op, const ResourceType& t, Json& obj) {
  const std::string name = NameOf(obj);
  if (op == WriteOp::kCreate && !ValidTierName(name)) {
    return Invalid(t, name, "metadata.name",
                   "Invalid value: a tier's name must be a DNS label without dots, at most 63 characters");
  }
  TERWAY_ASSIGN_OR_RETURN(Json * spec, SpecOf(t, obj));
  Json& order = (*spec)["order"];
  if (order.is_null()) order = static_cast<int64_t>(kDefaultTierOrder);
  if (!order.is_number()) return Invalid(t, name, "spec.order", "Invalid value: must be a number");
  Json& action = (*spec)["defaultAction"];
  if (action.is_null()) action = "Deny";
  if (action != "Deny" && action != "Pass") {
    return Invalid(t, name, "spec.defaultAction",
                   fmt::format("Unsupported value: {}: supported values: \"Deny\", \"Pass\"", action.dump()));
  }
  if (name == kDefaultTier && (order.get<double>() != kDefaultTierOrder || action != "Deny")) {
    return Invalid(t, name, "spec", "Forbidden: the default tier's order is 1000000 and its defaultAction Deny");
  }
  return Ok();
}

// Deleting a tier: never the built-in one (Calico's protect-builtin-tiers
// admission policy), nor one that policies still name (clientv3 tiers
// Delete: "Cannot delete a non-empty tier").
Status AdmitTierDelete(const ResourceType& t, const Json& old, const StoreView& view) {
  const std::string name = NameOf(old);
  if (name == kDefaultTier) {
    return Errorf(ErrorCode::kInvalidArgument, "The built-in tier {} cannot be deleted", name);
  }
  for (const char* plural : {"networkpolicies", "globalnetworkpolicies"}) {
    for (const Json* p : view.List(std::string(kCalicoGroup) + "/" + plural)) {
      const Json& spec = p->contains("spec") ? (*p)["spec"] : Json();
      if (spec.is_object() && spec.value("tier", "") == name) {
        const Json& m = (*p)["metadata"];
        std::string who = m.contains("namespace") ? m.value("namespace", "") + "/" + NameOf(*p) : NameOf(*p);
        return Errorf(ErrorCode::kConflict,
                      "{}.{} \"{}\" cannot be deleted: Cannot delete a non-empty tier ({} {} is in it; delete or "
                      "move its policies first)",
                      t.plural, t.group, name, plural, who);
      }
    }
  }
  return Ok();
}

// Network sets: Calico adds projectcalico.org/namespace itself (a NetworkSet
// is matched by selectors with it), so a user may not set it
// (validator.go validateNetworkSet / validateGlobalNetworkSet).
Status AdmitNetworkSet(const ResourceType& t, const Json& obj) {
  const Json& meta = obj["metadata"];
  if (meta.contains("labels") && meta["labels"].is_object() && meta["labels"].contains(kNamespaceLabel)) {
    return Invalid(t, NameOf(obj), "metadata.labels",
                   fmt::format("Invalid value: \"{}\": the label is reserved for Calico (it sets it on every "
                               "namespaced NetworkSet); use another label key",
                               kNamespaceLabel));
  }
  return Ok();
}

}  // namespace

Status AdmitCalico(WriteOp op, const ResourceType& t, Json* obj, const Json* old, const StoreView& view) {
  if (t.group != kCalicoGroup) return Ok();
  if (op == WriteOp::kDelete) {
    return t.kind == "Tier" && old ? AdmitTierDelete(t, *old, view) : Ok();
  }
  if (!obj) return Ok();
  if (IsPolicy(t)) return AdmitPolicy(op, t, *obj, view);
  if (t.kind == "Tier") return AdmitTier(op, t, *obj);
  if (IsNetworkSet(t)) return AdmitNetworkSet(t, *obj);
  return Ok();
}

Json DefaultTierObject() {
  return {{"apiVersion", std::string(kCalicoGroup) + "/v3"},
          {"kind", "Tier"},
          {"metadata", {{"name", kDefaultTier}}},
          {"spec", {{"order", static_cast<int64_t>(kDefaultTierOrder)}, {"defaultAction", "Deny"}}}};
}

}  // namespace terway::lab
