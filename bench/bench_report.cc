// Renders the results of `make bench` (bench/results/*.json) as the tables
// of docs/benchmarks.md: everything between the markers
//   <!-- bench:results:begin -->  and  <!-- bench:results:end -->
// is replaced, the rest of the page (how each benchmark works, how to read
// it) is left alone. Every figure names the benchmark and command it came
// from; ratios are always between figures of the same run.
//
//   build/bench/bench_report --results bench/results --doc docs/benchmarks.md
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

using Json = nlohmann::json;

namespace {

constexpr const char* kBegin = "<!-- bench:results:begin -->";
constexpr const char* kEnd = "<!-- bench:results:end -->";

Json Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Json();
  return Json::parse(in, nullptr, false);
}

// j at a /-separated path, or null.
const Json& At(const Json& j, const std::string& path) {
  static const Json kNull;
  const Json* cur = &j;
  std::stringstream ss(path);
  std::string key;
  while (std::getline(ss, key, '/')) {
    if (cur->is_object() && cur->contains(key)) {
      cur = &(*cur)[key];
    } else if (cur->is_array() && !key.empty() && std::isdigit(static_cast<unsigned char>(key[0])) &&
               std::stoul(key) < cur->size()) {
      cur = &(*cur)[std::stoul(key)];
    } else {
      return kNull;
    }
  }
  return *cur;
}

std::string Num(const Json& v, const char* fmt_spec = "{:.2f}") {
  if (!v.is_number()) return "n/a";
  return fmt::format(fmt::runtime(fmt_spec), v.get<double>());
}

