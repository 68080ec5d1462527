// The eBPF datapath's per-packet cost under real traffic, same node (needs
// root). Builds, in namespaces of its own, a bare veth pair and one "node"
// per set of BPF objects given (each with two pods wired as shared-ENI mode
// wires them, the objects' pod program on both host veths, their maps in a
// private bpffs), then runs, in interleaved rounds, the connection rate and
// the request rate of bench_util.h (the figures of cni_datapath_bench)
// between the two pods of each node and over the bare pair. With the
// kernel's BPF statistics on (kernel.bpf_stats_enabled, restored on exit)
// it reads each pod program's run_cnt and run_time_ns around every
// measurement: ns per packet inside the program under that traffic, and
// packets per transaction. A measurement of a node counts only if its
// pod_to_pod counter rose (the traffic took the fast path).
//
//   ebpf_dp_traffic_bench --objects NAME POD_OBJ ENI_OBJ [--objects ...]
//                         [--rounds N] [--seconds S] [--conntrack-entries N] [--no-stats]
//                         [--tests conn,rr,tput]
//
// tput: iperf3 TCP throughput (bits/s; its pkt/tx column is packets per bit).
//
// --conntrack-entries N first fills the kernel's conntrack table
// with N UDP flows (through a nat hook in another namespace of ours), so
// the programs' conntrack lookups miss in a populated table, as on a node
// whose stack carries other traffic.
//
// Traffic stays inside the namespaces (198.18.0.0/24, the benchmarking
// range); everything is removed on exit.
#include <arpa/inet.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench_util.h"
#include "bpf/include/datapath_abi.h"

namespace {

using terway::bench::ConnectRate;
using terway::bench::RequestRate;

int Sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

std::string Out(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  return out;
}

uint32_t Nip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

// kernel.bpf_stats_enabled on while we run, its former value back after.
class BpfStats {
 public:
  explicit BpfStats(bool on) : on_(on) {
    if (!on_) return;
    std::ifstream f("/proc/sys/kernel/bpf_stats_enabled");
    f >> former_;
    std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << "1";
  }
  ~BpfStats() {
    if (on_) std::ofstream("/proc/sys/kernel/bpf_stats_enabled") << former_;
  }

