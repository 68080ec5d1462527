// terway-cli: the operator's tool. Reads the cloud (max pods of an instance
// type), the daemon's state database (pods and their IPs) and the daemon's
// socket (status, network policy explain/show, and upstream Terway's
// list/show/mapping/metadata/nodeconfig, views.h).
#include <unistd.h>

#include <fstream>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cloud/cloud_clients.h"
#include "cni/daemon_client.h"
#include "common/log.h"
#include "daemon/daemon.h"
#include "ipam/engine.h"
#include "policy/nft_table.h"
#include "store/state_store.h"
#include "views.h"

namespace {

using terway::Result;

int Fail(const terway::Error& e) {
  std::cerr << "terway-cli: " << e.ToString() << "\n";
  return 1;
}

struct CloudFlags {
  std::string config;  // eni_conf file
  std::string ecs_endpoint;
  std::string region;
  std::string access_key;
  std::string access_secret;
};

Result<std::unique_ptr<terway::cloud::CloudClients>> MakeCloud(const CloudFlags& f) {
  terway::cloud::CloudOptions o;
  if (!f.config.empty()) {
    TERWAY_ASSIGN_OR_RETURN(auto conf, terway::daemon::LoadEniConfig(f.config));
    o = terway::daemon::CloudOptionsFromConfig(conf);
  }
  if (!f.ecs_endpoint.empty()) o.ecs_endpoint = f.ecs_endpoint;
  if (!f.region.empty()) o.region_id = f.region;
  if (!f.access_key.empty()) {
    o.access_key = f.access_key;
    o.access_secret = f.access_secret;
    o.credential_kind = terway::cloud::CredentialKind::kStatic;
  }
  return terway::cloud::CloudClients::Create(o);
}

void AddCloudFlags(CLI::App* cmd, CloudFlags* f) {
  cmd->add_option("--config", f->config, "eni_conf file to take endpoint and credentials from");
  cmd->add_option("--endpoint", f->ecs_endpoint, "ECS API endpoint, e.g. http://127.0.0.1:PORT");
  cmd->add_option("--region", f->region, "region id (default: from the metadata service)");
  cmd->add_option("--access-key", f->access_key, "AccessKey id");
  cmd->add_option("--access-secret", f->access_secret, "AccessKey secret");
}

int MaxPods(const CloudFlags& f, const std::string& type, const std::string& mode) {
  auto cloud = MakeCloud(f);
  if (!cloud.ok()) return Fail(cloud.error());
  auto types = (*cloud)->ecs()->DescribeInstanceTypes({type});
  if (!types.ok()) return Fail(std::move(types).error().Wrap("DescribeInstanceTypes " + type));
  for (const auto& t : *types) {
    if (t.instance_type_id != type) continue;
    terway::ipam::InstanceLimits limits{t.eni_quantity, t.eni_private_ip_address_quantity};
    int shared = terway::ipam::MaxPods(limits, terway::ipam::EniMode::kShared);
    int exclusive = terway::ipam::MaxPods(limits, terway::ipam::EniMode::kExclusive);
    if (mode == "shared") {
      std::cout << shared << "\n";
    } else if (mode == "exclusive") {
      std::cout << exclusive << "\n";
    } else {
      std::cout << fmt::format(
          "{}: EniQuantity={} EniPrivateIpAddressQuantity={}\n"
          "  shared ENI:    (EniQuantity - 1) x EniPrivateIpAddressQuantity = {}\n"
          "  exclusive ENI: EniQuantity - 1 = {}\n",
          type, t.eni_quantity, t.eni_private_ip_address_quantity, shared, exclusive);
    }
    return 0;
  }
  std::cerr << "terway-cli: instance type " << type
            << " is not known to DescribeInstanceTypes (check the spelling, e.g. ecs.g7.large)\n";
  return 1;
}

// The CLI only reads: opening a path that is not a database would create an
// empty one and report an empty node, so a wrong --state is an error.
Result<std::unique_ptr<terway::store::StateStore>> OpenExistingStore(const std::string& state) {
  if (access(state.c_str(), R_OK) != 0) {
    return terway::Errorf(terway::ErrorCode::kNotFound,
                          "no state database at {}; pass terwayd's --state path", state);
  }
  return terway::store::StateStore::Open(state);
}

int Pods(const std::string& state) {
  auto st = OpenExistingStore(state);
  if (!st.ok()) return Fail(std::move(st).error().Wrap("opening " + state));
  auto allocs = (*st)->ListAllocations();
  if (!allocs.ok()) return Fail(allocs.error());
  // Dual stack: each pod's IPv6 (of the same ENI) beside its IPv4.
  bool dual = false;
  for (const auto& a : *allocs) dual = dual || !a.ipv6.empty();
  auto v6 = [&](const std::string& s) { return dual ? fmt::format("{:<40} ", s) : std::string(); };
  std::cout << fmt::format("{:<40} {:<16} {}{:<24} {}\n", "POD", "IP", v6("IPV6"), "ENI", "CONTAINER");
  for (const auto& a : *allocs) {
    std::cout << fmt::format("{:<40} {:<16} {}{:<24} {}\n", a.pod_namespace + "/" + a.pod_name, a.ip, v6(a.ipv6),
                             a.eni_id, a.container_id.substr(0, 12));
  }
  return 0;
}

// The node's ENIs and their IPs, as terwayd last committed them.
struct NodeAddresses {
  std::vector<terway::store::EniRecord> enis;
  std::vector<terway::store::IpRecord> ips;
};

Result<NodeAddresses> ReadNodeAddresses(const std::string& state) {
  TERWAY_ASSIGN_OR_RETURN_CTX(auto st, OpenExistingStore(state), "opening " + state);
  NodeAddresses out;
  TERWAY_ASSIGN_OR_RETURN(out.enis, st->ListEnis());
  TERWAY_ASSIGN_OR_RETURN(out.ips, st->ListIps());
  return out;
}

int Enis(const std::string& state) {
  auto node = ReadNodeAddresses(state);
  if (!node.ok()) return Fail(node.error());
  const auto& ips = &node->ips;
  for (const auto& e : node->enis) {
    int idle = 0, used = 0, paired = 0;
    for (const auto& ip : *ips) {
      if (ip.eni_id != e.eni_id) continue;
      (ip.idle_since_unix ? idle : used)++;
      paired += ip.ipv6.empty() ? 0 : 1;
    }
    std::cout << fmt::format("{} mac={} vswitch={} primary_ip={}{} ips: {} in use, {} idle{}\n",
                             e.eni_id, e.mac, e.vswitch_id, e.primary_ip,
                             e.is_primary ? " (primary ENI)" : "", used, idle,
                             paired ? fmt::format(", {} paired with an IPv6", paired) : "");
  }
  return 0;
}

int Ips(const std::string& state) {
  auto node = ReadNodeAddresses(state);
  if (!node.ok()) return Fail(node.error());
  const auto& ips = &node->ips;
  const auto& enis = &node->enis;
  // Dual stack: the IPv6 each IPv4 is paired with ("-" while unpaired).
  bool dual = false;
  for (const auto& ip : *ips) dual = dual || !ip.ipv6.empty();
  auto v6 = [&](const std::string& s) { return dual ? fmt::format("{:<40} ", s.empty() ? "-" : s) : std::string(); };
  std::cout << fmt::format("{:<16} {}{:<24} {}\n", "IP", v6("IPV6"), "ENI", "STATE");
  for (const auto& ip : *ips) {
    std::string role;
    for (const auto& e : *enis) {
      if (e.primary_ip == ip.ip) role = " (ENI primary IP)";
    }
    std::cout << fmt::format("{:<16} {}{:<24} {}{}\n", ip.ip, v6(ip.ipv6), ip.eni_id,
                             ip.idle_since_unix ? "idle" : "in use", role);
  }
  return 0;
}

int Status(const std::string& socket) {
  terway::cni::protocol::Request req;
  req.op = terway::cni::protocol::Op::kStatus;
  auto client = terway::cni::MakeUnixDaemonClient(socket, std::chrono::milliseconds(5000));
  auto reply = client->Call(req);
  if (!reply.ok()) return Fail(std::move(reply).error().Wrap("asking terwayd at " + socket));
  if (!reply->ok()) {
    std::cerr << "terwayd: " << reply->error->message << "\n";
    return 1;
  }
  bool ready = reply->status && reply->status->ready;
  std::cout << (ready ? "ready" : "not ready: " + reply->status->message) << "\n";
  return ready ? 0 : 1;
}

// "80/TCP", "53/udp", "80" (TCP).
Result<std::pair<uint16_t, std::string>> ParsePortSpec(const std::string& spec) {
  std::string port = spec, proto = "TCP";
  if (auto slash = spec.find('/'); slash != std::string::npos) {
    port = spec.substr(0, slash);
    proto = spec.substr(slash + 1);
  }
  char* end = nullptr;
  long n = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || n < 0 || n > 65535) {
    return terway::Errorf(terway::ErrorCode::kInvalidArgument,
                          "--port {:?}: want PORT[/PROTOCOL] such as 80/TCP, 53/UDP or 0/ICMP", spec);
  }
  return std::make_pair(static_cast<uint16_t>(n), proto);
}