std::string Machine() {
  utsname u{};
  uname(&u);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  std::string model;
  std::ifstream cpu("/proc/cpuinfo");
  for (std::string line; std::getline(cpu, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  }
  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
  return fmt::format("{} vCPU ({}), {:.0f} GiB, kernel {}; rendered {}", cpus, model,
                     static_cast<double>(pages) * static_cast<double>(page) / (1 << 30), u.release, date);
}

// "median (min-max)" of a figure, or why there is none.
std::string Spread(const Json& f, const char* unit_key, const char* spec) {
  if (!At(f, unit_key).is_number()) {
    return f.contains("invalid_rounds") ? "no valid round" : "n/a";
  }
  return fmt::format("{} ({}-{})", Num(At(f, unit_key), spec), Num(At(f, "min"), spec), Num(At(f, "max"), spec));
}

constexpr const char* kFabric = "fabric_node_to_node";
constexpr const char* kPaths[] = {"bare_veth",
                                  kFabric,
                                  "terway_same_node",
                                  "ebpf_same_node",
                                  "terway_cross_node",
                                  "ebpf_cross_node",
                                  "terway_policed_same_node",
                                  "ebpf_policed_same_node",
                                  "terway_policed_cross_node",
                                  "ebpf_policed_cross_node",
                                  "ptp_same_node"};

// Was the fabric reference measured in this result (files of before it
// existed lack it)?
bool FabricMeasured(const Json& cni) { return !At(cni, std::string("tcp_throughput/") + kFabric).is_null(); }

// A cross-node path's ratio to fabric_node_to_node: a number, "no figure" (a
// side had no valid round) or "not measured" (a result of before the path).
std::string FabricRatio(const Json& cni, const std::string& what, const std::string& path) {
  if (!FabricMeasured(cni)) return "not measured";
  const Json& v = At(cni, what + "/" + path + "/ratio_to_fabric_node_to_node");
  return v.is_number() ? Num(v) : "no figure";
}

constexpr const char* kCrossNodePaths[] = {"terway_cross_node", "ebpf_cross_node", "terway_policed_cross_node",
                                           "ebpf_policed_cross_node"};

// The cross-node paths over the nodes' own path through the emulated VPC,
// the leg no CNI can avoid and a bare veth pair does not have.
std::string RenderFabricRatios(const Json& cni) {
  if (!FabricMeasured(cni)) {
    return fmt::format(
        "\nCross-node paths as a ratio to the nodes' own path through the emulated VPC: not measured ({} is not in "
        "this result: it predates that path).\n",
        kFabric);
  }
  std::string o = fmt::format(
      "\n**Cross-node paths as a ratio to the nodes' own path through the emulated VPC** (same rounds; median / "
      "median of {}, host network between nodes 0 and 1, those of the unpoliced cross-node paths; the policed ones "
      "run between nodes 3 and 4 of the same VPC. A reference for what the emulated VPC costs any cross-node "
      "traffic, not a goal. It also holds both nodes' stacks: veth mode forwards through them too, the eBPF "
      "datapath redirects past them, so eBPF can exceed 1.00)\n\n",
      kFabric);
  o += fmt::format("| path | TCP / {} | connections/s / {} | requests/s / {} |\n|---|---|---|---|\n", kFabric,
                   kFabric, kFabric);
  for (const char* p : kCrossNodePaths) {
    if (At(cni, std::string("tcp_throughput/") + p).is_null()) continue;
    o += fmt::format("| {} | {} | {} | {} |\n", p, FabricRatio(cni, "tcp_throughput", p),
                     FabricRatio(cni, "tcp_connect_rate", p), FabricRatio(cni, "tcp_request_rate", p));
  }
  return o;
}

std::string RenderPaths(const Json& cni) {
  std::string o = fmt::format(
      "**Pod-to-pod paths, each as a ratio to a bare veth pair in the same rounds** (same command; median "
      "(min-max) of {} rounds, paths interleaved in each round; terway = veth + policy routing, ebpf = the eBPF "
      "datapath (eniip_virtual_type IPVlan); policed = on the nodes whose terwayd watches 1,000 NetworkPolicies, "
      "11 of them selecting the measured server; {} = no pod and no CNI: nodes 0 and 1 themselves (host network, "
      "their own stacks with terwayd's nftables, so conntrack on) over their primary ENIs through the emulated VPC, "
      "the leg every cross-node path also crosses; valid rounds: eBPF paths by their programs' packet counters, "
      "{} by both nodes' eth0 counters)\n\n",
      Num(At(cni, "rounds"), "{:.0f}"), kFabric, kFabric);
  o += "| path | TCP Gbit/s | ratio | connections/s | ratio | requests/s (1 connection) | ratio | valid rounds |\n"
       "|---|---|---|---|---|---|---|---|\n";
  for (const char* p : kPaths) {
    const std::string k(p);
    const Json& t = At(cni, "tcp_throughput/" + k);
    if (t.is_null()) {  // a result of before the path existed
      if (k == kFabric) o += fmt::format("| {} | not measured | | | | | | |\n", k);
      continue;
    }
    const Json& c = At(cni, "tcp_connect_rate/" + k);
    const Json& r = At(cni, "tcp_request_rate/" + k);
    std::string valid = "";
    if (t.contains("invalid_rounds")) {
      const double rounds = At(cni, "rounds").is_number() ? At(cni, "rounds").get<double>() : 0;
      valid = fmt::format("{:.0f}/{:.0f}", rounds - t["invalid_rounds"].get<double>(), rounds);
    }
    o += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", k, Spread(t, "gbps_median", "{:.2f}"),
                     Num(At(t, "ratio_to_bare_veth")), Spread(c, "per_s_median", "{:.0f}"),
                     Num(At(c, "ratio_to_bare_veth")), Spread(r, "per_s_median", "{:.0f}"),
                     Num(At(r, "ratio_to_bare_veth")), valid);
  }
  o += RenderFabricRatios(cni);
  return o;
}

