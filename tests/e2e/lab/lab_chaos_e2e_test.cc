// Chaos: pods are added and deleted continuously on a two-node lab (through
// the API and the nodes' kubelets, as a cluster does) while terwayd is
// SIGKILLed and restarted, vpcsim -- the cloud -- is SIGKILLed and restarted,
// and the cloud throttles, answers server errors and fails the release calls
// (UnassignPrivateIpAddresses, DetachNetworkInterface,
// DeleteNetworkInterface). The pool is configured small and fast so that
// idle-IP reclaim and ENI deletion run all the time.
//
// Throughout, a sampler reads every sandbox's addresses and fails on any
// IPv4 address configured in two sandboxes at once. At the end (faults
// cleared, churn stopped) the cloud, the state databases, the kernel, the
// sandboxes and the API must agree; after the last pods are deleted nothing
// may be left (ENIs above the pool's bound, IPs, veths, rules, routes, nft
// elements, namespaces); and every node must still serve a pod that reaches
// the other node. The figures go to the log in one line: CHAOS SUMMARY.
//
// Length: kChaosFor of chaos (TERWAY_CHAOS_SECONDS overrides, for longer
// soaks), about 3 minutes in all. All traffic stays in the lab's namespaces.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "e2e/lab/chaos_figures.h"
#include "e2e/lab/lab_inventory.h"

namespace terway::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr auto kChaosFor = 180s;
constexpr int kChurnWorkers = 3;
constexpr int kPodsPerWorker = 3;  // two tiny nodes hold 6 pods each
constexpr int kMaxPodsPerNode = 6;  // ecs.vpcsim.tiny: 2 secondary ENIs x 3 IPs
constexpr auto kWave = 16s;        // fill for one, drain for the next
constexpr auto kSampleEvery = 250ms;
// Small and fast, so that reclaim and ENI deletion happen during the run;
// leaked ENIs (made but never attached when terwayd dies) are collected
// within the run too.
constexpr PoolBound kPool{.max_pool_size = 1, .min_pool_size = 0};

int ChaosSeconds() {
  const char* env = std::getenv("TERWAY_CHAOS_SECONDS");
  int s = env ? std::atoi(env) : 0;
  return s > 0 ? s : static_cast<int>(kChaosFor.count());
}

class LabChaos : public LabInventory {
 protected:
  void TearDown() override {
    StopAll();
    if (!world_.empty() && geteuid() == 0) {
      // Whatever a failure left behind: `down` must see a healthy cloud.
      (void)Lab({"vpcsim", "start"}, 100s);
      (void)Vpcsim({"fault", "clear"});
      KeepLogsOnFailure();
      // A failed run may have wedged a terwayd: `down` would wait out the
      // plugin's DEL timeout per pod. Without terwayd it removes the pods'
      // namespaces directly, and the nodes' namespaces go with the world.
      if (HasFailure()) {
        for (const char* node : {"node1", "node2"}) KillTerwayd(node, /*quiet=*/true);
      }
    }
    LabInventory::TearDown();
  }

  // The daemons' logs outlive the lab when the test failed (`down` removes
  // the lab directory), so the failure can be read; TERWAY_CHAOS_KEEP_LOGS
  // keeps them always.
  void KeepLogsOnFailure() {
    if (!HasFailure() && !std::getenv("TERWAY_CHAOS_KEEP_LOGS")) return;
    const std::string keep = "/tmp/terway-chaos-logs-" + world_;
    auto r = RunCommand({"/bin/sh", "-c",
                         fmt::format("mkdir -p -m 700 {0} && "
                                     "cp {1}/vpcsim.log {1}/control-plane.log {1}/lab.json {0}/ ; "
                                     "for n in {1}/nodes/*; do cp $n/terwayd.log {0}/$(basename $n)-terwayd.log; done",
                                     keep, lab_dir_)});
    std::cout << "chaos: the lab's logs are kept in " << keep << " (" << r.output << ")" << std::endl;
  }

