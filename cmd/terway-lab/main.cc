// terway-lab: a Terway cluster on this machine (vpcsim + terwayd per node +
// pods wired by the real CNI plugin). See tools/lab/README.md.
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "tools/lab/cluster/lab.h"
#include "tools/lab/cluster/lab_args.h"
#include "tools/lab/cluster/lab_files.h"

namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};

int Fail(const terway::Error& e) {
  std::cerr << "terway-lab: " << e.ToString() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace terway::lab;
  std::vector<std::string> args(argv + 1, argv + argc);
  const char* env_dir = std::getenv("TERWAY_LAB_DIR");
  auto cmd = ParseLabArgs(args, env_dir && *env_dir ? env_dir : kDefaultLabDir);
  if (!cmd.ok()) {
    std::cerr << "terway-lab: " << cmd.error().ToString() << "\n";
    return 2;
  }
  if (std::holds_alternative<HelpArgs>(cmd->action)) {
    std::cout << LabUsage();
    return 0;
  }
  if (geteuid() != 0) {
    std::cerr << "terway-lab: needs root (it creates network namespaces, veths and nftables); "
                 "run it with sudo\n";
    return 1;
  }
  // A runtime does not set this; inherited from the user's shell it would
  // point every pod of every node at one daemon.
  unsetenv("TERWAY_DAEMON_SOCKET");
  // Secrets of a lab made by an older terway-lab (world-readable then)
  // become owner-only before anything reads or adds to them.
  if (access(cmd->lab_dir.c_str(), F_OK) == 0) {
    if (auto st = TightenLabFiles(cmd->lab_dir); !st.ok()) {
      std::cerr << "terway-lab: warning: " << st.error().ToString() << "\n";
    }
  }
  auto bins = FindLabBinaries();
  if (!bins.ok()) return Fail(bins.error());
  Lab lab(*bins, std::cout, std::cerr);
  const std::string& dir = cmd->lab_dir;
  return std::visit(
      Overloaded{
          [](const HelpArgs&) { return 0; },
          [&](const UpArgs& a) {
            auto s = lab.Up(dir, a);
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const PodAddArgs& a) {
            auto ip = lab.AddPod(dir, a);
            if (!ip.ok()) return Fail(ip.error());
            std::cout << *ip << "\n";
            return 0;
          },
          [&](const PodCheckArgs& a) {
            auto s = lab.CheckPod(dir, a.pod);
            if (!s.ok()) return Fail(s.error());
            std::cout << "pod " << a.pod.ToString() << ": CHECK ok\n";
            return 0;
          },
          [&](const PodDelArgs& a) {
            auto s = lab.DelPod(dir, a.pod);
            if (!s.ok()) return Fail(s.error());
            std::cout << "pod " << a.pod.ToString() << " deleted\n";
            return 0;
          },
          [&](const ExecArgs& a) {
            auto s = lab.Exec(dir, a);  // returns only when the command could not run
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const StatusArgs&) {
            auto s = lab.PrintStatus(dir);
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const ControlPlaneArgs&) {
            auto s = lab.RunControlPlane(dir);
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const TerwaydArgs& a) {
            auto s = lab.Terwayd(dir, a);
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const VpcsimArgs& a) {
            auto s = lab.Vpcsim(dir, a);
            return s.ok() ? 0 : Fail(s.error());
          },
          [&](const DownArgs&) {
            auto s = lab.Down(dir);
            return s.ok() ? 0 : Fail(s.error());
          },
      },
      cmd->action);
}
