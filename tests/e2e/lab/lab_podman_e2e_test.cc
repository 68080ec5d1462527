// A real container runtime on the lab: podman (CNI backend, runc) runs the
// terway plugin for a container, exactly as it would on a node; the plugin
// only talks to the node's terwayd over its socket and terwayd wires the
// container's namespace. The container gets a VPC address that a lab pod
// reaches, and reaches a VPC host.
//
// Nothing of the machine's podman or containers configuration is touched:
// CONTAINERS_CONF points at a temp containers.conf (CNI backend, plugin and
// network dirs, file locks and event log in the temp dir), and storage is a
// temp --root/--runroot with the vfs driver (no mounts left behind).
#include <sys/stat.h>

#include <filesystem>

#include "e2e/lab/lab_fixture.h"

namespace terway::testing {
namespace {

class LabPodman : public LabTest {
 protected:
  void TearDown() override {
    if (!pm_root_.empty()) {
      Podman({"rm", "-f", "-t", "0", container_});
      Podman({"rmi", "-f", kImage});
    }
    // libcni in podman 4.3 keeps its result cache in /var/lib/cni (not
    // configurable); remove it only if this test created it and it is empty.
    if (!var_lib_cni_existed_) {
      std::error_code ec;
      std::filesystem::remove("/var/lib/cni/results", ec);
      std::filesystem::remove("/var/lib/cni", ec);
    }
    LabTest::TearDown();
  }

  CommandResult Podman(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "CONTAINERS_CONF=" + pm_.File("containers.conf"),
                                     "/usr/bin/podman", "--root", pm_root_, "--runroot",
                                     pm_.File("runroot"), "--tmpdir", pm_.File("tmp"),
                                     "--storage-driver", "vfs"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, "", std::chrono::seconds(120));
  }

  static constexpr const char* kImage = "localhost/terway-lab-busybox:latest";
  TempDir pm_;
  std::string pm_root_;
  std::string container_;
  bool var_lib_cni_existed_ = true;
};

TEST_F(LabPodman, ContainerGetsAVpcAddressReachableFromALabPod) {
  for (const char* bin : {"/usr/bin/podman", "/usr/sbin/runc"}) {
    if (access(bin, X_OK) != 0) GTEST_SKIP() << bin << " is missing: install podman and runc (make deps)";
  }
  // The image holds /bin/busybox alone, so it must be the static build.
  if (access("/bin/busybox", X_OK) != 0 ||
      Capture("ldd /bin/busybox 2>&1").find("not a dynamic executable") == std::string::npos) {
    GTEST_SKIP() << "/bin/busybox is missing or not static: install busybox-static (make deps)";
  }
  var_lib_cni_existed_ = access("/var/lib/cni", F_OK) == 0;
  Up(1);
  std::string pod_ip = AddPod("default/client", "node1");
  ASSERT_FALSE(pod_ip.empty());
  std::string network = "terway-" + world_;
  container_ = world_ + "-ctr";

  // The runtime's configuration, all in the temp dir.
  for (const char* d : {"cni-bin", "net.d", "root", "runroot", "tmp", "rootfs/bin"}) {
    std::filesystem::create_directories(pm_.File(d));
  }
  std::filesystem::copy_file(BinaryPath("terway"), pm_.File("cni-bin/terway"));
  std::string conf = fmt::format(R"([containers]
default_ulimits = []
[network]
network_backend = "cni"
cni_plugin_dirs = ["{dir}/cni-bin"]
network_config_dir = "{dir}/net.d"
[engine]
runtime = "runc"
lock_type = "file"
events_logger = "file"
events_logfile_path = "{dir}/events.log"
)", fmt::arg("dir", pm_.path()));
  ASSERT_OK(WriteFile(pm_.File("containers.conf"), conf));
  std::string socket = State()["nodes"][0]["socket"];
  nlohmann::json conflist = {
      {"cniVersion", "1.0.0"},
      {"name", network},
      {"plugins", nlohmann::json::array({{{"type", "terway"}, {"daemon_socket", socket}}})}};
  ASSERT_OK(WriteFile(pm_.File("net.d/" + network + ".conflist"), conflist.dump(2)));
  pm_root_ = pm_.File("root");

  // The image: busybox-static as a rootfs, imported offline.
  std::filesystem::copy_file("/bin/busybox", pm_.File("rootfs/bin/busybox"));
  for (const char* applet : {"sh", "sleep", "ping", "ip"}) {
    std::filesystem::create_symlink("busybox", pm_.File(std::string("rootfs/bin/") + applet));
  }
  auto tar = RunCommand({"/usr/bin/tar", "-C", pm_.File("rootfs"), "-cf", pm_.File("rootfs.tar"), "."});
  ASSERT_EQ(tar.exit_code, 0) << tar.output;
  auto import = Podman({"import", pm_.File("rootfs.tar"), kImage});
  ASSERT_EQ(import.exit_code, 0) << import.output;

  auto run = Podman({"run", "-d", "--name", container_, "--network", network, "--runtime", "runc",
                     kImage, "/bin/sleep", "600"});
  ASSERT_EQ(run.exit_code, 0) << run.output << "\nterwayd log:\n"
                              << ReadFile(State()["nodes"][0]["log"].get<std::string>());
  auto inspect = Podman({"inspect", container_, "--format", "{{json .NetworkSettings.Networks}}"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  auto nets = nlohmann::json::parse(inspect.output, nullptr, false);
  ASSERT_TRUE(nets.is_object() && nets.contains(network)) << inspect.output;
  std::string ctr_ip = nets[network]["IPAddress"];
  EXPECT_EQ(ctr_ip.rfind("198.18.0.", 0), 0u) << "a VPC address of the vSwitch: " << ctr_ip;
  EXPECT_FALSE(nets[network]["MacAddress"].get<std::string>().empty()) << inspect.output;

  // terwayd holds it for the container (podman names the pod by the
  // container's name, without a namespace).
  std::string db = State()["nodes"][0]["state_db"];
  auto pods = RunCommand({BinaryPath("terway-cli"), "pods", "--state", db});
  EXPECT_NE(pods.output.find(container_), std::string::npos) << pods.output;
  EXPECT_NE(pods.output.find(ctr_ip), std::string::npos) << pods.output;

  std::string last;
  EXPECT_TRUE(WaitFor(
      [&] {
        auto r = Exec("default/client", {"/usr/bin/ping", "-c", "1", "-W", "2", ctr_ip});
        last = r.output;
        return r.exit_code == 0;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(200)))
      << "lab pod " << pod_ip << " -> container " << ctr_ip << ": " << last;
  auto to_host = Podman({"exec", container_, "/bin/ping", "-c", "1", "-W", "3", HostIp()});
  EXPECT_EQ(to_host.exit_code, 0) << "container -> VPC host " << HostIp() << ": " << to_host.output;

  // Removing the container runs DEL: terwayd frees the address.
  auto rm = Podman({"rm", "-f", "-t", "0", container_});
  EXPECT_EQ(rm.exit_code, 0) << rm.output;
  auto after = RunCommand({BinaryPath("terway-cli"), "pods", "--state", db});
  EXPECT_EQ(after.output.find(container_), std::string::npos) << after.output;
}

}  // namespace
}  // namespace terway::testing
