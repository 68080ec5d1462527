// The lab: a Terway cluster on this machine. vpcsim (the emulated region and
// its VPC fabric) and one terwayd per node run as daemons; pods are named
// network namespaces wired by the real `terway` CNI plugin, run exactly as a
// container runtime runs it. Every command loads the lab state, acts, and
// saves it, so separate invocations work on the same lab.
#pragma once

#include <ostream>
#include <string>

#include "common/result.h"
#include "tools/lab/cluster/lab_args.h"
#include "tools/lab/cluster/lab_state.h"

namespace terway::lab {

// The binaries the lab drives.
struct LabBinaries {
  std::string vpcsim;
  std::string terwayd;
  std::string terway;  // the CNI plugin
  std::string terway_cli;
};

// Finds them next to terway-lab: in a build tree (cmd/<name>/<name>) or an
// install dir (all in one directory); $TERWAY_LAB_BIN_DIR overrides.
Result<LabBinaries> FindLabBinaries();

class Lab {
 public:
  // Progress and results go to out, warnings to err.
  Lab(LabBinaries bins, std::ostream& out, std::ostream& err)
      : bins_(std::move(bins)), out_(out), err_(err) {}

  // On failure, everything it started is torn down again.
  Status Up(const std::string& dir, const UpArgs& args);
  // Returns the pod's IP. On failure the plugin's DEL runs and the pod's
  // namespace is removed.
  Result<std::string> AddPod(const std::string& dir, const PodAddArgs& args);
  Status CheckPod(const std::string& dir, const PodRef& pod);
  Status DelPod(const std::string& dir, const PodRef& pod);
  // Replaces this process with the command, inside the pod's namespace.
  Status Exec(const std::string& dir, const ExecArgs& args);
  Status PrintStatus(const std::string& dir);
  // Idempotent; works with dead processes and half-done states.
  Status Down(const std::string& dir);

 private:
  Status StartWorld(LabState& s, const UpArgs& args);
  Status StartNodes(LabState& s, const UpArgs& args);
  Status StartTerwayd(LabState& s, NodeRecord& n);
  Status WaitTerwaydReady(const NodeRecord& n);
  Result<int> MaxPods(const LabState& s, const std::string& instance_type);
  Result<CommandOutput> RunPlugin(const NodeRecord& n, const PodRecord& p,
                                  const std::string& command);
  Status TearDown(LabState& s);

  LabBinaries bins_;
  std::ostream& out_;
  std::ostream& err_;
};

// "code 100: no IP address available (node has ...)" from the plugin's
// stdout (a CNI error object), or its raw output when that is not JSON.
std::string DescribeCniFailure(const CommandOutput& o);

}  // namespace terway::lab
