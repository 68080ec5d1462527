// An in-memory EniProvider standing in for ECS: quotas, vSwitch address
// exhaustion, and per-operation fault injection (scripted errors, random
// throttling and 5xx, "applied but answered with an error", blocking hooks),
// with call counters. Addresses come from 198.18.0.0/15.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ip.h"
#include "ipam/provider.h"

namespace terway::ipam::testing {

class FakeCloud : public EniProvider {
 public:
  static constexpr const char* kPrimaryLookup = "DescribePrimaryEni";

  struct VSwitchSpec {
    std::string id;
    int64_t capacity = 1000;  // addresses left
    // IPv6 enabled (an IPv6 CIDR block); without, every IPv6 call on its
    // ENIs fails InvalidVSwitch.Ipv6NotTurnOn, as ECS answers.
    bool ipv6 = true;
  };

  FakeCloud(InstanceLimits limits, std::string instance_id, std::vector<VSwitchSpec> vswitches)
      : limits_(limits), instance_(std::move(instance_id)) {
    uint32_t base = Ipv4Addr::Parse("198.18.0.0")->value();
    for (size_t i = 0; i < vswitches.size(); ++i) {
      vsw_[vswitches[i].id] = {vswitches[i].capacity, base + static_cast<uint32_t>((i + 1) * 4096), 4,
                               vswitches[i].ipv6};
    }
    cloud::NetworkInterface primary;
    primary.network_interface_id = "eni-primary";
    primary.type = "Primary";
    primary.status = cloud::kEniInUse;
    primary.instance_id = instance_;
    primary.private_ip_address = "198.18.0.2";
    primary.private_ip_sets = {{"198.18.0.2", true}};
    primary.security_group_ids = {"sg-primary"};
    enis_[primary.network_interface_id] = primary;
  }

  // --- fault injection ---
  // Next call(s) of op fail with these errors, in order.
  void Script(const std::string& op, Error e) {
    std::lock_guard l(mu_);
    script_[op].push_back(std::move(e));
  }
  // Drops whatever is still scripted for op.
  void ClearScript(const std::string& op) {
    std::lock_guard l(mu_);
    script_.erase(op);
  }
  void SetRandomFaults(double throttle_rate, double server_error_rate, uint64_t seed) {
    std::lock_guard l(mu_);
    throttle_rate_ = throttle_rate;
    server_error_rate_ = server_error_rate;
    rng_.seed(seed);
  }
  // The next call of op does its work, then answers InternalError (a lost
  // response: the client cannot know it succeeded).
  void ApplyThenFail(const std::string& op) {
    std::lock_guard l(mu_);
    apply_then_fail_.insert(op);
  }
  // Runs before every call (outside the lock): tests block or count here.
  void SetHook(std::function<void(const std::string& op)> hook) {
    std::lock_guard l(mu_);
    hook_ = std::move(hook);
  }
  void SetDelay(std::chrono::milliseconds d) { delay_ = d; }
  void SetVSwitchCapacity(const std::string& id, int64_t n) {
    std::lock_guard l(mu_);
    vsw_[id].capacity = n;
  }
  // Makes DescribeVSwitches report this count regardless of the truth (stale data).
  void SetReportedAvailable(const std::string& id, int64_t n) {
    std::lock_guard l(mu_);
    reported_[id] = n;
  }
  // An ENI that someone else attached (not tagged by terway).
  void AttachForeignEni() {
    std::lock_guard l(mu_);
    cloud::NetworkInterface e;
    e.network_interface_id = "eni-foreign";
    e.type = "Secondary";
    e.status = cloud::kEniInUse;
    e.instance_id = instance_;
    e.private_ip_address = "198.18.0.3";
    e.private_ip_sets = {{"198.18.0.3", true}};
    enis_[e.network_interface_id] = e;
  }
  // An ENI of ours (creator=terway, tagged for the instance) attached with
  // `ips` IPs that the pool never recorded: a daemon killed between the
  // attach and its database commit, whose ENI was still attaching when the
  // next daemon read the cloud at start.
  std::string AttachUnrecordedTerwayEni(const std::string& vswitch_id, int ips,
                                        std::vector<cloud::Tag> extra_tags = {}) {
    std::lock_guard l(mu_);
    cloud::NetworkInterface e;
    e.network_interface_id = "eni-unrecorded-" + std::to_string(++next_eni_);
    e.type = "Secondary";
    e.status = cloud::kEniInUse;
    e.instance_id = instance_;
    e.vswitch_id = vswitch_id;
    e.mac_address = fmt::format("00:16:3e:01:{:02x}:{:02x}", next_eni_ / 256, next_eni_ % 256);
    e.tags = {{"creator", "terway"}, {kInstanceTagKey, instance_}};
    for (auto& t : extra_tags) e.tags.push_back(std::move(t));
    for (int i = 0; i < ips; ++i) e.private_ip_sets.push_back({NextIp(vsw_[vswitch_id]), i == 0});
    e.private_ip_address = e.private_ip_sets[0].address;
    enis_[e.network_interface_id] = e;
    return e.network_interface_id;
  }
  // The cloud silently loses one secondary IP of an ENI (e.g. an operator
  // unassigned it in the console).
  void DropIpBehindOurBack(const std::string& ip) {
    std::lock_guard l(mu_);
    for (auto& [id, e] : enis_) {
      auto& s = e.private_ip_sets;
      s.erase(std::remove_if(s.begin(), s.end(), [&](const cloud::PrivateIp& p) { return p.address == ip; }),
              s.end());
    }
  }

