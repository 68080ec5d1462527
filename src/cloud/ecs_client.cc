#include "cloud/ecs_api.h"

#include <set>

#include "common/log.h"

namespace terway::cloud {
namespace {

using nlohmann::json;

// Alibaba's list parameters are "Name.1", "Name.2", ... (1-based).
void AddList(QueryParams* p, const std::string& name, const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); i++) (*p)[fmt::format("{}.{}", name, i + 1)] = values[i];
}

void AddTags(QueryParams* p, const std::vector<Tag>& tags) {
  for (size_t i = 0; i < tags.size(); i++) {
    (*p)[fmt::format("Tag.{}.Key", i + 1)] = tags[i].key;
    (*p)[fmt::format("Tag.{}.Value", i + 1)] = tags[i].value;
  }
}

// {"Outer": {"Inner": [...]}}; a missing wrapper is an empty list.
template <typename T, typename F>
Result<std::vector<T>> ParseWrapped(const json& j, const char* outer, const char* inner, F from_json) {
  std::vector<T> out;
  auto o = j.find(outer);
  if (o == j.end() || o->is_null()) return out;
  if (!o->is_object()) return Errorf(ErrorCode::kCloud, "reply field {}: want an object", outer);
  auto in = o->find(inner);
  if (in == o->end() || in->is_null()) return out;
  if (!in->is_array()) return Errorf(ErrorCode::kCloud, "reply field {}.{}: want an array", outer, inner);
  for (const auto& e : *in) {
    auto v = from_json(e);
    if (!v.ok()) return std::move(v).error().Wrap(fmt::format("parsing {}.{}", outer, inner));
    out.push_back(std::move(v).value());
  }
  return out;
}

Result<std::string> StringOf(const json& e) {
  if (!e.is_string()) return MakeError(ErrorCode::kCloud, "want a string");
  return e.get<std::string>();
}

std::string NextToken(const json& j) {
  auto it = j.find("NextToken");
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Pages through a NextToken-paged action. Stops on an empty token; a token
// seen twice (a server bug) or too many pages ends the loop with an error
// instead of spinning forever.
template <typename F>
Status ForEachPage(OpenApiClient* client, Product product, const std::string& action,
                   QueryParams params, F on_page) {
  std::set<std::string> seen;
  for (int page = 0; page < 10000; page++) {
    TERWAY_ASSIGN_OR_RETURN(json reply, client->Call(product, action, params));
    TERWAY_TRY(on_page(reply));
    std::string next = NextToken(reply);
    if (next.empty()) return Ok();
    if (!seen.insert(next).second) {
      return Errorf(ErrorCode::kCloud, "{}: NextToken \"{}\" returned twice", action, next);
    }
    params["NextToken"] = next;
  }
  return Errorf(ErrorCode::kCloud, "{}: more than 10000 pages", action);
}

CallOptions TokenOptions(const std::string& client_token) {
  CallOptions o;
  o.client_token = true;
  o.explicit_client_token = client_token;
  return o;
}

Status CheckAssign(const AssignIpsRequest& req, const char* what) {
  if (req.eni_id.empty()) return Errorf(ErrorCode::kInvalidArgument, "{}: no ENI id", what);
  if ((req.count > 0) == !req.addresses.empty()) {
    return Errorf(ErrorCode::kInvalidArgument, "{} on {}: give either a count or addresses",
                  what, req.eni_id);
  }
  return Ok();
}

}  // namespace