  // ---- pacing -------------------------------------------------------------

  // Waits for d unless the phase ends; false when it ended.
  bool Pause(std::atomic<bool>& stop, std::chrono::milliseconds d) {
    std::unique_lock l(pace_mu_);
    return !pace_cv_.wait_for(l, d, [&] { return stop.load(); });
  }
  void Stop(std::atomic<bool>& flag) {
    {
      std::lock_guard l(pace_mu_);
      flag = true;
    }
    pace_cv_.notify_all();
  }
  void StopAll() {
    Stop(stop_chaos_);
    for (auto& t : chaos_) t.join();
    chaos_.clear();
    Stop(stop_churn_);
    for (auto& t : churn_) t.join();
    churn_.clear();
    Stop(stop_sampler_);
    if (sampler_.joinable()) sampler_.join();
  }

  void Note(const std::string& line) {
    const auto s = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
    std::lock_guard l(log_mu_);
    std::cout << fmt::format("[chaos {:7.1f}s] {}", s / 1000.0, line) << std::endl;
  }
  // A failure found on a background thread, reported by the main thread.
  void Problem(const std::string& what) {
    Note("PROBLEM: " + what);
    std::lock_guard l(log_mu_);
    problems_.push_back(what);
  }

  CommandResult Vpcsim(std::vector<std::string> args) {
    std::vector<std::string> argv = {BinaryPath("vpcsim")};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--state", lab_dir_ + "/vpcsim"});
    return RunCommand(argv, "", 20s);
  }

  // ---- the sampler: no address in two sandboxes at once ---------------------

  void Sample() {
    std::map<std::string, std::vector<std::string>> owners;  // ip -> sandboxes, in read order
    const auto names = NetnsWithPrefix(world_ + "-pod-");
    int sandboxes = 0;
    for (const auto& ns : names) {
      auto ips = NetnsIpv4(ns);
      if (!ips.ok()) continue;  // deleted meanwhile
      sandboxes++;
      for (const auto& ip : *ips) owners[ip].push_back(ns);
    }
    figures_.samples++;
    int max = figures_.max_sandboxes;
    while (sandboxes > max && !figures_.max_sandboxes.compare_exchange_weak(max, sandboxes)) {
    }
    for (const auto& [ip, who] : owners) {
      if (who.size() < 2) continue;
      // Read in turn, so confirm: the first holder still has the address
      // after the second was seen with it. Sandbox names are never reused
      // in this test, so the first held it the whole time.
      auto again = NetnsIpv4(who[0]);
      if (!again.ok() || !again->count(ip)) continue;
      std::string all;
      for (const auto& w : who) all += " " + w;
      if (!reported_.insert(ip + all).second) continue;  // one violation, seen again
      figures_.violations++;
      Problem(fmt::format("INVARIANT VIOLATED: {} is configured in {} sandboxes at once:{}", ip, who.size(), all));
    }
  }

  // ---- churn -------------------------------------------------------------

  // `pod add`; the IP, or "" with the reason in *why.
  std::string TryAdd(const std::string& key, const std::string& node, std::string* why) {
    auto r = Lab({"pod", "add", key, "--node", node}, 60s);
    std::string out = r.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    if (r.exit_code == 0) return out.substr(out.rfind('\n') + 1);
    *why = out.substr(out.rfind('\n') + 1);
    return "";
  }
  // `pod del` until the pod is gone (bounded by the caller's stop): a DEL
  // that fails (terwayd killed in it) leaves the sandbox, and the next
  // `pod del` runs DEL again, as a kubelet retries KillPodSandbox.
  bool TryDel(const std::string& key) {
    auto r = Lab({"pod", "del", key}, 30s);
    if (r.exit_code == 0 || r.output.find("is not in the lab") != std::string::npos) return true;
    Note(fmt::format("pod del {} failed (retried later): {}", key, r.output.substr(0, 300)));
    return false;
  }