  // The primary ENI's security groups (DescribeNetworkInterfaces Type=Primary).
  // CreateNetworkInterface answers without the IPv6s it was asked for (a
  // cloud-side fault the caller must not turn into a half pod).
  void CreateWithoutIpv6(bool on) {
    std::lock_guard l(mu_);
    create_without_ipv6_ = on;
  }
  // The cloud loses an IPv6 address (an operator unassigned it by hand).
  void DropIpv6BehindOurBack(const std::string& ip) {
    std::lock_guard l(mu_);
    for (auto& [id, e] : enis_) std::erase(e.ipv6_sets, ip);
  }
  // An IPv6 assigned to one of our ENIs by someone else (the pool's store
  // does not know it): reconcile must adopt it like a leaked IPv4.
  std::string AddIpv6BehindOurBack(const std::string& eni_id) {
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return "";
    it->second.ipv6_sets.push_back(NextIpv6());
    return it->second.ipv6_sets.back();
  }

  // Tags on the instance's primary ENI (RunInstances' Tag.N tags the
  // instance, its disks and its primary ENI).
  void TagPrimaryEni(std::vector<cloud::Tag> tags) {
    std::lock_guard l(mu_);
    enis_["eni-primary"].tags = std::move(tags);
  }

  void SetPrimarySecurityGroups(std::vector<std::string> groups) {
    std::lock_guard l(mu_);
    enis_["eni-primary"].security_group_ids = std::move(groups);
  }

  // --- inspection ---
  // Every CreateNetworkInterface request that reached the cloud, in order.
  std::vector<CreateEniRequest> CreateRequests() {
    std::lock_guard l(mu_);
    return create_requests_;
  }
  int Calls(const std::string& op) {
    std::lock_guard l(mu_);
    return calls_[op];
  }
  // Secondary IPs (all IPs of terway's ENIs attached to the instance).
  std::set<std::string> AttachedTerwayIps() {
    std::lock_guard l(mu_);
    std::set<std::string> out;
    for (const auto& [id, e] : enis_) {
      if (e.type == "Primary" || e.status != cloud::kEniInUse || !Ours(e)) continue;
      for (const auto& p : e.private_ip_sets) out.insert(p.address);
    }
    return out;
  }
  std::set<std::string> AttachedTerwayIpv6s() {
    std::lock_guard l(mu_);
    std::set<std::string> out;
    for (const auto& [id, e] : enis_) {
      if (e.type == "Primary" || e.status != cloud::kEniInUse || !Ours(e)) continue;
      out.insert(e.ipv6_sets.begin(), e.ipv6_sets.end());
    }
    return out;
  }
  std::vector<cloud::NetworkInterface> AllEnis() {
    std::lock_guard l(mu_);
    std::vector<cloud::NetworkInterface> out;
    for (const auto& [id, e] : enis_) out.push_back(e);
    return out;
  }