Result<NetworkInterface> OpenApiEcsClient::CreateNetworkInterface(const CreateEniRequest& req) {
  if (req.vswitch_id.empty() || req.security_group_ids.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "CreateNetworkInterface needs a vSwitch and at least one security group");
  }
  QueryParams p;
  p["VSwitchId"] = req.vswitch_id;
  AddList(&p, "SecurityGroupIds", req.security_group_ids);
  if (req.secondary_private_ip_count > 0) {
    p["SecondaryPrivateIpAddressCount"] = std::to_string(req.secondary_private_ip_count);
  }
  if (req.ipv6_count > 0) p["Ipv6AddressCount"] = std::to_string(req.ipv6_count);
  AddTags(&p, req.tags);
  if (!req.name.empty()) p["NetworkInterfaceName"] = req.name;
  if (!req.description.empty()) p["Description"] = req.description;
  if (!req.resource_group_id.empty()) p["ResourceGroupId"] = req.resource_group_id;
  TERWAY_ASSIGN_OR_RETURN(json reply, client_->Call(Product::kEcs, "CreateNetworkInterface", p,
                                                    TokenOptions(req.client_token)));
  TERWAY_ASSIGN_OR_RETURN_CTX(NetworkInterface eni, NetworkInterfaceFromJson(reply),
                              "parsing CreateNetworkInterface reply");
  if (eni.network_interface_id.empty()) {
    return MakeError(ErrorCode::kCloud, "CreateNetworkInterface reply has no NetworkInterfaceId");
  }
  return eni;
}

Status OpenApiEcsClient::AttachNetworkInterface(const std::string& eni_id,
                                                const std::string& instance_id) {
  QueryParams p{{"NetworkInterfaceId", eni_id}, {"InstanceId", instance_id}};
  TERWAY_TRY(client_->Call(Product::kEcs, "AttachNetworkInterface", p));
  return Ok();
}

Status OpenApiEcsClient::DetachNetworkInterface(const std::string& eni_id,
                                                const std::string& instance_id) {
  QueryParams p{{"NetworkInterfaceId", eni_id}, {"InstanceId", instance_id}};
  TERWAY_TRY(client_->Call(Product::kEcs, "DetachNetworkInterface", p));
  return Ok();
}

Status OpenApiEcsClient::DeleteNetworkInterface(const std::string& eni_id) {
  QueryParams p{{"NetworkInterfaceId", eni_id}};
  TERWAY_TRY(client_->Call(Product::kEcs, "DeleteNetworkInterface", p));
  return Ok();
}

Result<std::vector<NetworkInterface>> OpenApiEcsClient::DescribeNetworkInterfaces(
    const DescribeEnisFilter& f) {
  QueryParams p;
  if (!f.vpc_id.empty()) p["VpcId"] = f.vpc_id;
  if (!f.vswitch_id.empty()) p["VSwitchId"] = f.vswitch_id;
  if (!f.instance_id.empty()) p["InstanceId"] = f.instance_id;
  if (!f.status.empty()) p["Status"] = f.status;
  if (!f.type.empty()) p["Type"] = f.type;
  if (!f.resource_group_id.empty()) p["ResourceGroupId"] = f.resource_group_id;
  AddList(&p, "NetworkInterfaceId", f.eni_ids);
  AddList(&p, "PrivateIpAddress", f.private_ips);
  AddTags(&p, f.tags);
  p["MaxResults"] = std::to_string(kEniPageSize);
  std::vector<NetworkInterface> all;
  TERWAY_TRY(ForEachPage(client_, Product::kEcs, "DescribeNetworkInterfaces", p,
                         [&](const json& reply) -> Status {
                           TERWAY_ASSIGN_OR_RETURN(
                               auto page, ParseWrapped<NetworkInterface>(
                                              reply, "NetworkInterfaceSets", "NetworkInterfaceSet",
                                              NetworkInterfaceFromJson));
                           for (auto& e : page) all.push_back(std::move(e));
                           return Ok();
                         }));
  return all;
}