  // The pods a worker keeps now: waves of kWave fill the nodes and then
  // drain them, so idle IPs pile up, are reclaimed, and emptied ENIs are
  // deleted -- while the faults fail exactly those calls.
  int Target(int worker) {
    const auto wave = (Clock::now() - start_) / kWave;
    if (wave % 2 == 0) return kPodsPerWorker;
    return worker == 0 ? 1 : 0;
  }

  void Churn(int worker) {
    std::mt19937 rng(1000 + worker);
    std::vector<ExpectedPod> live;
    std::vector<std::string> undeleted;  // failed adds and dels: still to be deleted
    int seq = 0;
    while (!stop_churn_) {
      if (!undeleted.empty()) {
        if (TryDel(undeleted.back())) {
          undeleted.pop_back();
        } else {
          figures_.del_failures++;
          if (!Pause(stop_churn_, 1s)) break;
        }
        continue;
      }
      const int target = Target(worker);
      const int have = static_cast<int>(live.size());
      if (have == 0 && target == 0) {
        if (!Pause(stop_churn_, 200ms)) break;
        continue;
      }
      // Below the target: add; above: delete; at it: replace one (a delete
      // now, an add next round).
      if (have < target) {
        ExpectedPod p{fmt::format("default/c{}-{}", worker, seq++), rng() % 2 ? "node1" : "node2", ""};
        std::string why;
        p.ip = TryAdd(p.key, p.node, &why);
        if (!p.ip.empty()) {
          figures_.pods_added++;
          live.push_back(p);
        } else {
          figures_.add_failures++;
          std::string on_node;
          const nlohmann::json state = State();  // kept: a range over a temporary's member would dangle
          for (const auto& q : state["pods"]) {
            if (q["node"] == p.node) on_node += " " + q["name"].get<std::string>() + "=" + q.value("ip", "");
          }
          Note(fmt::format("pod add {} on {} failed: {} [sandboxes on {} now:{}]", p.key, p.node, why.substr(0, 300),
                           p.node, on_node));
          undeleted.push_back(p.key);  // whatever part of it exists
        }
      } else {
        size_t i = rng() % live.size();
        const std::string key = live[i].key;
        live.erase(live.begin() + static_cast<long>(i));
        if (TryDel(key)) {
          figures_.pods_deleted++;
        } else {
          figures_.del_failures++;
          undeleted.push_back(key);
        }
      }
      if (!Pause(stop_churn_, std::chrono::milliseconds(rng() % 200))) break;
    }
    // Failed adds and dels are finished before the end; survivors are kept
    // for the agreement check.
    const auto until = Clock::now() + 60s;
    for (const auto& key : undeleted) {
      if (!WaitFor([&] { return TryDel(key); }, Left(until), 1s)) {
        Problem("pod " + key + " could not be deleted within 60 s after the churn");
      }
    }
    std::lock_guard l(log_mu_);
    survivors_.insert(survivors_.end(), live.begin(), live.end());
  }

  // ---- chaos -------------------------------------------------------------

  // Accumulates vpcsim's counters of this process's life (read before a
  // kill and at the end).
  void CollectStats() {
    auto r = Vpcsim({"stats"});
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    if (r.exit_code != 0 || !j.is_object()) return;
    std::lock_guard l(figures_.mu);
    // Named: items() of a temporary would dangle in a range-for.
    const nlohmann::json actions = j.value("actions", nlohmann::json::object());
    for (const auto& [action, a] : actions.items()) {
      figures_.calls[action] += a.value("calls", 0L);
      const nlohmann::json codes = a.value("errors_by_code", nlohmann::json::object());
      for (const auto& [code, n] : codes.items()) figures_.errors[action + "/" + code] += n.get<long>();
    }
  }

