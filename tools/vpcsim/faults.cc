#include "tools/vpcsim/faults.h"

namespace terway::vpcsim {

nlohmann::json ToJson(const FaultSpec& f) {
  return {{"throttle_rate", f.throttle_rate}, {"error_rate", f.error_rate},
          {"latency_ms", f.latency_ms},       {"attach_delay_ms", f.attach_delay_ms},
          {"stuck_detaching", f.stuck_detaching}, {"throttle_code", f.throttle_code}};
}

Status MergeFaultSpec(const nlohmann::json& j, FaultSpec* f) {
  if (!j.is_object()) return MakeError(ErrorCode::kInvalidArgument, "fault: want a JSON object");
  try {
    for (const auto& [k, v] : j.items()) {
      if (k == "action") continue;
      if (k == "throttle_rate") f->throttle_rate = v.get<double>();
      else if (k == "error_rate") f->error_rate = v.get<double>();
      else if (k == "latency_ms") f->latency_ms = v.get<int>();
      else if (k == "attach_delay_ms") f->attach_delay_ms = v.get<int>();
      else if (k == "stuck_detaching") f->stuck_detaching = v.get<bool>();
      else if (k == "throttle_code") f->throttle_code = v.get<std::string>();
      else return Errorf(ErrorCode::kInvalidArgument, "fault: unknown field '{}'", k);
    }
  } catch (const nlohmann::json::exception& e) {
    return Errorf(ErrorCode::kInvalidArgument, "fault: bad field type: {}", e.what());
  }
  if (f->throttle_code != "Throttling" && f->throttle_code != "Throttling.User" &&
      f->throttle_code != "Throttling.Api") {
    return MakeError(ErrorCode::kInvalidArgument,
                     "fault: throttle_code must be Throttling, Throttling.User or Throttling.Api");
  }
  auto rate_ok = [](double r) { return r >= 0 && r <= 1; };
  if (!rate_ok(f->throttle_rate) || !rate_ok(f->error_rate)) {
    return MakeError(ErrorCode::kInvalidArgument, "fault: rates must be within 0..1");
  }
  if (f->latency_ms < 0 || f->latency_ms > 600000 || f->attach_delay_ms < -1 ||
      f->attach_delay_ms > 3600000) {
    return MakeError(ErrorCode::kInvalidArgument, "fault: latency_ms/attach_delay_ms out of range");
  }
  return Ok();
}

void FaultTable::Set(const std::string& action, const FaultSpec& spec) {
  std::lock_guard l(mu_);
  specs_[action] = spec;
}

std::optional<FaultSpec> FaultTable::Get(const std::string& action) const {
  std::lock_guard l(mu_);
  auto it = specs_.find(action);
  if (it == specs_.end()) return std::nullopt;
  return it->second;
}

void FaultTable::Clear(const std::string& action) {
  std::lock_guard l(mu_);
  if (action.empty()) specs_.clear();
  else specs_.erase(action);
}

void FaultTable::ClearAll() { Clear(""); }

FaultSpec FaultTable::Effective(const std::string& action) const {
  std::lock_guard l(mu_);
  auto it = specs_.find(action);
  if (it != specs_.end()) return it->second;
  it = specs_.find("*");
  if (it != specs_.end()) return it->second;
  return FaultSpec{};
}

nlohmann::json FaultTable::ToJson() const {
  std::lock_guard l(mu_);
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [a, s] : specs_) j[a] = vpcsim::ToJson(s);
  return j;
}

FaultTable::Injected FaultTable::Draw(const std::string& action) {
  FaultSpec s = Effective(action);
  if (s.throttle_rate <= 0 && s.error_rate <= 0) return Injected::kNone;
  std::lock_guard l(mu_);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double x = u(rng_);
  if (x < s.throttle_rate) return Injected::kThrottle;
  if (x < s.throttle_rate + s.error_rate) {
    // Real outages show both codes; clients must retry on either.
    return (rng_() & 1) ? Injected::kServerError : Injected::kUnavailable;
  }
  return Injected::kNone;
}

void CallCounters::Record(const std::string& action, const std::string& error_code) {
  std::lock_guard l(mu_);
  auto& a = actions_[action];
  a.calls++;
  if (!error_code.empty()) a.errors[error_code]++;
}

nlohmann::json CallCounters::ToJson() const {
  std::lock_guard l(mu_);
  nlohmann::json actions = nlohmann::json::object();
  uint64_t calls = 0, errors = 0;
  for (const auto& [name, a] : actions_) {
    uint64_t e = 0;
    for (const auto& [c, n] : a.errors) e += n;
    actions[name] = {{"calls", a.calls}, {"errors", e}, {"errors_by_code", a.errors}};
    calls += a.calls;
    errors += e;
  }
  return {{"total_calls", calls}, {"total_errors", errors}, {"actions", actions}};
}

void CallCounters::Reset() {
  std::lock_guard l(mu_);
  actions_.clear();
}

uint64_t CallCounters::Calls(const std::string& action) const {
  std::lock_guard l(mu_);
  auto it = actions_.find(action);
  return it == actions_.end() ? 0 : it->second.calls;
}

uint64_t CallCounters::Errors(const std::string& action, const std::string& code) const {
  std::lock_guard l(mu_);
  auto it = actions_.find(action);
  if (it == actions_.end()) return 0;
  auto c = it->second.errors.find(code);
  return c == it->second.errors.end() ? 0 : c->second;
}

}  // namespace terway::vpcsim
