#include "tools/vpcsim/metadata.h"

#include "common/strings.h"

namespace terway::vpcsim {

using nlohmann::json;

namespace {

HttpReply Text(std::string body, int status = 200) {
  return HttpReply{status, std::move(body), "text/plain"};
}
HttpReply NotFound() { return Text("Not Found", 404); }

std::string Lines(const std::vector<std::string>& items) { return Join(items, "\n"); }

}  // namespace

HttpReply MetadataService::Handle(const MetadataRequest& r) {
  if (r.instance_id.empty()) {
    return Text("vpcsim: caller is not an instance of this VPC (loopback callers must send " +
                    std::string(kEmulatorInstanceHeader) + ")",
                403);
  }
  auto now = cloud_->clock()->Now();
  if (r.path == "/latest/api/token") {
    if (r.method != "PUT") return Text("Method Not Allowed", 405);
    int ttl = 0;
    if (r.token_ttl) {
      try {
        size_t used = 0;
        ttl = std::stoi(*r.token_ttl, &used);
        if (used != r.token_ttl->size()) ttl = 0;
      } catch (const std::exception&) {
        ttl = 0;
      }
    }
    if (ttl < 1 || ttl > 21600) {
      return Text("X-aliyun-ecs-metadata-token-ttl-seconds must be an integer within 1..21600", 400);
    }
    std::string token = RandomUuid() + RandomUuid();
    std::lock_guard l(mu_);
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->second.expires <= now ? tokens_.erase(it) : std::next(it);
    }
    tokens_[token] = {r.instance_id, now + std::chrono::seconds(ttl)};
    return Text(token);
  }
  if (r.method != "GET") return Text("Method Not Allowed", 405);
  if (r.token) {
    std::lock_guard l(mu_);
    auto it = tokens_.find(*r.token);
    if (it == tokens_.end() || it->second.expires <= now || it->second.instance_id != r.instance_id) {
      return Text("Unauthorized: invalid or expired metadata token", 401);
    }
  } else if (cloud_->world().metadata_hardened) {
    return Text("Unauthorized: this world runs the metadata service in hardened mode; "
                "PUT /latest/api/token first",
                401);
  }
  if (r.path == "/latest" || r.path == "/latest/") return Text("meta-data/");
  const std::string prefix = "/latest/meta-data";
  if (!StartsWith(r.path, prefix)) return NotFound();
  std::string rest = r.path.substr(prefix.size());
  if (!rest.empty() && rest[0] != '/') return NotFound();
  if (!rest.empty()) rest = rest.substr(1);
  return MetaData(r.instance_id, rest);
}