  bool Daemon(const std::vector<std::string>& args) {
    auto r = Lab(args, 100s);
    if (r.exit_code != 0) {
      Problem(fmt::format("terway-lab {} {} failed: {}", args[0], args[1], r.output));
      return false;
    }
    return true;
  }
  // Start time (field 22 of /proc/<pid>/stat) of a live process; 0 when
  // it is gone or a zombie.
  static long long StartTime(pid_t pid) {
    const std::string stat = ReadFile(fmt::format("/proc/{}/stat", pid));
    const auto paren = stat.rfind(')');  // the command name may hold anything
    if (paren == std::string::npos) return 0;
    std::istringstream in(stat.substr(paren + 2));
    std::string field;
    in >> field;
    if (field == "Z" || field == "X") return 0;
    for (int i = 4; i <= 21 && in >> field; i++) {
    }
    long long start = 0;
    in >> start;
    return start;
  }

  // SIGKILL by the pid lab.json records for the node's terwayd (checked
  // against its start time, so a recycled pid is never hit) -- not through
  // `terway-lab terwayd kill`, which waits for the lab lock and so never
  // lands in the middle of a CNI request while plugin runs hold that lock.
  void KillTerwayd(const std::string& node, bool quiet = false) {
    const nlohmann::json state = State();
    for (const auto& n : state["nodes"]) {
      if (n["name"] != node) continue;
      const pid_t pid = n["terwayd"]["pid"].get<pid_t>();
      const long long started = n["terwayd"]["start_time"].get<long long>();
      if (pid <= 0 || StartTime(pid) != started) {
        if (quiet) return;
        Problem(fmt::format("terwayd on {} (pid {}) is not running when the chaos would kill it", node, pid));
        return;
      }
      kill(pid, SIGKILL);
      if (!WaitFor([&] { return StartTime(pid) != started; }, 10s)) {
        Problem(fmt::format("terwayd on {} (pid {}) survived SIGKILL for 10 s", node, pid));
        return;
      }
      figures_.terwayd_kills++;
      Note("terwayd on " + node + " SIGKILLed");
    }
  }
  void KillVpcsim() {
    CollectStats();
    if (Daemon({"vpcsim", "kill"})) {
      figures_.vpcsim_kills++;
      Note("vpcsim SIGKILLed");
    }
  }

  // Kills and restarts, in a cycle: one terwayd, the cloud, both terwayds,
  // the cloud and a terwayd at once (terwayd then starts while the cloud is
  // away and must wait for it), and a terwayd that also loses its state
  // database (a lost disk: it must rebuild what it knew from the kernel, the
  // cloud and the API before serving). Each event restores what it killed
  // before it returns; the downtime is the schedule's, not a wait for a
  // condition.
  void KillDaemons() {
    std::mt19937 rng(7);
    for (int event = 0; Pause(stop_chaos_, std::chrono::milliseconds(4000 + rng() % 5000)); event++) {
      const auto down_for = std::chrono::milliseconds(500 + rng() % 2500);
      const std::string node = (event / 6) % 2 == 0 ? "node1" : "node2";
      const std::string other = node == "node1" ? "node2" : "node1";
      switch (event % 6) {
        case 0:
        case 2:
          KillTerwayd(event % 6 == 0 ? node : other);
          std::this_thread::sleep_for(down_for);
          Daemon({"terwayd", "start", event % 6 == 0 ? node : other});
          break;
        case 1:
          KillVpcsim();
          std::this_thread::sleep_for(down_for);
          Daemon({"vpcsim", "start"});
          break;
        case 3: {
          KillVpcsim();
          KillTerwayd(node);
          std::thread restart([&] { Daemon({"terwayd", "start", node}); });
          std::this_thread::sleep_for(down_for);
          Daemon({"vpcsim", "start"});
          restart.join();
          break;
        }
        case 4:
          KillTerwayd(other);
          for (const char* suffix : {"", "-wal", "-shm"}) {
            const std::string db = lab_dir_ + "/nodes/" + other + "/terwayd.db" + suffix;
            if (unlink(db.c_str()) != 0 && errno != ENOENT) Problem("removing " + db + ": " + strerror(errno));
          }
          figures_.databases_lost++;
          Note("terwayd's state database on " + other + " removed");
          Daemon({"terwayd", "start", other});
          break;
        case 5: {
          KillTerwayd(node);
          KillTerwayd(other);
          std::thread restart([&] { Daemon({"terwayd", "start", other}); });
          std::this_thread::sleep_for(down_for);
          Daemon({"terwayd", "start", node});
          restart.join();
          break;
        }
      }
      Note("daemons back");
    }
  }