  // --- EniProvider ---
  Result<cloud::NetworkInterface> CreateEni(const CreateEniRequest& req) override {
    TERWAY_TRY(Enter("CreateNetworkInterface"));
    std::lock_guard l(mu_);
    create_requests_.push_back(req);
    if (req.secondary_ip_count + 1 > 10) return Api("InvalidParameter", "too many IPs in one call");
    if (req.ipv6_count > 10 || req.ipv6_count > limits_.ipv6_per_eni) {
      return Api("InvalidOperation.Ipv6CountExceeded", "too many IPv6 addresses for a new ENI");
    }
    // As ECS: an ENI must join at least one security group.
    if (req.security_group_ids.empty()) {
      return Api("MissingParameter", "The input parameter \"SecurityGroupId\" is not supplied.");
    }
    auto vsw = vsw_.find(req.vswitch_id);
    if (vsw == vsw_.end()) return Api("InvalidVSwitchId.NotFound", "no such vSwitch");
    if (vsw->second.capacity < req.secondary_ip_count + 1) {
      return Api(kCodeIpNotEnough, "The specified VSwitch has not enough IpAddress.");
    }
    if (req.ipv6_count > 0 && !vsw->second.ipv6) return Ipv6NotTurnOn(req.vswitch_id);
    cloud::NetworkInterface e;
    e.network_interface_id = "eni-" + std::to_string(++next_eni_);
    e.type = "Secondary";
    e.status = cloud::kEniAvailable;
    e.vswitch_id = req.vswitch_id;
    e.mac_address = fmt::format("00:16:3e:00:{:02x}:{:02x}", next_eni_ / 256, next_eni_ % 256);
    for (const auto& [k, v] : req.tags) e.tags.push_back({k, v});
    e.security_group_ids = req.security_group_ids;
    for (int i = 0; i <= req.secondary_ip_count; ++i) {
      e.private_ip_sets.push_back({NextIp(vsw->second), i == 0});
    }
    e.private_ip_address = e.private_ip_sets[0].address;
    for (int i = 0; i < req.ipv6_count && !create_without_ipv6_; ++i) e.ipv6_sets.push_back(NextIpv6());
    enis_[e.network_interface_id] = e;
    return MaybeLost("CreateNetworkInterface", e);
  }

  Status AttachEni(const std::string& eni_id, const std::string& instance_id) override {
    TERWAY_TRY(Enter("AttachNetworkInterface"));
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    int attached = 0;
    for (const auto& [id, e] : enis_) attached += e.instance_id == instance_id ? 1 : 0;
    if (attached >= limits_.eni_quantity) {
      return Api(kCodeEniLimit, "The maximum number of ENIs of the instance is exceeded.");
    }
    it->second.status = cloud::kEniInUse;
    it->second.instance_id = instance_id;
    return MaybeLostStatus("AttachNetworkInterface");
  }

  Status DetachEni(const std::string& eni_id, const std::string&) override {
    TERWAY_TRY(Enter("DetachNetworkInterface"));
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    it->second.status = cloud::kEniAvailable;
    it->second.instance_id.clear();
    return MaybeLostStatus("DetachNetworkInterface");
  }

  Status DeleteEni(const std::string& eni_id) override {
    TERWAY_TRY(Enter("DeleteNetworkInterface"));
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    if (it->second.status != cloud::kEniAvailable) {
      return Api("InvalidOperation.InvalidEniState", "ENI is attached");
    }
    auto& vsw = vsw_[it->second.vswitch_id];
    vsw.capacity += static_cast<int64_t>(it->second.private_ip_sets.size());
    enis_.erase(it);
    return MaybeLostStatus("DeleteNetworkInterface");
  }

  Result<std::vector<std::string>> AssignIps(const std::string& eni_id, int count) override {
    TERWAY_TRY(Enter("AssignPrivateIpAddresses"));
    std::lock_guard l(mu_);
    if (count > 10) return Api("InvalidParameter", "at most 10 IPs per call");
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    if (static_cast<int>(it->second.private_ip_sets.size()) + count > limits_.ips_per_eni) {
      return Api("QuotaExceeded.PrivateIpAddress", "too many IPs on the ENI");
    }
    auto& vsw = vsw_[it->second.vswitch_id];
    if (vsw.capacity < count) return Api(kCodeIpNotEnough, "The specified VSwitch has not enough IpAddress.");
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
      out.push_back(NextIp(vsw));
      it->second.private_ip_sets.push_back({out.back(), false});
    }
    return MaybeLost("AssignPrivateIpAddresses", out);
  }