 private:
  bool on_;
  std::string former_ = "0";
};

struct ProgStats {
  uint64_t cnt = 0, ns = 0;
};

ProgStats Read(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return {};
  return {info.run_cnt, info.run_time_ns};
}

uint64_t PodToPod(int cnt_fd) {
  uint32_t key = TERWAY_DP_CNT_POD_TO_POD;
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> v(ncpu > 0 ? ncpu : 1);
  if (bpf_map_lookup_elem(cnt_fd, &key, v.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t x : v) sum += x;
  return sum;
}

// A node: two pods and the objects' programs, in namespaces named after it.
struct Node {
  std::string name, node_ns, a_ns, b_ns, bpffs;
  int pod_fd = -1, cnt_fd = -1;
  bpf_object* pod_obj = nullptr;
  bpf_object* eni_obj = nullptr;

  ~Node() {
    if (pod_obj != nullptr) bpf_object__close(pod_obj);
    if (eni_obj != nullptr) bpf_object__close(eni_obj);
    for (const auto& n : {node_ns, a_ns, b_ns}) {
      if (!n.empty()) (void)terway::netlink::DeleteNamedNetns(n);
    }
    if (!bpffs.empty()) {
      umount2(bpffs.c_str(), MNT_DETACH);
      rmdir(bpffs.c_str());
    }
  }
};

bpf_object* Load(const std::string& path, const std::string& pins) {
  LIBBPF_OPTS(bpf_object_open_opts, o, .pin_root_path = pins.c_str());
  bpf_object* obj = bpf_object__open_file(path.c_str(), &o);
  if (obj == nullptr) return nullptr;
  if (bpf_object__load(obj) != 0) {
    bpf_object__close(obj);
    return nullptr;
  }
  return obj;
}

// Sets up node `idx` with the objects; false (and a message) on failure.
bool Build(Node* n, int idx, const std::string& name, const std::string& pod_o, const std::string& eni_o) {
  n->name = name;
  const std::string s = std::to_string(getpid()) + "_" + std::to_string(idx);
  n->node_ns = "twtbn" + s;
  n->a_ns = "twtbA" + s;
  n->b_ns = "twtbB" + s;
  for (const auto& ns : {n->node_ns, n->a_ns, n->b_ns}) {
    if (!terway::netlink::CreateNamedNetns(ns).ok()) {
      std::cerr << "creating namespace " << ns << " failed\n";
      return false;
    }
  }
  char tmpl[] = "/tmp/twtbfs.XXXXXX";
  if (mkdtemp(tmpl) == nullptr || mount("bpf", tmpl, "bpf", 0, "mode=0700") != 0) {
    std::perror("mounting a private bpf filesystem");
    return false;
  }
  n->bpffs = tmpl;
  const std::string pins = n->bpffs + "/terway";
  mkdir(pins.c_str(), 0700);
  n->pod_obj = Load(pod_o, pins);
  n->eni_obj = Load(eni_o, pins);  // not attached: the same-node path is the pod program's
  if (n->pod_obj == nullptr || n->eni_obj == nullptr) {
    std::cerr << "loading " << pod_o << " / " << eni_o << " failed\n";
    return false;
  }
  bpf_program* prog = bpf_object__find_program_by_name(n->pod_obj, "terway_from_pod");
  if (prog == nullptr || bpf_program__pin(prog, (n->bpffs + "/from_pod").c_str()) != 0) {
    std::cerr << "pinning terway_from_pod failed\n";
    return false;
  }
  n->pod_fd = bpf_program__fd(prog);
  n->cnt_fd = bpf_object__find_map_fd_by_name(n->pod_obj, "terway_dp_cnt");
  const std::string N = "ip -n " + n->node_ns + " ";
  if (Sh(N + "link set lo up && " + N + "link add twa address 02:00:00:0a:00:01 type veth peer name eth0 address " +
         "02:00:00:0b:00:01 netns " + n->a_ns + " && " + N +
         "link add twb address 02:00:00:0a:00:02 type veth peer name eth0 address 02:00:00:0b:00:02 netns " +
         n->b_ns + " && " + N + "link set twa up && " + N + "link set twb up") != 0) {
    std::cerr << "wiring node " << name << " failed\n";
    return false;
  }
  struct PodSpec {
    std::string ns, ip, host, host_mac, pod_mac;
  };
  const PodSpec pods[2] = {{n->a_ns, "198.18.0.20", "twa", "02:00:00:0a:00:01", "02:00:00:0b:00:01"},
                           {n->b_ns, "198.18.0.21", "twb", "02:00:00:0a:00:02", "02:00:00:0b:00:02"}};
  int ep_fd = bpf_object__find_map_fd_by_name(n->pod_obj, "terway_dp_ep");
  int state_fd = bpf_object__find_map_fd_by_name(n->pod_obj, "terway_dp_policy_state");
  for (const auto& p : pods) {
    const std::string P = "ip -n " + p.ns + " ";
    if (Sh(P + "link set lo up && " + P + "link set eth0 up && " + P + "addr add " + p.ip + "/32 dev eth0 && " + P +
           "route add 169.254.1.1 dev eth0 scope link && " + P + "route add default via 169.254.1.1 dev eth0 && " +
           P + "neigh add 169.254.1.1 lladdr " + p.host_mac + " dev eth0 nud permanent") != 0) {
      std::cerr << "wiring pod " << p.ns << " failed\n";
      return false;
    }
    terway_dp_endpoint e{};
    e.host_ifindex = std::atoi(Out(N + "-o link show " + p.host).c_str());
    e.eni_ifindex = 0;  // same node only: nothing leaves through an ENI
    e.gateway = 0;
    sscanf(p.pod_mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &e.pod_mac[0], &e.pod_mac[1], &e.pod_mac[2],
           &e.pod_mac[3], &e.pod_mac[4], &e.pod_mac[5]);
    sscanf(p.host_mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &e.host_mac[0], &e.host_mac[1], &e.host_mac[2],
           &e.host_mac[3], &e.host_mac[4], &e.host_mac[5]);
    uint32_t key = Nip(p.ip.c_str());
    if (e.host_ifindex == 0 || bpf_map_update_elem(ep_fd, &key, &e, BPF_ANY) != 0) {
      std::cerr << "endpoint of " << p.ip << " not written\n";
      return false;
    }
    if (Sh("ip netns exec " + n->node_ns + " tc qdisc add dev " + p.host + " clsact && ip netns exec " +
           n->node_ns + " tc filter add dev " + p.host + " ingress prio 1 handle 1 bpf da object-pinned " +
           n->bpffs + "/from_pod") != 0) {
      std::cerr << "attaching to " << p.host << " failed\n";
      return false;
    }
  }
  uint32_t zero = 0, synced = TERWAY_DP_POLICY_SYNCED;
  if (bpf_map_update_elem(state_fd, &zero, &synced, BPF_ANY) != 0) {
    std::cerr << "policy state not written\n";
    return false;
  }
  return true;
}

struct Sample {
  double rate = 0, ns_per_pkt = 0, pkts_per_tx = 0;
  bool valid = false;
};

template <typename F>
Sample Measure(Node* n, double seconds, F run) {
  Sample s;
  ProgStats before = n != nullptr ? Read(n->pod_fd) : ProgStats{};
  uint64_t p2p = n != nullptr ? PodToPod(n->cnt_fd) : 0;
  auto r = run();
  if (!r.ok()) {
    std::cerr << r.error().ToString() << "\n";
    return s;
  }
  s.rate = *r;
  s.valid = true;
  if (n != nullptr) {
    ProgStats after = Read(n->pod_fd);
    uint64_t runs = after.cnt - before.cnt;
    s.ns_per_pkt = runs > 0 ? static_cast<double>(after.ns - before.ns) / runs : 0;
    s.valid = PodToPod(n->cnt_fd) > p2p;
    s.pkts_per_tx = s.rate > 0 ? static_cast<double>(runs) / (s.rate * seconds) : 0;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  struct Set {
    std::string name, pod, eni;
  };
  std::vector<Set> sets;
  int rounds = 5, ct_entries = 0;
  bool stats_on = true;
  std::vector<std::string> tests = {"conn", "rr"};
  double seconds = 2;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--objects" && i + 3 < argc) {
      sets.push_back({argv[i + 1], argv[i + 2], argv[i + 3]});
      i += 3;
    } else if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else if (a == "--tests" && i + 1 < argc) {
      tests.clear();
      std::string list = argv[++i];
      for (size_t at = 0; at <= list.size();) {
        size_t comma = list.find(',', at);
        if (comma == std::string::npos) comma = list.size();
        tests.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (a == "--no-stats") {
      stats_on = false;  // the rates without the statistics' own cost (two clock reads a run)
    } else if (a == "--conntrack-entries" && i + 1 < argc) {
      ct_entries = std::atoi(argv[++i]);
    } else {
      std::cerr << "usage: " << argv[0]
                << " --objects NAME POD_OBJ ENI_OBJ [--objects ...] [--rounds N] [--seconds S]"
                   " [--conntrack-entries N] [--no-stats] [--tests conn,rr,tput]\n";
      return 2;
    }
  }
  bool known = std::all_of(tests.begin(), tests.end(),
                           [](const std::string& t) { return t == "conn" || t == "rr" || t == "tput"; });
  if (sets.empty() || rounds < 1 || seconds <= 0 || tests.empty() || !known) {
    std::cerr << "give at least one --objects set, --rounds >= 1, --seconds > 0, --tests of conn, rr, tput\n";
    return 2;
  }
  if (geteuid() != 0) {
    std::cerr << "needs root (namespaces, bpffs, tc)\n";
    return 1;
  }
  BpfStats stats(stats_on);
  const std::string bare_a = "twtbxA" + std::to_string(getpid()), bare_b = "twtbxB" + std::to_string(getpid());
  std::vector<std::string> extra_ns;
  struct Cleanup {
    std::vector<std::string>* ns;
    ~Cleanup() {
      for (const auto& n : *ns) (void)terway::netlink::DeleteNamedNetns(n);
    }
  } cleanup{&extra_ns};
  for (const auto& ns : {bare_a, bare_b}) {
    if (!terway::netlink::CreateNamedNetns(ns).ok()) return 1;
    extra_ns.push_back(ns);
  }
  if (Sh("ip -n " + bare_a + " link set lo up && ip -n " + bare_b + " link set lo up && ip -n " + bare_a +
         " link add eth0 type veth peer name eth0 netns " + bare_b + " && ip -n " + bare_a +
         " addr add 198.18.0.20/24 dev eth0 && ip -n " + bare_b + " addr add 198.18.0.21/24 dev eth0 && ip -n " +
         bare_a + " link set eth0 up && ip -n " + bare_b + " link set eth0 up") != 0) {
    std::cerr << "bare veth pair not wired\n";
    return 1;
  }
  std::vector<std::unique_ptr<Node>> nodes;
  for (size_t i = 0; i < sets.size(); ++i) {
    nodes.push_back(std::make_unique<Node>());
    if (!Build(nodes.back().get(), static_cast<int>(i), sets[i].name, sets[i].pod, sets[i].eni)) return 1;
  }
  if (ct_entries > 0) {
    // The conntrack table is one for all namespaces (entries keyed by their
    // namespace too): fill it from a namespace of ours whose ct rule
    // makes conntrack track every flow (a chain alone does not), with UDP
    // packets to closed ports (unreplied entries live 30 s: keep runs short).
    const std::string ct_ns = "twtbct" + std::to_string(getpid());
    if (!terway::netlink::CreateNamedNetns(ct_ns).ok()) return 1;
    extra_ns.push_back(ct_ns);
    const std::string C = "ip netns exec " + ct_ns + " ";
    if (Sh("ip -n " + ct_ns + " link set lo up && " + C +
           "nft 'add table ip twtb; add chain ip twtb out { type filter hook output priority 0; }; "
           "add rule ip twtb out ct state new counter'") != 0) {
      std::cerr << "conntrack filler namespace not set up\n";
      return 1;
    }
    std::string py = C + "python3 -c 'import socket\ns=[socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]\n"
                         "n=" + std::to_string(ct_entries) + "\nfor i in range(n):\n"
                         "  s[i%8].sendto(b\"x\", (\"127.0.0.1\", 1024 + i % 60000))'";
    if (Sh(py) != 0) {
      std::cerr << "filling conntrack failed\n";
      return 1;
    }
    std::cout << "conntrack entries (filler namespace): " << Out(C + "cat /proc/sys/net/netfilter/nf_conntrack_count");
  }
  std::printf("%-8s %-6s %12s %10s %10s\n", "path", "test", "per second", "ns/pkt", "pkt/tx");
  std::map<std::string, std::vector<double>> sums;
  for (int r = 0; r < rounds; ++r) {
    for (const std::string& t : tests) {
      const char* test = t.c_str();
      auto run = [&](const std::string& srv, const std::string& cli) -> terway::Result<double> {
        if (t == "conn") return ConnectRate(srv, cli, "198.18.0.21", seconds);
        if (t == "rr") return RequestRate(srv, cli, "198.18.0.21", seconds);
        return terway::bench::Iperf(srv, cli, "198.18.0.21", std::max(1, static_cast<int>(seconds)));  // bits/s
      };
      Sample bare = Measure(nullptr, seconds, [&] { return run(bare_b, bare_a); });
      std::printf("%-8s %-6s %12.0f\n", "bare", test, bare.rate);
      for (auto& n : nodes) {
        Sample s = Measure(n.get(), seconds, [&] { return run(n->b_ns, n->a_ns); });
        std::printf("%-8s %-6s %12.0f %10.1f %10.2f %s ratio %.3f\n", n->name.c_str(), test, s.rate, s.ns_per_pkt,
                    s.pkts_per_tx, s.valid ? "" : "(INVALID: no fast path)", bare.rate > 0 ? s.rate / bare.rate : 0);
        if (s.valid && bare.valid) {
          sums[n->name + " " + test + " ratio"].push_back(s.rate / bare.rate);
          sums[n->name + " " + test + " ns/pkt"].push_back(s.ns_per_pkt);
        }
      }
      std::fflush(stdout);
    }
  }
  std::printf("\nmedians over %d rounds:\n", rounds);
  for (auto& [k, v] : sums) std::printf("  %-22s %8.3f\n", k.c_str(), terway::bench::Percentile(v, 0.5));
  return 0;
}