// The eBPF datapath's goals (issue 14), judged from the figures above.
std::string RenderEbpf(const Json& cni) {
  const Json& lat = At(cni, "cni_latency_ms");
  if (At(lat, "terway_ebpf").is_null()) return "";
  std::string o = "\n**eBPF datapath: CNI ADD next to veth mode** (same command, same node, ADDs interleaved)\n\n";
  o += "| what | veth (terway) | eBPF (IPVlan network) | ratio eBPF/veth |\n|---|---|---|---|\n";
  o += fmt::format("| ADD p50 / p99, warm pool (n={}) | {} / {} ms | {} / {} ms | {} / {} |\n",
                   Num(At(lat, "terway_ebpf/add/n"), "{:.0f}"), Num(At(lat, "terway/add/p50")),
                   Num(At(lat, "terway/add/p99")), Num(At(lat, "terway_ebpf/add/p50")),
                   Num(At(lat, "terway_ebpf/add/p99")), Num(At(lat, "add_p50_ratio_ebpf_to_veth")),
                   Num(At(lat, "add_p99_ratio_ebpf_to_veth")));
  o += fmt::format("| DEL p50 / p99 | {} / {} ms | {} / {} ms | |\n", Num(At(lat, "terway/del/p50")),
                   Num(At(lat, "terway/del/p99")), Num(At(lat, "terway_ebpf/del/p50")),
                   Num(At(lat, "terway_ebpf/del/p99")));
  auto ratio = [&](const std::string& what, const std::string& path) -> const Json& {
    return At(cni, what + "/" + path + "/ratio_to_bare_veth");
  };
  struct Goal {
    std::string text;
    const Json& value;
    double target;
    bool at_most;
  };
  const std::vector<Goal> goals = {
      {"TCP throughput across nodes / bare veth", ratio("tcp_throughput", "ebpf_cross_node"), 0.97, false},
      {"connections/s across nodes / bare veth", ratio("tcp_connect_rate", "ebpf_cross_node"), 0.95, false},
      {"TCP throughput on one node / bare veth", ratio("tcp_throughput", "ebpf_same_node"), 1.0, false},
      {"connections/s on one node / bare veth", ratio("tcp_connect_rate", "ebpf_same_node"), 1.0, false},
      {"ADD p50, eBPF / veth", At(lat, "add_p50_ratio_ebpf_to_veth"), 1.0, true},
  };
  // Under each cross-node goal, the same figure over fabric_node_to_node: a
  // reference line (the goal stays the ratio to bare veth).
  struct Reference {
    std::string text, what;
  };
  const std::map<std::string, Reference> fabric_reference = {
      {"TCP throughput across nodes / bare veth",
       {fmt::format("TCP throughput across nodes / {}", kFabric), "tcp_throughput"}},
      {"connections/s across nodes / bare veth",
       {fmt::format("connections/s across nodes / {}", kFabric), "tcp_connect_rate"}}};
  o += "\n| goal (eBPF datapath, not policed) | target | measured | met |\n|---|---|---|---|\n";
  for (const auto& g : goals) {
    std::string met = "no figure (no valid round)";
    if (g.value.is_number()) {
      const double v = g.value.get<double>();
      met = (g.at_most ? v <= g.target : v >= g.target) ? "yes" : "**no**";
    }
    o += fmt::format("| {} | {} {:.2f} | {} | {} |\n", g.text, g.at_most ? "<=" : ">=", g.target, Num(g.value), met);
    if (auto f = fabric_reference.find(g.text); f != fabric_reference.end()) {
      o += fmt::format("| &nbsp;&nbsp;reference, not a goal: {} (host network through the emulated VPC, no CNI) | "
                       "none | {} | (reference) |\n",
                       f->second.text, FabricRatio(cni, f->second.what, "ebpf_cross_node"));
    }
  }
  return o;
}

// Dual-stack ADD next to IPv4-only (bench/dual_stack_bench.cc); "" before
// its first run.
std::string RenderDualStack(const Json& ds) {
  if (!ds.is_object() || !ds.contains("command")) return "";
  std::string o = fmt::format(
      "\n**Dual stack: CNI ADD next to IPv4-only** (`{}`; one node with eni_conf ip_stack ipv4, one with dual, both "
      "warm, ADDs interleaved)\n\n",
      At(ds, "command").get<std::string>());
  o += "| what | ipv4 | dual | ratio dual/ipv4 |\n|---|---|---|---|\n";
  o += fmt::format("| ADD p50 / p99 (n={}) | {} / {} ms | {} / {} ms | {} / {} |\n", Num(At(ds, "dual/add/n"), "{:.0f}"),
                   Num(At(ds, "ipv4/add/p50")), Num(At(ds, "ipv4/add/p99")), Num(At(ds, "dual/add/p50")),
                   Num(At(ds, "dual/add/p99")), Num(At(ds, "add_p50_ratio")), Num(At(ds, "add_p99_ratio")));
  o += fmt::format("| DEL p50 / p99 | {} / {} ms | {} / {} ms | |\n", Num(At(ds, "ipv4/del/p50")),
                   Num(At(ds, "ipv4/del/p99")), Num(At(ds, "dual/del/p50")), Num(At(ds, "dual/del/p99")));
  const bool met = At(ds, "add_p50_ratio").is_number() && At(ds, "add_p50_ratio").get<double>() <= 1.3;
  o += fmt::format("\n| goal | target | measured | met |\n|---|---|---|---|\n| ADD p50, dual / ipv4 | <= 1.30 | {} | {} |\n",
                   Num(At(ds, "add_p50_ratio")), met ? "yes" : "**no**");
  return o;
}