  // Fault episodes through vpcsim's admin endpoint, one per churn wave:
  // while the nodes fill, the cloud throttles or answers server errors
  // (AssignPrivateIpAddresses, CreateNetworkInterface, ... retried); while
  // they drain, it fails the releases that reclaim makes. (A vpcsim restart
  // clears them early: faults live in its memory.)
  void InjectFaults() {
    struct Fault {
      std::string action, flag, rate;
    };
    struct Episode {
      std::string name;
      std::vector<Fault> faults;
    };
    const std::vector<Episode> filling = {
        {"throttling", {{"*", "--throttle-rate", "0.4"}}},
        {"server errors", {{"*", "--error-rate", "0.3"}}},
    };
    const std::vector<Episode> draining = {
        {"failing releases",
         {{"UnassignPrivateIpAddresses", "--error-rate", "1"},
          {"DetachNetworkInterface", "--error-rate", "1"},
          {"DeleteNetworkInterface", "--error-rate", "1"}}},
        {"flaky releases",
         {{"UnassignPrivateIpAddresses", "--error-rate", "0.5"},
          {"DetachNetworkInterface", "--throttle-rate", "0.5"},
          {"DeleteNetworkInterface", "--error-rate", "0.5"}}},
    };
    for (long wave = (Clock::now() - start_) / kWave + 1;; wave++) {
      // A second into the wave, when the churn has turned.
      const auto at = start_ + kWave * wave + 1s;
      if (!Pause(stop_chaos_, std::chrono::duration_cast<std::chrono::milliseconds>(at - Clock::now()))) break;
      const Episode& e = wave % 2 == 0 ? filling[(wave / 2) % 2] : draining[(wave / 2) % 2];
      bool set = true;
      for (const auto& f : e.faults) {
        set = set && Vpcsim({"fault", "set", "--action", f.action, f.flag, f.rate}).exit_code == 0;
      }
      if (!set) {
        Note("fault episode '" + e.name + "' not set: vpcsim is down");
        continue;
      }
      figures_.fault_episodes++;
      Note("faults on: " + e.name);
      // Set again every second: a vpcsim killed meanwhile comes back healthy.
      bool more = true;
      for (const auto until = Clock::now() + kWave - 3s; more && Clock::now() < until;) {
        more = Pause(stop_chaos_, 1s);
        for (const auto& f : e.faults) (void)Vpcsim({"fault", "set", "--action", f.action, f.flag, f.rate});
      }
      (void)Vpcsim({"fault", "clear"});
      Note("faults cleared");
      if (!more) break;
    }
  }

  // ---- the end -------------------------------------------------------------