Result<std::vector<std::string>> OpenApiEcsClient::AssignPrivateIpAddresses(
    const AssignIpsRequest& req) {
  TERWAY_TRY(CheckAssign(req, "AssignPrivateIpAddresses"));
  QueryParams p{{"NetworkInterfaceId", req.eni_id}};
  if (req.count > 0) p["SecondaryPrivateIpAddressCount"] = std::to_string(req.count);
  AddList(&p, "PrivateIpAddress", req.addresses);
  TERWAY_ASSIGN_OR_RETURN(json reply, client_->Call(Product::kEcs, "AssignPrivateIpAddresses", p,
                                                    TokenOptions(req.client_token)));
  // {"AssignedPrivateIpAddressesSet": {"NetworkInterfaceId", "PrivateIpSet": {"PrivateIpAddress": [..]}}}
  auto set = reply.find("AssignedPrivateIpAddressesSet");
  if (set == reply.end() || !set->is_object()) {
    if (!req.addresses.empty()) return req.addresses;  // the request named them
    return MakeError(ErrorCode::kCloud, "AssignPrivateIpAddresses reply has no AssignedPrivateIpAddressesSet");
  }
  TERWAY_ASSIGN_OR_RETURN(auto ips, ParseWrapped<std::string>(*set, "PrivateIpSet", "PrivateIpAddress", StringOf));
  if (req.count > 0 && static_cast<int>(ips.size()) != req.count) {
    return Errorf(ErrorCode::kCloud, "AssignPrivateIpAddresses on {}: asked {} addresses, got {}",
                  req.eni_id, req.count, ips.size());
  }
  return ips;
}

Status OpenApiEcsClient::UnassignPrivateIpAddresses(const std::string& eni_id,
                                                    const std::vector<std::string>& addresses) {
  if (addresses.empty()) return Ok();
  QueryParams p{{"NetworkInterfaceId", eni_id}};
  AddList(&p, "PrivateIpAddress", addresses);
  TERWAY_TRY(client_->Call(Product::kEcs, "UnassignPrivateIpAddresses", p));
  return Ok();
}

Result<std::vector<std::string>> OpenApiEcsClient::AssignIpv6Addresses(const AssignIpsRequest& req) {
  TERWAY_TRY(CheckAssign(req, "AssignIpv6Addresses"));
  QueryParams p{{"NetworkInterfaceId", req.eni_id}};
  if (req.count > 0) p["Ipv6AddressCount"] = std::to_string(req.count);
  AddList(&p, "Ipv6Address", req.addresses);
  TERWAY_ASSIGN_OR_RETURN(json reply, client_->Call(Product::kEcs, "AssignIpv6Addresses", p,
                                                    TokenOptions(req.client_token)));
  // {"NetworkInterfaceId", "Ipv6Sets": {"Ipv6Address": [..]}}
  TERWAY_ASSIGN_OR_RETURN(auto ips, ParseWrapped<std::string>(reply, "Ipv6Sets", "Ipv6Address", StringOf));
  if (ips.empty() && !req.addresses.empty()) return req.addresses;  // the request named them
  // As for IPv4: a short answer would leave addresses the caller cannot track.
  const size_t want = req.count > 0 ? static_cast<size_t>(req.count) : req.addresses.size();
  if (ips.size() != want) {
    return Errorf(ErrorCode::kCloud, "AssignIpv6Addresses on {}: asked {} addresses, got {}", req.eni_id,
                  want, ips.size());
  }
  return ips;
}

Status OpenApiEcsClient::UnassignIpv6Addresses(const std::string& eni_id,
                                               const std::vector<std::string>& addresses) {
  if (addresses.empty()) return Ok();
  QueryParams p{{"NetworkInterfaceId", eni_id}};
  AddList(&p, "Ipv6Address", addresses);
  TERWAY_TRY(client_->Call(Product::kEcs, "UnassignIpv6Addresses", p));
  return Ok();
}

Result<std::vector<InstanceType>> OpenApiEcsClient::DescribeInstanceTypes(
    const std::vector<std::string>& instance_types) {
  QueryParams p;
  AddList(&p, "InstanceTypes", instance_types);
  std::vector<InstanceType> all;
  TERWAY_TRY(ForEachPage(client_, Product::kEcs, "DescribeInstanceTypes", p,
                         [&](const json& reply) -> Status {
                           TERWAY_ASSIGN_OR_RETURN(
                               auto page, ParseWrapped<InstanceType>(reply, "InstanceTypes", "InstanceType",
                                                                     InstanceTypeFromJson));
                           for (auto& t : page) all.push_back(std::move(t));
                           return Ok();
                         }));
  return all;
}

