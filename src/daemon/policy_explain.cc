// terway-cli policy explain / show: answered from a full compile of the
// inputs the kernel holds (or is being given), made on demand and kept
// until the inputs change -- operators ask rarely next to how often pods
// and policies change, so the applier never pays for it.
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "daemon/policy_controller.h"
#include "policy/policy_show.h"

namespace terway::daemon {

Result<PolicyController::Snapshot> PolicyController::CurrentModel() {
  policy::PolicyInputs in;
  uint64_t gen = 0;
  std::vector<std::string> rejected;
  {
    std::lock_guard l(model_mu_);
    std::lock_guard in_lock(inputs_mu_);
    gen = model_gen_;
    if (explained_.model && explained_gen_ == gen) return explained_;
    if (gen == 0) return MakeError(ErrorCode::kUnavailable, "policy: no model compiled yet");
    in = compiler_.Inputs();
    rejected = rejected_;
  }
  // Outside inputs_mu_: a full compile takes a while at scale, and applies
  // (pod starts) must not wait for an operator's question.
  Snapshot snap;
  snap.model = std::make_shared<policy::CompiledPolicy>(
      policy::PolicyCompiler(policy::CompileOptions{opts_.node_name}).Compile(std::move(in)));
  snap.rejected = std::move(rejected);
  std::lock_guard l(model_mu_);
  if (gen >= explained_gen_) {
    explained_ = snap;
    explained_gen_ = gen;
  }
  return snap;
}

Result<policy::Explanation> PolicyController::Explain(const std::string& from, const std::string& to,
                                                      policy::Protocol proto, uint16_t port) {
  TERWAY_ASSIGN_OR_RETURN(Snapshot s, CurrentModel());
  return s.model->Explain(from, to, proto, port);
}

Result<std::string> PolicyController::Show() {
  TERWAY_ASSIGN_OR_RETURN(Snapshot s, CurrentModel());
  std::shared_ptr<const policy::CompiledPolicy> m = s.model;
  std::vector<std::string> rejected = std::move(s.rejected);
  // A separate handle: reading counters needs no apply lock.
  TERWAY_ASSIGN_OR_RETURN(auto counters, policy::NftPolicyTable(opts_.netns).ReadCounters());
  std::string out = policy::FormatPolicyShow(*m, counters);
  if (out.empty()) out = fmt::format("no pod on node {} is selected by a policy\n", opts_.node_name);
  for (const auto& r : rejected) {
    out += "not read (the policies and rules it concerns are enforced on the safe side): " + r + "\n";
  }
  return out;
}
}  // namespace terway::daemon