  Status UnassignIps(const std::string& eni_id, const std::vector<std::string>& ips) override {
    TERWAY_TRY(Enter("UnassignPrivateIpAddresses"));
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    auto& s = it->second.private_ip_sets;
    for (const auto& ip : ips) {
      auto p = std::find_if(s.begin(), s.end(), [&](const cloud::PrivateIp& x) { return x.address == ip; });
      if (p == s.end()) return Api("InvalidIp.IpUnassigned", "IP not assigned: " + ip);
      if (p->primary) return Api("InvalidOperation", "cannot unassign the primary IP");
    }
    for (const auto& ip : ips) {
      s.erase(std::remove_if(s.begin(), s.end(), [&](const cloud::PrivateIp& x) { return x.address == ip; }),
              s.end());
      vsw_[it->second.vswitch_id].capacity += 1;
    }
    return MaybeLostStatus("UnassignPrivateIpAddresses");
  }

  Result<std::vector<std::string>> AssignIpv6(const std::string& eni_id, int count) override {
    TERWAY_TRY(Enter("AssignIpv6Addresses"));
    std::lock_guard l(mu_);
    if (count < 1 || count > 10) return Api("InvalidParameter", "1..10 IPv6 addresses per call");
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    if (!vsw_[it->second.vswitch_id].ipv6) return Ipv6NotTurnOn(it->second.vswitch_id);
    if (static_cast<int>(it->second.ipv6_sets.size()) + count > limits_.ipv6_per_eni) {
      return Api("InvalidOperation.Ipv6CountExceeded", "too many IPv6 addresses on the ENI");
    }
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
      out.push_back(NextIpv6());
      it->second.ipv6_sets.push_back(out.back());
    }
    return MaybeLost("AssignIpv6Addresses", out);
  }

  Status UnassignIpv6(const std::string& eni_id, const std::vector<std::string>& ips) override {
    TERWAY_TRY(Enter("UnassignIpv6Addresses"));
    std::lock_guard l(mu_);
    auto it = enis_.find(eni_id);
    if (it == enis_.end()) return Api("InvalidEniId.NotFound", "no such ENI");
    auto& s = it->second.ipv6_sets;
    for (const auto& ip : ips) {
      if (std::find(s.begin(), s.end(), ip) == s.end()) return Api("InvalidIp.IpUnassigned", "not assigned: " + ip);
    }
    for (const auto& ip : ips) std::erase(s, ip);
    return MaybeLostStatus("UnassignIpv6Addresses");
  }

  Result<std::vector<cloud::NetworkInterface>> ListEnis(const std::string& instance_id) override {
    TERWAY_TRY(Enter("DescribeNetworkInterfaces"));
    std::lock_guard l(mu_);
    std::vector<cloud::NetworkInterface> out;
    for (const auto& [id, e] : enis_) {
      bool tagged = false;
      for (const auto& t : e.tags) tagged = tagged || (t.key == kInstanceTagKey && t.value == instance_id);
      if (e.instance_id == instance_id || (e.status == cloud::kEniAvailable && tagged)) out.push_back(e);
    }
    return out;
  }

  // Its own op name, so tests can fail this lookup apart from ListEnis.
  Result<std::vector<std::string>> PrimaryEniSecurityGroups(const std::string& instance_id) override {
    TERWAY_TRY(Enter(kPrimaryLookup));
    std::lock_guard l(mu_);
    for (const auto& [id, e] : enis_) {
      if (e.type == "Primary" && e.instance_id == instance_id) return e.security_group_ids;
    }
    return Api("InvalidInstanceId.NotFound", "no primary ENI for " + instance_id);
  }

  Result<std::vector<cloud::VSwitch>> DescribeVSwitches(const std::vector<std::string>& ids) override {
    TERWAY_TRY(Enter("DescribeVSwitches"));
    std::lock_guard l(mu_);
    std::vector<cloud::VSwitch> out;
    for (const auto& id : ids) {
      auto it = vsw_.find(id);
      if (it == vsw_.end()) continue;
      cloud::VSwitch v;
      v.vswitch_id = id;
      v.available_ip_address_count = reported_.count(id) ? reported_[id] : it->second.capacity;
      if (it->second.ipv6) v.ipv6_cidr_block = "2001:db8:1::/64";  // every IPv6 here comes from it
      out.push_back(v);
    }
    return out;
  }

  Result<InstanceLimits> GetInstanceLimits(const std::string&) override {
    TERWAY_TRY(Enter("DescribeInstanceTypes"));
    return limits_;
  }

 private:
  struct VSwitchState {
    int64_t capacity = 0;
    uint32_t base = 0;
    uint32_t next = 4;
    bool ipv6 = true;
  };

  static bool Ours(const cloud::NetworkInterface& e) {
    for (const auto& t : e.tags) {
      if (t.key == "creator" && t.value == "terway") return true;
    }
    return false;
  }

  static Error Api(const std::string& code, const std::string& msg) {
    Error e(ErrorCode::kCloud, msg);
    e.cloud_code = code;
    e.retryable = code.rfind("Throttling", 0) == 0 || code == "InternalError";
    return e;
  }

  static Error Ipv6NotTurnOn(const std::string& vswitch_id) {
    return Api("InvalidVSwitch.Ipv6NotTurnOn", "IPv6 is not enabled on VSwitch " + vswitch_id);
  }

  // IPv6 addresses never run out here (a vSwitch's /64).
  std::string NextIpv6() { return fmt::format("2001:db8:1::{:x}", ++next_ipv6_); }

  std::string NextIp(VSwitchState& v) {
    --v.capacity;
    return Ipv4Addr(v.base + v.next++).ToString();
  }

  Status Enter(const std::string& op) {
    std::function<void(const std::string&)> hook;
    {
      std::lock_guard l(mu_);
      ++calls_[op];
      hook = hook_;
    }
    if (hook) hook(op);
    // Simulated service time of a real API call (not a wait for a condition).
    auto delay = delay_.load();
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    std::lock_guard l(mu_);
    auto& q = script_[op];
    if (!q.empty()) {
      Error e = q.front();
      q.pop_front();
      return e;
    }
    std::uniform_real_distribution<double> u(0, 1);
    if (throttle_rate_ > 0 && u(rng_) < throttle_rate_) {
      return Api("Throttling.User", "Request was denied due to user flow control.");
    }
    if (server_error_rate_ > 0 && u(rng_) < server_error_rate_) {
      return Api("InternalError", "The request processing has failed due to some unknown error.");
    }
    return Ok();
  }

  template <typename T>
  Result<T> MaybeLost(const std::string& op, T value) {
    if (apply_then_fail_.erase(op)) return Api("InternalError", "response lost after the work was done");
    return value;
  }
  Status MaybeLostStatus(const std::string& op) {
    if (apply_then_fail_.erase(op)) return Api("InternalError", "response lost after the work was done");
    return Ok();
  }

  std::mutex mu_;
  InstanceLimits limits_;
  std::string instance_;
  std::map<std::string, cloud::NetworkInterface> enis_;
  std::map<std::string, VSwitchState> vsw_;
  std::map<std::string, int64_t> reported_;
  std::map<std::string, std::deque<Error>> script_;
  std::set<std::string> apply_then_fail_;
  std::map<std::string, int> calls_;
  std::vector<CreateEniRequest> create_requests_;
  std::function<void(const std::string&)> hook_;
  std::atomic<std::chrono::milliseconds> delay_{std::chrono::milliseconds(0)};
  double throttle_rate_ = 0;
  double server_error_rate_ = 0;
  std::mt19937_64 rng_{1};
  int next_eni_ = 0;
  int next_ipv6_ = 0;
  bool create_without_ipv6_ = false;
};

inline Error CloudError(const std::string& code, const std::string& msg = "injected") {
  Error e(ErrorCode::kCloud, msg);
  e.cloud_code = code;
  return e;
}

}  // namespace terway::ipam::testing