  // A pod on each node; each pings the other across the VPC.
  // A survivor on a full node is deleted first (the churn picks nodes at
  // random, so the chaos may stop with one node holding all it can): a full
  // node refusing is right, and what is asked here is whether it serves.
  void EveryNodeServes(std::vector<ExpectedPod>* pods) {
    std::vector<ExpectedPod> finals = {{"default/final1", "node1", ""}, {"default/final2", "node2", ""}};
    for (auto& p : finals) {
      auto on_node = [&] {
        return std::count_if(pods->begin(), pods->end(), [&](const ExpectedPod& q) { return q.node == p.node; });
      };
      if (on_node() >= kMaxPodsPerNode) {
        auto victim = std::find_if(pods->begin(), pods->end(), [&](const ExpectedPod& q) { return q.node == p.node; });
        const std::string key = victim->key;
        ASSERT_TRUE(WaitFor([&] { return TryDel(key); }, 60s, 1s)) << "making room on full " << p.node << ": pod del "
                                                                    << key;
        figures_.pods_deleted++;
        pods->erase(victim);
      }
      std::string why;
      p.ip = TryAdd(p.key, p.node, &why);
      ASSERT_FALSE(p.ip.empty()) << p.node << " no longer serves: pod add " << p.key << ": " << why;
      figures_.pods_added++;
      pods->push_back(p);
    }
    for (int i = 0; i < 2; i++) {
      const auto& from = finals[i];
      const auto& to = finals[1 - i];
      bool ok = WaitFor([&] { return Exec(from.key, {"/bin/ping", "-c", "1", "-W", "1", to.ip}, 10s).exit_code == 0; },
                        20s, 200ms);
      EXPECT_TRUE(ok) << from.key << " on " << from.node << " cannot reach " << to.key << " (" << to.ip << ") on "
                      << to.node;
    }
  }

