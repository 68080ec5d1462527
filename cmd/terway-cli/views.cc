#include "views.h"

#include <algorithm>
#include <iostream>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cni/daemon_client.h"

namespace terway::cli {

namespace {

namespace proto = cni::protocol;
using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// Columns padded to their widest cell; the last one is not padded, so lines
// carry no trailing blanks.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); i++) width[i] = std::max(width[i], r[i].size());
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); i++) {
      line += i + 1 == r.size() ? r[i] : fmt::format("{:<{}}  ", r[i], width[i]);
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::cout << line << "\n";
  }
}

void PrintKeyValues(const json& kvs, const std::string& indent) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& kv : kvs) rows.push_back({indent + Str(kv, "key"), Str(kv, "value")});
  PrintTable(rows);
}

void PrintList(const json& v) {
  const json& items = v.contains("types") ? v["types"] : v["names"];
  for (const auto& i : items) std::cout << "* " << i.get<std::string>() << "\n";
}

void PrintShow(const json& v) {
  std::cout << Str(v, "type") << " " << Str(v, "name") << "\n";
  std::cout << "config:\n";
  PrintKeyValues(v["config"], "  ");
  std::cout << "trace:\n";
  PrintKeyValues(v["trace"], "  ");
}

int PrintMapping(const json& v) {
  // The IPV6 column only on a node that pairs addresses (dual stack).
  bool dual = false;
  for (const auto& r : v["rows"]) dual = dual || !Str(r, "ipv6").empty();
  std::vector<std::vector<std::string>> rows = {{"STATUS", "POD", "IP", "ENI", "CONTAINER", "STORE", "POOL", "PROBLEM"}};
  if (dual) rows[0].insert(rows[0].begin() + 3, "IPV6");
  for (const auto& r : v["rows"]) {
    rows.push_back({Str(r, "status"), Str(r, "pod"), Str(r, "ip"), Str(r, "eni_id"),
                    Str(r, "container_id").substr(0, 12), Str(r, "store"), Str(r, "pool"), Str(r, "problem")});
    if (dual) rows.back().insert(rows.back().begin() + 3, Str(r, "ipv6"));
  }
  PrintTable(rows);
  int errors = v.value("errors", 0);
  if (errors > 0) {
    std::cerr << fmt::format(
        "terway-cli: error exists in mapping: {} address(es) where the state database and the pool disagree "
        "(see PROBLEM); terwayd's reconcile (every ip_pool_sync_period) repairs what the cloud decides, the "
        "rest is worth a look at terwayd's log\n",
        errors);
    return 1;
  }
  return 0;
}

void PrintMetadata(const json& v) {
  std::cout << fmt::format("instance: {}  zone: {}  vswitch: {}\n", Str(v, "instance_id"), Str(v, "zone_id"),
                           Str(v, "vswitch_id"));
  for (const auto& e : v["enis"]) {
    std::cout << fmt::format("eni: {} ({})\n", Str(e, "mac"), Str(e, "eni_id"));
    std::string ifname = Str(e, "interface");
    std::vector<std::vector<std::string>> rows = {
        {"  primary:", e.value("primary", false) ? "true" : "false"},
        {"  interface:", ifname.empty() ? "!!! NOT FOUND on this node" : ifname},
        {"  primary_ipv4:", Str(e, "primary_ipv4")},
        {"  gateway:", Str(e, "gateway")},
        {"  netmask:", Str(e, "netmask")},
        {"  vswitch:", Str(e, "vswitch_id")},
        {"  vswitch_cidr:", Str(e, "vswitch_cidr")},
        {"  terwayd:", Str(e, "terwayd")}};
    if (!Str(e, "error").empty()) rows.push_back({"  error:", Str(e, "error")});
    PrintTable(rows);
    if (!e["secondary_ipv4s"].empty()) {
      std::cout << "  secondary_ipv4s:\n";
      for (const auto& ip : e["secondary_ipv4s"]) std::cout << "    " << ip.get<std::string>() << "\n";
    }
    if (e.contains("ipv6s") && !e["ipv6s"].empty()) {
      std::cout << "  ipv6s:\n";
      for (const auto& ip : e["ipv6s"]) std::cout << "    " << ip.get<std::string>() << "\n";
    }
  }
  for (const auto& s : v["store_only"]) {
    std::cout << fmt::format("eni {} ({}): in terwayd's state database, but the metadata service does not list it\n",
                             Str(s, "eni_id"), Str(s, "mac"));
  }
}

void PrintNodeConfig(const json& v) {
  std::cout << "eni_conf from: " << Str(v, "source") << "\n";
  std::cout << "node:\n";
  PrintKeyValues(v["node"], "  ");
  std::cout << "effective (after parsing and defaults):\n";
  PrintKeyValues(v["effective"], "  ");
  std::cout << "eni_conf (merged, secrets redacted):\n" << v["eni_conf"].dump(2) << "\n";
}

}  // namespace

int Inspect(const std::string& socket, const proto::InspectQuery& q, Output out) {
  proto::Request req;
  req.op = proto::Op::kInspect;
  req.inspect_query = q;
  req.deadline_ms = 10000;
  auto client = cni::MakeUnixDaemonClient(socket, std::chrono::milliseconds(10000));
  auto reply = client->Call(req);
  if (!reply.ok()) {
    if (reply.error().code == ErrorCode::kUnavailable) {
      std::cerr << fmt::format(
          "terway-cli: terwayd is not answering at {} ({}): is terwayd running on this node? Start it (or read "
          "its log), or pass --socket with the daemon_socket terwayd was started with\n",
          socket, reply.error().message);
    } else {
      std::cerr << "terway-cli: " << std::move(reply).error().Wrap("asking terwayd at " + socket).ToString() << "\n";
    }
    return 1;
  }
  if (!reply->ok()) {
    const auto& e = *reply->error;
    if (e.cls == proto::ErrorClass::kInvalid && e.message.find("unknown op") != std::string::npos) {
      std::cerr << fmt::format("terway-cli: terwayd at {} does not answer {} ({}): it is older than this "
                               "terway-cli; upgrade terwayd\n",
                               socket, q.view, e.message);
    } else {
      std::cerr << "terwayd: " << e.message << "\n";
    }
    return 1;
  }
  json v = json::parse(reply->text.value_or(""), nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded() || !v.is_object()) {
    std::cerr << "terway-cli: terwayd at " << socket << " answered " << q.view << " with something that is not JSON\n";
    return 1;
  }
  if (out == Output::kJson) {
    std::cout << v.dump(2) << "\n";
    return q.view == "mapping" && v.value("errors", 0) > 0 ? 1 : 0;
  }
  if (q.view == "list") {
    PrintList(v);
  } else if (q.view == "show") {
    PrintShow(v);
  } else if (q.view == "mapping") {
    return PrintMapping(v);
  } else if (q.view == "metadata") {
    PrintMetadata(v);
  } else {
    PrintNodeConfig(v);
  }
  return 0;
}

}  // namespace terway::cli
