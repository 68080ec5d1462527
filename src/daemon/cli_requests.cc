#include "daemon/cli_requests.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>

#include <fmt/format.h>

namespace terway::daemon {

namespace proto = cni::protocol;
using cli_views::Json;

std::map<std::string, std::string> LinksByMac() {
  std::map<std::string, std::string> out;
  // if_nameindex and SIOCGIFHWADDR ask the kernel through sockets of this
  // namespace; /sys/class/net would show the namespace sysfs was mounted in,
  // which is not terwayd's when it runs inside a node's namespace (the lab).
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return out;
  if (struct if_nameindex* names = if_nameindex()) {
    for (auto* n = names; n->if_index != 0; ++n) {
      struct ifreq ifr {};
      snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", n->if_name);
      if (ioctl(fd, SIOCGIFHWADDR, &ifr) != 0) continue;
      const auto* m = reinterpret_cast<const unsigned char*>(ifr.ifr_hwaddr.sa_data);
      out[fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5])] = n->if_name;
    }
    if_freenameindex(names);
  }
  close(fd);
  return out;
}

proto::Reply OperatorViews::Handle(const proto::Request& req) {
  if (req.op != proto::Op::kInspect) return next_->Handle(req);
  if (!req.inspect_query) return proto::Reply::Fail(proto::ErrorClass::kInvalid, "inspect request without a query");
  // deadline_ms is what the client still waits (queue time taken off).
  auto budget = std::chrono::milliseconds(req.deadline_ms ? req.deadline_ms : 10000);
  auto view = Build(*req.inspect_query, std::chrono::steady_clock::now() + budget);
  if (!view.ok()) return proto::Reply::FromError(view.error());
  proto::Reply r;
  r.text = view->dump();
  return r;
}

Result<cli_views::StoreFacts> OperatorViews::ReadStore() {
  cli_views::StoreFacts f;
  TERWAY_ASSIGN_OR_RETURN_CTX(f.allocations, src_.store->ListAllocations(), "reading the state database");
  TERWAY_ASSIGN_OR_RETURN_CTX(f.enis, src_.store->ListEnis(), "reading the state database");
  TERWAY_ASSIGN_OR_RETURN_CTX(f.ips, src_.store->ListIps(), "reading the state database");
  TERWAY_ASSIGN_OR_RETURN_CTX(f.reservations, src_.store->ListReservations(), "reading the state database");
  return f;
}

Result<cli_views::MetadataFacts> OperatorViews::ReadMetadata(std::chrono::steady_clock::time_point deadline) {
  if (src_.metadata == nullptr) {
    return MakeError(ErrorCode::kUnavailable, "this terwayd has no metadata client");
  }
  std::unique_lock one(metadata_mu_, std::try_to_lock);
  if (!one.owns_lock()) {
    return MakeError(ErrorCode::kConflict,
                     "another terway-cli metadata is asking the metadata service right now; try again in a moment");
  }
  auto* md = src_.metadata;
  cli_views::MetadataFacts f;
  TERWAY_ASSIGN_OR_RETURN_CTX(auto macs, md->Macs(),
                              "asking the metadata service for the node's ENIs (network/interfaces/macs)");
  TERWAY_ASSIGN_OR_RETURN_CTX(f.primary_mac, md->PrimaryMac(), "asking the metadata service for the primary MAC");
  f.instance_id = md->InstanceId().value_or("");
  f.zone_id = md->ZoneId().value_or("");
  f.vswitch_id = md->VSwitchId().value_or("");
  for (const auto& mac : macs) {
    cli_views::MetadataEni e;
    e.mac = mac;
    if (std::chrono::steady_clock::now() >= deadline) {
      // Said, not guessed: the client has stopped waiting for more.
      e.error = "not asked: the request's deadline passed (the metadata service is slow)";
      f.enis.push_back(std::move(e));
      continue;
    }
    std::vector<std::string> missing;
    auto get = [&](const char* what, Result<std::string> r, std::string* into) {
      if (r.ok()) {
        *into = *r;
      } else {
        missing.push_back(fmt::format("{}: {}", what, r.error().message));
      }
    };
    get("network-interface-id", md->EniId(mac), &e.eni_id);
    get("primary-ip-address", md->EniPrimaryIp(mac), &e.primary_ip);
    get("gateway", md->EniGateway(mac), &e.gateway);
    get("netmask", md->EniNetmask(mac), &e.netmask);
    get("vswitch-id", md->EniVSwitchId(mac), &e.vswitch_id);
    get("vswitch-cidr-block", md->EniVSwitchCidrBlock(mac), &e.vswitch_cidr);
    if (auto ips = md->EniPrivateIpv4s(mac); ips.ok()) {
      e.private_ips = *ips;
    } else {
      missing.push_back("private-ipv4s: " + ips.error().message);
    }
    if (auto v6 = md->EniIpv6s(mac); v6.ok()) {
      e.ipv6s = *v6;
    } else {
      missing.push_back("ipv6s: " + v6.error().message);
    }
    for (const auto& m : missing) e.error += (e.error.empty() ? "" : "; ") + m;
    f.enis.push_back(std::move(e));
  }
  f.ifname_by_mac = LinksByMac();
  return f;
}

Result<Json> OperatorViews::Build(const proto::InspectQuery& q, std::chrono::steady_clock::time_point deadline) {
  if (q.view == "nodeconfig") return cli_views::NodeConfigView(src_.node_config);
  TERWAY_ASSIGN_OR_RETURN(auto store, ReadStore());
  if (q.view == "metadata") {
    TERWAY_ASSIGN_OR_RETURN(auto md, ReadMetadata(deadline));
    return cli_views::MetadataView(md, store.enis);
  }
  if (q.view == "mapping") {
    std::optional<ipam::PoolContents> pool;
    if (src_.pool) pool = src_.pool->Contents();
    return cli_views::MappingView(cli_views::BuildMapping(store, pool));
  }
  if (q.view == "list" || q.view == "show") {
    cli_views::ServiceFacts service{src_.service_config, {}};
    if (src_.service_trace) service.trace = src_.service_trace();
    cli_views::PoolFacts pool{src_.pool_name, src_.pool_config, src_.addresses->Stats()};
    auto objects = cli_views::BuildObjects(service, pool, store);
    if (q.view == "list") return cli_views::ListView(objects, q.type);
    if (q.type.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "show needs a type; `terway-cli list` lists them");
    }
    return cli_views::ShowView(objects, q.type, q.name);
  }
  return Errorf(ErrorCode::kInvalidArgument,
                "unknown view {:?}: terwayd answers list, show, mapping, metadata and nodeconfig", q.view);
}

}  // namespace terway::daemon
