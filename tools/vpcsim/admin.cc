#include "tools/vpcsim/admin.h"

#include "common/strings.h"

namespace terway::vpcsim {

using nlohmann::json;

namespace {

HttpReply Json(const json& j, int status = 200) { return HttpReply{status, DumpJson(j, 2), "application/json"}; }
HttpReply Err(int status, const std::string& msg) { return Json({{"error", msg}}, status); }

int StatusFor(const Error& e) {
  switch (e.code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kAlreadyExists:
    case ErrorCode::kConflict: return 409;
    default: return 500;
  }
}

}  // namespace

HttpReply AdminService::Handle(const std::string& method, const std::string& path, const std::string& body) {
  json in = json::object();
  if (!body.empty()) {
    try {
      in = json::parse(body);
    } catch (const std::exception& e) {
      return Err(400, std::string("body is not JSON: ") + e.what());
    }
    if (!in.is_object()) return Err(400, "body must be a JSON object");
  }
  auto str = [&](const char* k) -> std::string {
    auto it = in.find(k);
    return it != in.end() && it->is_string() ? it->get<std::string>() : "";
  };
  if (path == "/admin/health" && method == "GET") return Json({{"ok", true}});
  if (path == "/admin/stats" && method == "GET") return Json(counters_->ToJson());
  if (path == "/admin/stats/reset" && method == "POST") {
    counters_->Reset();
    return Json({{"ok", true}});
  }
  if (path == "/admin/faults" && method == "GET") return Json(faults_->ToJson());
  if (path == "/admin/faults" && method == "POST") {
    std::string action = str("action");
    if (action.empty()) return Err(400, "fault: 'action' is required (an API action name or \"*\")");
    if (action != "*" && !VpcCloud::KnownAction("ecs", action) && !VpcCloud::KnownAction("vpc", action)) {
      return Err(400, "fault: unknown action '" + action + "'");
    }
    FaultSpec spec = faults_->Get(action).value_or(FaultSpec{});
    if (Status s = MergeFaultSpec(in, &spec); !s.ok()) return Err(400, s.error().message);
    faults_->Set(action, spec);
    return Json({{"action", action}, {"fault", ToJson(spec)}});
  }
  if (path == "/admin/faults/clear" && method == "POST") {
    faults_->Clear(str("action"));
    return Json({{"ok", true}});
  }
  if (path == "/admin/world" && method == "GET") return Json(cloud_->Summary());
  if (path == "/admin/instances" && method == "POST") {
    WorldInstance spec{str("id"), str("instance_type"), str("vswitch")};
    if (spec.instance_type.empty() || spec.vswitch_id.empty()) {
      return Err(400, "instance: 'instance_type' and 'vswitch' are required");
    }
    if (auto n = in.find("ipv6_address_count"); n != in.end()) {
      if (!n->is_number_integer()) {
        return Err(400, fmt::format("instance: 'ipv6_address_count' must be an integer (0..{}), not {}",
                                    kMaxInstanceIpv6AddressCount, n->dump()));
      }
      spec.ipv6_address_count = n->get<int>();
    }
    auto r = cloud_->AddInstance(spec);
    if (!r.ok()) return Err(StatusFor(r.error()), r.error().ToString());
    auto view = cloud_->View(r->id);
    std::string ip = view && !view->enis.empty() ? view->enis[0].primary_ip : "";
    std::string mac = view && !view->enis.empty() ? view->enis[0].mac : "";
    std::vector<std::string> ipv6s = view && !view->enis.empty() ? view->enis[0].ipv6s : std::vector<std::string>{};
    return Json({{"instance_id", r->id}, {"instance_type", r->instance_type}, {"zone", r->zone},
                 {"vswitch", r->vswitch_id}, {"primary_eni", r->primary_eni}, {"primary_ip", ip},
                 {"ipv6s", ipv6s}, {"mac", mac}},
                201);
  }
  const std::string inst = "/admin/instances/";
  if (StartsWith(path, inst) && method == "DELETE") {
    Status s = cloud_->RemoveInstance(path.substr(inst.size()));
    if (!s.ok()) return Err(StatusFor(s.error()), s.error().ToString());
    return Json({{"ok", true}});
  }
  return Err(404, "no such admin endpoint: " + method + " " + path);
}

}  // namespace terway::vpcsim