Result<std::vector<VSwitch>> OpenApiEcsClient::DescribeVSwitches(
    const std::string& vpc_id, const std::vector<std::string>& vswitch_ids) {
  // The VSwitchId filter takes one id; several ids are one call each (the
  // pool knows a handful), none lists the VPC page by page (PageSize <= 50).
  std::vector<VSwitch> all;
  auto list = [&](QueryParams p) -> Status {
    p["PageSize"] = "50";
    for (int page = 1; page <= 10000; page++) {
      p["PageNumber"] = std::to_string(page);
      TERWAY_ASSIGN_OR_RETURN(json reply, client_->Call(Product::kVpc, "DescribeVSwitches", p));
      TERWAY_ASSIGN_OR_RETURN(auto got, ParseWrapped<VSwitch>(reply, "VSwitches", "VSwitch", VSwitchFromJson));
      int64_t total = reply.value("TotalCount", int64_t{0});
      bool last = got.size() < 50 || static_cast<int64_t>(all.size() + got.size()) >= total;
      for (auto& v : got) all.push_back(std::move(v));
      if (last) return Ok();
    }
    return MakeError(ErrorCode::kCloud, "DescribeVSwitches: more than 10000 pages");
  };
  QueryParams base;
  if (!vpc_id.empty()) base["VpcId"] = vpc_id;
  if (vswitch_ids.empty()) {
    TERWAY_TRY(list(base));
    return all;
  }
  for (const auto& id : vswitch_ids) {
    QueryParams p = base;
    p["VSwitchId"] = id;
    TERWAY_TRY(list(p));
  }
  return all;
}

Result<std::vector<Instance>> OpenApiEcsClient::DescribeInstances(
    const std::vector<std::string>& instance_ids) {
  QueryParams p;
  if (!instance_ids.empty()) p["InstanceIds"] = json(instance_ids).dump();
  p["MaxResults"] = "100";
  std::vector<Instance> all;
  TERWAY_TRY(ForEachPage(client_, Product::kEcs, "DescribeInstances", p,
                         [&](const json& reply) -> Status {
                           TERWAY_ASSIGN_OR_RETURN(
                               auto page, ParseWrapped<Instance>(reply, "Instances", "Instance", InstanceFromJson));
                           for (auto& i : page) all.push_back(std::move(i));
                           return Ok();
                         }));
  return all;
}

Result<NetworkInterface> WaitForEniStatus(EcsApi* api, const std::string& eni_id,
                                          const std::string& want, const Clock* clock,
                                          Sleeper* sleeper, const WaitOptions& opts) {
  Uniform01 random = opts.random ? opts.random : DefaultUniform01();
  const int polls = std::max(1, opts.backoff.steps);
  auto started = clock->Steady();
  if (opts.backoff.initial_delay.count() > 0) sleeper->SleepFor(opts.backoff.initial_delay);
  std::string last_status = "(never read)";
  for (int attempt = 0; attempt < polls; attempt++) {
    if (attempt > 0) sleeper->SleepFor(StepBackoffDelay(opts.backoff, attempt - 1, random()));
    DescribeEnisFilter f;
    f.eni_ids = {eni_id};
    auto enis = api->DescribeNetworkInterfaces(f);
    if (enis.ok()) {
      if (enis->empty()) {
        return Errorf(ErrorCode::kNotFound, "ENI {} vanished while waiting for {}", eni_id, want);
      }
      const NetworkInterface& eni = enis->front();
      if (eni.status == want) return eni;
      last_status = eni.status;
    } else if (!enis.error().retryable) {
      return std::move(enis).error().Wrap(fmt::format("waiting for ENI {} to be {}", eni_id, want));
    }
  }
  Error e = Errorf(ErrorCode::kTimeout,
                   "ENI {} still {} (want {}) after {} polls in {} s; if the cloud is slow here, "
                   "give the wait more steps in eni_conf backoff_override",
                   eni_id, last_status, want, polls,
                   std::chrono::duration_cast<std::chrono::seconds>(clock->Steady() - started).count());
  e.retryable = true;
  return e;
}

}  // namespace terway::cloud