HttpReply MetadataService::MetaData(const std::string& instance_id, const std::string& rest) {
  auto view = cloud_->View(instance_id);
  if (!view) return NotFound();
  const World& w = cloud_->world();
  const InstanceRecord& inst = view->instance;
  const EniRecord* primary = nullptr;
  for (const auto& e : view->enis) {
    if (e.id == inst.primary_eni) primary = &e;
  }
  const WorldVSwitch* ivsw = w.FindVSwitch(inst.vswitch_id);
  if (rest.empty()) {
    return Text(Lines({"instance-id", "region-id", "zone-id", "instance/", "mac", "vpc-id",
                       "vpc-cidr-block", "vswitch-id", "vswitch-cidr-block", "private-ipv4",
                       "network/", "ram/"}));
  }
  if (rest == "instance-id") return Text(inst.id);
  if (rest == "region-id") return Text(w.region);
  if (rest == "zone-id") return Text(inst.zone);
  if (rest == "instance" || rest == "instance/") return Text("instance-type");
  if (rest == "instance/instance-type") return Text(inst.instance_type);
  if (rest == "mac") return primary ? Text(primary->mac) : NotFound();
  if (rest == "vpc-id") return Text(w.vpc_id);
  if (rest == "vpc-cidr-block") return Text(w.vpc_cidr.ToString());
  if (rest == "vswitch-id") return Text(inst.vswitch_id);
  if (rest == "vswitch-cidr-block") return Text(ivsw->cidr.ToString());
  if (rest == "private-ipv4") return primary ? Text(primary->primary_ip) : NotFound();
  if (rest == "network" || rest == "network/") return Text("interfaces/");
  if (rest == "network/interfaces" || rest == "network/interfaces/") return Text("macs/");
  if (rest == "ram" || rest == "ram/") return Text("security-credentials/");
  if (rest == "ram/security-credentials" || rest == "ram/security-credentials/") return Text(w.ram_role);
  if (StartsWith(rest, "ram/security-credentials/")) {
    std::string role = rest.substr(std::string("ram/security-credentials/").size());
    if (role != w.ram_role) return NotFound();
    auto c = cloud_->CredentialFor(instance_id);
    if (!c.ok()) return Text("InternalError: " + c.error().ToString(), 500);
    json j = {{"AccessKeyId", c->access_key_id},
              {"AccessKeySecret", c->access_key_secret},
              {"SecurityToken", c->security_token},
              {"Expiration", FormatIso8601(Clock::TimePoint(std::chrono::seconds(c->expires_at)))},
              {"LastUpdated", FormatIso8601(Clock::TimePoint(std::chrono::seconds(c->issued_at)))},
              {"Code", "Success"}};
    return HttpReply{200, DumpJson(j, 2), "application/json"};
  }
  const std::string macs = "network/interfaces/macs";
  if (rest == macs || rest == macs + "/") {
    std::vector<std::string> items;
    for (const auto& e : view->enis) items.push_back(e.mac + "/");
    return Text(Lines(items));
  }
  if (!StartsWith(rest, macs + "/")) return NotFound();
  std::string tail = rest.substr(macs.size() + 1);
  size_t slash = tail.find('/');
  std::string mac = tail.substr(0, slash);
  std::string leaf = slash == std::string::npos ? "" : tail.substr(slash + 1);
  const EniRecord* eni = nullptr;
  for (const auto& e : view->enis) {
    if (e.mac == mac) eni = &e;
  }
  if (!eni) return NotFound();
  const WorldVSwitch* v = w.FindVSwitch(eni->vswitch_id);
  if (leaf.empty()) {
    std::vector<std::string> leaves = {"network-interface-id", "primary-ip-address", "private-ipv4s",
                                       "vswitch-id", "vswitch-cidr-block", "gateway", "netmask",
                                       "vpc-id", "vpc-cidr-block"};
    if (v->ipv6_cidr) {
      for (const char* l : {"ipv6s", "ipv6-gateway", "vswitch-ipv6-cidr-block", "vpc-ipv6-cidr-blocks"}) {
        leaves.push_back(l);
      }
    }
    return Text(Lines(leaves));
  }
  // The IPv6 entries exist only for an ENI in an IPv6-enabled vSwitch, and
  // ipv6s only while the ENI holds one (404 otherwise, as on ECS). Lists are
  // bracketed and unquoted, as Alibaba's metadata reference shows them
  // ("[2408:...:e4e]"), unlike private-ipv4s' JSON strings.
  if (leaf == "ipv6s" || leaf == "ipv6-gateway" || leaf == "vswitch-ipv6-cidr-block" ||
      leaf == "vpc-ipv6-cidr-blocks") {
    if (!v->ipv6_cidr || !w.vpc_ipv6_cidr) return NotFound();
    if (leaf == "ipv6s") {
      if (eni->ipv6s.empty()) return NotFound();
      return Text("[" + Join(eni->ipv6s, ",") + "]");
    }
    if (leaf == "ipv6-gateway") return Text(v->ipv6_gateway.ToString());
    if (leaf == "vswitch-ipv6-cidr-block") return Text(v->ipv6_cidr->ToString());
    return Text("[" + w.vpc_ipv6_cidr->ToString() + "]");
  }
  if (leaf == "network-interface-id") return Text(eni->id);
  if (leaf == "primary-ip-address") return Text(eni->primary_ip);
  if (leaf == "private-ipv4s") {
    json ips = json::array({eni->primary_ip});
    for (const auto& ip : eni->secondary_ips) ips.push_back(ip);
    return Text(DumpJson(ips));
  }
  if (leaf == "vswitch-id") return Text(eni->vswitch_id);
  if (leaf == "vswitch-cidr-block") return Text(v->cidr.ToString());
  if (leaf == "gateway") return Text(v->gateway.ToString());
  if (leaf == "netmask") return Text(v->cidr.netmask().ToString());
  if (leaf == "vpc-id") return Text(w.vpc_id);
  if (leaf == "vpc-cidr-block") return Text(w.vpc_cidr.ToString());
  return NotFound();
}

}  // namespace terway::vpcsim