int PolicyCall(const std::string& socket, terway::cni::protocol::Request req) {
  auto client = terway::cni::MakeUnixDaemonClient(socket, std::chrono::milliseconds(10000));
  auto reply = client->Call(req);
  if (!reply.ok()) return Fail(std::move(reply).error().Wrap("asking terwayd at " + socket));
  if (!reply->ok()) {
    std::cerr << "terwayd: " << reply->error->message << "\n";
    return 1;
  }
  if (reply->text) std::cout << *reply->text;
  if (reply->text && !reply->text->empty() && reply->text->back() != '\n') std::cout << "\n";
  return 0;
}

int PolicyExplain(const std::string& socket, const std::string& from, const std::string& to,
                  const std::string& port_spec) {
  auto port = ParsePortSpec(port_spec);
  if (!port.ok()) return Fail(port.error());
  terway::cni::protocol::Request req;
  req.op = terway::cni::protocol::Op::kPolicyExplain;
  req.policy_query = terway::cni::protocol::PolicyQuery{from, to, port->second, port->first};
  return PolicyCall(socket, req);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"terway-cli: inspect Terway's pool, pods, configuration and cloud limits.\n"
               "Upstream Terway's list, show, mapping, metadata and nodeconfig ask terwayd over its socket;\n"
               "pods, enis and ips read its state database; maxpods asks the cloud."};
  app.require_subcommand(1);
  terway::log::Init("terway-cli", "warn");

  CloudFlags cf;
  std::string type, mode = "all";
  auto* maxpods = app.add_subcommand("maxpods", "max pods of an instance type (DescribeInstanceTypes)");
  maxpods->add_option("--instance-type", type, "e.g. ecs.g7.large")->required();
  maxpods->add_option("--mode", mode, "shared|exclusive|all")->capture_default_str()
      ->check(CLI::IsMember({"shared", "exclusive", "all"}));
  AddCloudFlags(maxpods, &cf);

  std::string state = "/var/lib/terway/state.db";
  auto* pods = app.add_subcommand("pods", "pods and their IPs (terwayd's state database)");
  pods->add_option("--state", state, "state database")->capture_default_str();
  auto* enis = app.add_subcommand("enis", "ENIs and their IPs (terwayd's state database)");
  enis->add_option("--state", state, "state database")->capture_default_str();

  auto* ips = app.add_subcommand("ips", "pod IPs of the node's ENIs and their state");
  ips->add_option("--state", state, "state database")->capture_default_str();

  std::string socket = "/var/run/eni/eni.socket";
  auto* status = app.add_subcommand("status", "is terwayd ready to serve pods?");
  status->add_option("--socket", socket, "terwayd's socket")->capture_default_str();

  auto* policy = app.add_subcommand("policy", "network policy as this node enforces it");
  policy->require_subcommand(1);
  std::string from, to, port_spec;
  auto* explain = policy->add_subcommand(
      "explain", "would a connection be allowed, and which policy and rule decide it (the kernel's own model)");
  explain->add_option("--from", from,
                      "source: NAMESPACE/POD or an IPv4 or IPv6 address (an IPv6 address at either end makes the "
                      "flow IPv6: pods then stand at their IPv6 address; ICMP is then 0/ICMPv6)")
      ->required();
  explain->add_option("--to", to, "destination: NAMESPACE/POD or an IPv4 or IPv6 address")->required();
  explain->add_option("--port", port_spec, "destination PORT[/PROTOCOL], e.g. 80/TCP")->required();
  explain->add_option("--socket", socket, "terwayd's socket")->capture_default_str();
  auto* show = policy->add_subcommand("show", "each policed pod's rules with their packet counters");
  show->add_option("--socket", socket, "terwayd's socket")->capture_default_str();

  auto* remove = policy->add_subcommand(
      "remove", "delete the node's policy table (inet terway) from this network namespace: a node cleaned "
                "of terway; terwayd enforcing policy puts it back at start");

  // Upstream Terway's everyday commands, answered by terwayd over the socket.
  std::string output = "text", view_type, view_name;
  auto add_view = [&](const char* name, const std::string& summary, const std::string& details) {
    auto* cmd = app.add_subcommand(name, summary);
    cmd->footer(details);
    cmd->add_option("--socket", socket, "terwayd's socket")->capture_default_str();
    cmd->add_option("-o,--output", output, "text|json")->capture_default_str()
        ->check(CLI::IsMember({"text", "json"}));
    return cmd;
  };
  auto* list = add_view("list", "object types terwayd shows, or the names of one type (upstream's list)",
                        "Without TYPE: the types of objects terwayd shows (network_service, resource_pool, eni, "
                        "pod); with TYPE: their names. Upstream's types; its 'factory' has no counterpart here "
                        "(the pool talks to the cloud itself).");
  list->add_option("type", view_type, "network_service|resource_pool|eni|pod");
  auto* show_obj = add_view("show", "one object's config and trace (upstream's show)",
                            "One object's config (settings) and trace (live state); without NAME, the type's "
                            "first, as upstream. network_service/default: the node and the CNI service; "
                            "resource_pool: the shared-ENI IP pool or the exclusive-ENI allocator; eni/<id>, "
                            "pod/<namespace>/<name>: from terwayd's state database.");
  show_obj->add_option("type", view_type, "network_service|resource_pool|eni|pod")->required();
  show_obj->add_option("name", view_name, "object name (terway-cli list TYPE)");
  add_view("mapping", "pods vs addresses vs ENIs, with inconsistencies flagged (upstream's mapping)",
           "Every address of the node's ENIs: which pod holds it (Normal), idle, reserved for a sticky pod, "
           "or ERROR where the state database's allocations, its address rows and the pool's memory of the "
           "cloud disagree (exit code 1). Exclusive-ENI nodes keep no pool: each pod's address is checked "
           "against its own ENI's primary IP instead.");
  add_view("metadata", "the node's ENIs as the ECS metadata service reports them (upstream's metadata)",
           "What the ECS metadata service says about this node's ENIs (MAC, primary and secondary IPv4s, "
           "gateway, vSwitch and its CIDR), asked by terwayd, beside the host interface of each MAC and "
           "whether terwayd's state database tracks the ENI, and each ENI's IPv6s (ipv6s; dual-stack nodes).");
  add_view("nodeconfig", "the node's effective configuration, secrets redacted (upstream's nodeconfig)",
           "The configuration terwayd runs with: where eni_conf came from (ConfigMap + the node's "
           "terway-config override, or the file), the node's ENI mode and what chose it (node label, "
           "-daemon-mode, eni_mode), datapath and policy, the effective values after defaults, and the "
           "merged eni_conf with AccessKeys, tokens and passwords redacted. Unlike upstream's (an init "
           "step that writes node capabilities and the CNI config), it only reports: terwayd decides at start.");

  CLI11_PARSE(app, argc, argv);
  for (const char* v : {"list", "show", "mapping", "metadata", "nodeconfig"}) {
    if (app.got_subcommand(v)) {
      terway::cni::protocol::InspectQuery q{v, view_type, view_name};
      return terway::cli::Inspect(socket, q, output == "json" ? terway::cli::Output::kJson
                                                              : terway::cli::Output::kText);
    }
  }
  if (*remove) {
    auto st = terway::policy::NftPolicyTable().Remove();
    if (!st.ok()) return Fail(st.error());
    std::cout << "removed table inet terway (or it was not there)\n";
    return 0;
  }
  if (*explain) return PolicyExplain(socket, from, to, port_spec);
  if (*show) {
    terway::cni::protocol::Request req;
    req.op = terway::cni::protocol::Op::kPolicyShow;
    return PolicyCall(socket, req);
  }
  if (*maxpods) return MaxPods(cf, type, mode);
  if (*pods) return Pods(state);
  if (*enis) return Enis(state);
  if (*ips) return Ips(state);
  if (*status) return Status(socket);
  return 1;
}