std::string Render(const Json& pool, const Json& cni, const Json& pol, const Json& run, const Json& ds) {
  std::string o;
  o += fmt::format("Machine: {}.", Machine());
  if (At(run, "total_seconds").is_number()) {
    o += fmt::format(" {} took {:.0f} s in all.", At(run, "rerun").is_null() ? "`make bench`" : "The last full `make bench`",
                     At(run, "total_seconds").get<double>());
  }
  if (At(run, "rerun/benchmarks").is_array()) {
    // Each benchmark re-run since the last full run, with its own command
    // (older records kept one command for all).
    std::string list;
    for (const auto& n : At(run, "rerun/benchmarks")) {
      const std::string name = n.get<std::string>();
      const Json& cmd = At(run, "rerun/commands/" + name).is_string() ? At(run, "rerun/commands/" + name)
                                                                      : At(run, "rerun/command");
      list += fmt::format("{}{} (`{}`, {} s)", list.empty() ? "" : ", ", name,
                          cmd.is_string() ? cmd.get<std::string>() : "?",
                          Num(At(run, "rerun/seconds_by_benchmark/" + name), "{:.0f}"));
    }
    o += fmt::format(" Re-run since: {}; the other sections' figures are those of the last full `make bench` run.",
                     list);
  }
  o += "\n\n";

  // --- CNI
  o += fmt::format("**CNI ADD/DEL through the real binaries** (`{}`)\n\n", At(cni, "command").get<std::string>());
  o += "| what | terway | ptp + host-local | ratio terway/ptp |\n|---|---|---|---|\n";
  const Json& lat = At(cni, "cni_latency_ms");
  o += fmt::format("| ADD p50 / p99, warm pool (n={}) | {} / {} ms | {} / {} ms | {} |\n",
                   Num(At(lat, "terway/add/n"), "{:.0f}"), Num(At(lat, "terway/add/p50")),
                   Num(At(lat, "terway/add/p99")), Num(At(lat, "ptp_host_local/add/p50")),
                   Num(At(lat, "ptp_host_local/add/p99")), Num(At(lat, "add_p50_ratio_terway_to_ptp")));
  o += fmt::format("| DEL p50 / p99 (n={}) | {} / {} ms | {} / {} ms | {} |\n", Num(At(lat, "terway/del/n"), "{:.0f}"),
                   Num(At(lat, "terway/del/p50")), Num(At(lat, "terway/del/p99")),
                   Num(At(lat, "ptp_host_local/del/p50")), Num(At(lat, "ptp_host_local/del/p99")),
                   Num(At(lat, "del_p50_ratio_terway_to_ptp")));
  o += fmt::format("| ADD p50 / p99, cold pool: every ADD waits for the cloud (n={}) | {} / {} ms | (no pool) | {} |\n",
                   Num(At(lat, "terway_cold_pool/add/n"), "{:.0f}"), Num(At(lat, "terway_cold_pool/add/p50")),
                   Num(At(lat, "terway_cold_pool/add/p99")), Num(At(lat, "cold_add_p50_ratio_terway_to_ptp")));
  o += fmt::format("| DEL p50 / p99, cold pool | {} / {} ms | | |\n", Num(At(lat, "terway_cold_pool/del/p50")),
                   Num(At(lat, "terway_cold_pool/del/p99")));
  o += fmt::format("| pod churn: ADD+DEL cycles per second, {} workers | {} | {} | {} |\n",
                   Num(At(cni, "pod_churn_per_s/workers"), "{:.0f}"), Num(At(cni, "pod_churn_per_s/terway"), "{:.1f}"),
                   Num(At(cni, "pod_churn_per_s/ptp_host_local"), "{:.1f}"),
                   Num(At(cni, "pod_churn_per_s/ratio_terway_to_ptp")));
  o += fmt::format("| cloud API calls per pod, cold pool, one pod at a time | {} | | |\n\n",
                   Num(At(lat, "terway_cold_pool/api_calls_per_pod")));

  o += RenderPaths(cni);
  o += RenderEbpf(cni);
  o += RenderDualStack(ds);
  o += "\n**Bandwidth accuracy** (same command; achieved / limit, iperf3 with the first second omitted)\n\n";
  o += "| limit | into the pod | ratio | out of the pod | ratio |\n|---|---|---|---|---|\n";
  for (const auto& a : At(cni, "bandwidth_accuracy").is_array() ? At(cni, "bandwidth_accuracy") : Json::array()) {
    o += fmt::format("| {} Mbit/s | {} Mbit/s | {} | {} Mbit/s | {} |\n", Num(a["limit_mbit"], "{:.0f}"),
                     Num(a["into_pod_mbit"], "{:.1f}"), Num(a["into_ratio"], "{:.3f}"), Num(a["out_of_pod_mbit"], "{:.1f}"),
                     Num(a["out_ratio"], "{:.3f}"));
  }

  // --- pool
  o += fmt::format("\n**terwayd's pool** (`{}`)\n\n", At(pool, "command").get<std::string>());
  o += "| what | figure |\n|---|---|\n";
  o += fmt::format("| allocate, warm pool, p50 / p99 (socket + pool + SQLite commit) | {} / {} ms |\n",
                   Num(At(pool, "allocate_warm_ms/p50"), "{:.3f}"), Num(At(pool, "allocate_warm_ms/p99"), "{:.3f}"));
  o += fmt::format("| allocate, empty pool, p50 / p99 | {} / {} ms |\n", Num(At(pool, "allocate_empty_pool_ms/p50")),
                   Num(At(pool, "allocate_empty_pool_ms/p99")));
  o += fmt::format("| cloud API calls for a burst of 100 pods on a fresh node | {} ({} per pod) |\n",
                   Num(At(pool, "burst_100/api_calls"), "{:.0f}"), Num(At(pool, "burst_100/api_calls_per_pod")));
  o += fmt::format("| terwayd RSS at rest / with 500 allocations | {} / {} MiB |\n",
                   Num(At(pool, "rss_kib/at_rest").is_number() ? Json(At(pool, "rss_kib/at_rest").get<double>() / 1024) : Json(), "{:.1f}"),
                   Num(At(pool, "rss_kib/with_500_allocations").is_number()
                           ? Json(At(pool, "rss_kib/with_500_allocations").get<double>() / 1024)
                           : Json(),
                       "{:.1f}"));

  // --- policy
  o += fmt::format("\n**NetworkPolicy** (`{}`)\n\n", At(pol, "command").get<std::string>());
  o += "| 1,000 pods on the node | 1,000 policies | 10,000 policies |\n|---|---|---|\n";
  auto both = [&](const std::string& label, const std::string& path, const char* spec, const char* unit) {
    o += fmt::format("| {} | {}{} | {}{} |\n", label, Num(At(pol, "compile_apply/1000/" + path), spec), unit,
                     Num(At(pol, "compile_apply/10000/" + path), spec), unit);
  };
  o += fmt::format("| chains / rules / IP sets | {} / {} / {} | {} / {} / {} |\n",
                   Num(At(pol, "compile_apply/1000/chains"), "{:.0f}"), Num(At(pol, "compile_apply/1000/rules"), "{:.0f}"),
                   Num(At(pol, "compile_apply/1000/ip_sets"), "{:.0f}"), Num(At(pol, "compile_apply/10000/chains"), "{:.0f}"),
                   Num(At(pol, "compile_apply/10000/rules"), "{:.0f}"), Num(At(pol, "compile_apply/10000/ip_sets"), "{:.0f}"));
  both("full compile, p50", "compile_ms/p50", "{:.0f}", " ms");
  both("first apply into an empty namespace", "first_apply_ms", "{:.0f}", " ms");
  both("whole replacement in place (a restart), p50", "full_replace_ms/p50", "{:.0f}", " ms");
  both("incremental compiler, first build (a start)", "incremental/rebuild_ms", "{:.0f}", " ms");
  both("a pod label change, before: full recompile + whole-model diff, p50", "full_recompile/label_change_ms/p50",
       "{:.1f}", " ms");
  both("a pod label change, after: incremental + its change only, p50", "incremental/label_change_ms/p50", "{:.1f}",
       " ms");
  both("&nbsp;&nbsp;of which the model update, p50", "incremental/label_change_compile_ms/p50", "{:.1f}", " ms");
  both("&nbsp;&nbsp;ratio before / after", "ratio_full_over_incremental/label_change", "{:.1f}", "x");
  both("a pod starts, before: full recompile + whole-model diff, p50", "full_recompile/pod_start_ms/p50", "{:.1f}",
       " ms");
  both("a pod starts, after: incremental + its change only, p50", "incremental/pod_start_ms/p50", "{:.1f}", " ms");
  both("&nbsp;&nbsp;of which the model update, p50", "incremental/pod_start_compile_ms/p50", "{:.1f}", " ms");
  both("&nbsp;&nbsp;ratio before / after", "ratio_full_over_incremental/pod_start", "{:.1f}", "x");

  o += "\n| terwayd's PolicyController, 1,000 pods, lab API in process | 1,000 policies | 10,000 policies |\n"
       "|---|---|---|\n";
  auto ctl = [&](const std::string& label, const std::string& path, const char* spec, const char* unit) {
    o += fmt::format("| {} | {}{} | {}{} |\n", label, Num(At(pol, "controller/1000/" + path), spec), unit,
                     Num(At(pol, "controller/10000/" + path), spec), unit);
  };
  auto p50_p90 = [&](const std::string& label, const std::string& path) {
    o += fmt::format("| {} (n={}) | {} / {} ms | {} / {} ms |\n", label,
                     Num(At(pol, "controller/10000/" + path + "/n"), "{:.0f}"),
                     Num(At(pol, "controller/1000/" + path + "/p50"), "{:.1f}"),
                     Num(At(pol, "controller/1000/" + path + "/p90"), "{:.1f}"),
                     Num(At(pol, "controller/10000/" + path + "/p50"), "{:.1f}"),
                     Num(At(pol, "controller/10000/" + path + "/p90"), "{:.1f}"));
  };
  p50_p90("pod start: PodStarting until its chain is in the kernel (CNI ADD waits for it), p50 / p90",
          "pod_start_ms");
  p50_p90("label change -> enforced, API write -> kernel, real probe: grant, p50 / p90",
          "label_change_to_enforcement_ms/grant");
  p50_p90("label change -> enforced: revoke, p50 / p90", "label_change_to_enforcement_ms/revoke");
  ctl("controller start: list, convert, build, first apply", "controller_start_ms", "{:.0f}", " ms");
  ctl("memory the controller holds (RSS growth of the process)", "rss_mib/controller", "{:.0f}", " MiB");
  o += "\n| two pods, same node | no policy | 1,000 policies loaded | ratio |\n|---|---|---|---|\n";
  o += fmt::format("| TCP Gbit/s (median) | {} | {} | {} |\n", Num(At(pol, "traffic_1000_policies/tcp_gbps/no_policy")),
                   Num(At(pol, "traffic_1000_policies/tcp_gbps/with_policies")),
                   Num(At(pol, "traffic_1000_policies/tcp_gbps/ratio")));
  o += fmt::format("| TCP connections/s (median) | {} | {} | {} |\n",
                   Num(At(pol, "traffic_1000_policies/tcp_connections_per_s/no_policy"), "{:.0f}"),
                   Num(At(pol, "traffic_1000_policies/tcp_connections_per_s/with_policies"), "{:.0f}"),
                   Num(At(pol, "traffic_1000_policies/tcp_connections_per_s/ratio")));
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  std::string results = "bench/results", doc = "docs/benchmarks.md";
  for (int i = 1; i + 1 < argc; i++) {
    std::string a = argv[i];
    if (a == "--results") results = argv[i + 1];
    if (a == "--doc") doc = argv[i + 1];
  }
  Json pool = Load(results + "/terwayd_pool.json"), cni = Load(results + "/cni_datapath.json"),
       pol = Load(results + "/policy.json"), run = Load(results + "/run.json"),
       ds = Load(results + "/dual_stack.json");
  for (const auto& [name, j] : {std::pair{"terwayd_pool.json", &pool}, {"cni_datapath.json", &cni},
                                {"policy.json", &pol}}) {
    if (!j->is_object() || !j->contains("command")) {
      std::cerr << "bench_report: " << results << "/" << name
                << " is missing or not a benchmark result; run make bench first\n";
      return 1;
    }
  }
  std::ifstream in(doc);
  if (!in) {
    std::cerr << "bench_report: cannot read " << doc << "\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  auto b = text.find(kBegin), e = text.find(kEnd);
  if (b == std::string::npos || e == std::string::npos || e < b) {
    std::cerr << "bench_report: " << doc << " lacks the markers " << kBegin << " ... " << kEnd << "\n";
    return 1;
  }
  std::string out = text.substr(0, b + std::string(kBegin).size()) + "\n" + Render(pool, cni, pol, run, ds) + "\n" +
                    text.substr(e);
  std::ofstream(doc) << out;
  std::cout << "bench_report: tables in " << doc << " rewritten from " << results << "\n";
  return 0;
}