  // Time left until a deadline (zero when past).
  static std::chrono::milliseconds Left(Clock::time_point until) {
    return std::max(0ms, std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()));
  }

  // Until they agree, or the deadline; the remaining disagreements.
  std::vector<std::string> Converge(const std::vector<ExpectedPod>& pods, std::chrono::seconds deadline) {
    std::vector<std::string> last;
    WaitFor(
        [&] {
          last = Disagreements(pods, kPool);
          return last.empty();
        },
        deadline, 1s);
    return last;
  }

  void ConfigurePool() {
    const std::string current = KubectlGet("configmap", "eni-config", "{.data.eni_conf}", "kube-system");
    auto conf = nlohmann::json::parse(current, nullptr, false);
    ASSERT_TRUE(conf.is_object()) << "eni-config's eni_conf: " << current;
    conf["max_pool_size"] = kPool.max_pool_size;
    conf["min_pool_size"] = kPool.min_pool_size;
    conf["idle_ip_reclaim_after"] = "2s";
    conf["idle_ip_reclaim_interval"] = "2s";
    conf["ip_pool_sync_period"] = "10s";
    conf["leaked_eni_grace_period"] = "20s";
    nlohmann::json patch = {{"data", {{"eni_conf", conf.dump()}}}};
    auto r = Kubectl({"patch", "configmap", "eni-config", "-n", "kube-system", "--type", "merge", "-p", patch.dump()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // terwayd reads eni_conf when it starts.
    for (const char* node : {"node1", "node2"}) {
      for (const char* verb : {"kill", "start"}) {
        auto d = Lab({"terwayd", verb, node});
        ASSERT_EQ(d.exit_code, 0) << d.output;
      }
      const std::string log = ReadFile(lab_dir_ + "/nodes/" + node + "/terwayd.log");
      ASSERT_NE(log.find("eni_conf from ConfigMap"), std::string::npos) << log;
    }
    // Every pod of the test is selected, so the policy table holds each one.
    Apply("allow-all", R"(apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: chaos-allow-all
  namespace: default
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
  ingress: [{}]
  egress: [{}]
)");
  }

  Figures figures_;
  Clock::time_point start_ = Clock::now();
  std::mutex pace_mu_, log_mu_;
  std::condition_variable pace_cv_;
  std::atomic<bool> stop_chaos_{false}, stop_churn_{false}, stop_sampler_{false};
  std::vector<std::thread> chaos_, churn_;
  std::thread sampler_;
  std::vector<std::string> problems_;
  std::vector<ExpectedPod> survivors_;
  std::set<std::string> reported_;  // sampler thread only
};

TEST_F(LabChaos, ChurnThroughDaemonCrashesCloudRestartsAndFaultsNeverSharesAnAddressAndLeavesNothing) {
  start_ = Clock::now();
  Up(2, "ecs.vpcsim.tiny", 0);
  ConfigurePool();
  if (HasFatalFailure()) return;

  sampler_ = std::thread([this] {
    while (!stop_sampler_) {
      Sample();
      Pause(stop_sampler_, kSampleEvery);
    }
  });
  for (int w = 0; w < kChurnWorkers; w++) churn_.emplace_back([this, w] { Churn(w); });
  chaos_.emplace_back([this] { KillDaemons(); });
  chaos_.emplace_back([this] { InjectFaults(); });
  Note(fmt::format("chaos for {} s: {} churn workers, daemon kills, cloud faults", ChaosSeconds(), kChurnWorkers));
  Pause(stop_chaos_, std::chrono::seconds(ChaosSeconds()));

  // The end: the chaos threads restore what they killed as they stop.
  Stop(stop_chaos_);
  for (auto& t : chaos_) t.join();
  chaos_.clear();
  ASSERT_EQ(Vpcsim({"fault", "clear"}).exit_code, 0);
  Note("chaos stopped; stopping the churn");
  Stop(stop_churn_);
  for (auto& t : churn_) t.join();
  churn_.clear();
  Note(fmt::format("churn stopped, {} pods survive", survivors_.size()));

  // Everything agrees on the survivors, which went through the crashes.
  // (Bounds: a healthy lab converges in seconds; a wedged one must still
  // fail, and tear down, well within the test's 900 s.)
  std::vector<ExpectedPod> pods = survivors_;
  auto left = Converge(pods, 90s);
  const bool healthy = left.empty();
  EXPECT_TRUE(healthy) << "after the churn, with " << pods.size() << " pods:\n" << Join(left);
  Note(healthy ? "survivors agree" : "survivors DISAGREE");

  EveryNodeServes(&pods);
  const auto until = Clock::now() + (healthy ? 60s : 30s);
  for (const auto& p : pods) {
    const bool gone = WaitFor([&] { return TryDel(p.key); }, Left(until), 1s);
    EXPECT_TRUE(gone) << "pod del " << p.key;
    if (gone) figures_.pods_deleted++;
  }
  pods.clear();
  // Nothing leaked: the leak collector of ENIs made but never attached
  // waits leaked_eni_grace_period (20 s) past its first sight.
  left = Converge(pods, healthy ? 90s : 30s);
  EXPECT_TRUE(left.empty()) << "after deleting every pod:\n" << Join(left);
  Stop(stop_sampler_);
  sampler_.join();
  CollectStats();

  const auto wall = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start_);
  const std::string summary = figures_.Summary(wall);
  std::cout << figures_.CloudCalls() << "\n" << summary << std::endl;
  RecordProperty("chaos_summary", summary);
  for (const auto& p : problems_) ADD_FAILURE() << p;
  EXPECT_EQ(figures_.violations.load(), 0);
  // Not vacuous: the churn ran, the sampler saw sandboxes, the release
  // paths ran and were failed by the faults.
  EXPECT_GE(figures_.pods_added.load(), 30);
  EXPECT_GE(figures_.pods_deleted.load(), 20);
  EXPECT_GE(figures_.samples.load(), 100);
  EXPECT_GE(figures_.max_sandboxes.load(), 2);
  EXPECT_GE(figures_.terwayd_kills.load(), 4);
  EXPECT_GE(figures_.vpcsim_kills.load(), 2);
  EXPECT_GE(figures_.databases_lost.load(), 1);
  EXPECT_GE(figures_.fault_episodes.load(), 4);
  std::lock_guard l(figures_.mu);
  EXPECT_GT(figures_.Succeeded("UnassignPrivateIpAddresses"), 0) << "idle-IP reclaim never gave an IP back";
  EXPECT_GT(figures_.Succeeded("DeleteNetworkInterface"), 0) << "no ENI was ever deleted";
  EXPECT_GT(figures_.Failed("UnassignPrivateIpAddresses"), 0) << "the faults never hit a reclaim";
}

}  // namespace
}  // namespace terway::testing
