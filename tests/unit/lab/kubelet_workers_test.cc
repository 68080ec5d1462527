// The lab kubelet's pod workers, against the API stand-in in this process
// and a fake runtime whose ADD of a "stuck-*" pod hangs until the test lets
// it go: other pods of the node go on meanwhile, one pod's DEL waits for its
// ADD, and Stop kills (cancels) what still runs.
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "k8s/client.h"
#include "tools/lab/apiserver/server.h"
#include "tools/lab/cluster/kubelet.h"

namespace terway::lab {
namespace {

using namespace std::chrono_literals;
namespace res = k8s::resources;

template <typename F>
bool Eventually(F cond, std::chrono::milliseconds timeout = 20s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return cond();
}

// Records "add-start NAME", "add-end NAME", "del-start NAME", "del-end NAME"
// in order. A stuck-* pod's ADD waits until Release(name) or cancellation
// (bounded, so a broken kubelet cannot hang the test binary).
class FakeRuntime : public SandboxRuntime {
 public:
  Result<std::vector<std::string>> RunSandboxAdd(const std::string&, const PodAddArgs& args,
                                    const std::atomic<bool>* cancel) override {
    const std::string name = args.pod.name;
    Note("add-start " + name);
    if (name.rfind("stuck-", 0) == 0) {
      std::unique_lock l(mu_);
      bool released = cv_.wait_for(l, 30s, [&] { return released_.count(name) || (cancel && cancel->load()); });
      if (cancel && cancel->load()) cancelled_.insert(name);
      l.unlock();
      if (!released || cancelled_.count(name)) {
        Note("add-end " + name);
        return Error(ErrorCode::kUnavailable, "ADD of " + name + " stopped");
      }
    }
    Note("add-end " + name);
    return std::vector<std::string>{std::string("198.18.0.") + std::to_string(10 + adds_++)};
  }

  Status RunSandboxDel(const std::string&, const PodRef& pod, const std::atomic<bool>*) override {
    Note("del-start " + pod.name);
    Note("del-end " + pod.name);
    return Ok();
  }

  void Release(const std::string& name) {
    {
      std::lock_guard l(mu_);
      released_.insert(name);
    }
    cv_.notify_all();
  }
  // Lets a cancelled ADD notice its flag now rather than at its deadline.
  void Poke() { cv_.notify_all(); }

  std::vector<std::string> Log() {
    std::lock_guard l(mu_);
    return log_;
  }
  bool Logged(const std::string& event) {
    auto log = Log();
    return std::find(log.begin(), log.end(), event) != log.end();
  }
  size_t IndexOf(const std::string& event) {
    auto log = Log();
    return static_cast<size_t>(std::find(log.begin(), log.end(), event) - log.begin());
  }
  bool WasCancelled(const std::string& name) {
    std::lock_guard l(mu_);
    return cancelled_.count(name) > 0;
  }

 private:
  void Note(const std::string& event) {
    std::lock_guard l(mu_);
    log_.push_back(event);
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> released_, cancelled_;
  std::vector<std::string> log_;
  std::atomic<int> adds_{0};
};

class KubeletWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions o;
    o.threads = 16;
    server_ = std::make_unique<ApiServer>(NewDefaultStore(), o);
    ASSERT_TRUE(server_->Start().ok());
    k8s::RestConfig cfg;
    cfg.server = server_->url();
    cfg.qps = 0;
    client_ = k8s::RestClient::FromConfig(cfg);
    auto ns = client_->Create(res::kNamespaces, "",
                              {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "default"}}}});
    ASSERT_TRUE(ns.ok() || ns.error().code == ErrorCode::kAlreadyExists) << ns.error().ToString();
    NodeRecord node;
    node.name = "node1";
    kubelet_ = std::make_unique<LabKubelet>(runtime_, "/nonexistent-lab", node, "198.18.0.2", *client_);
    kubelet_->Start();
  }
  void TearDown() override {
    runtime_.Poke();
    if (kubelet_) kubelet_->Stop();
    server_->Stop();
  }

  void CreatePod(const std::string& name) {
    k8s::Json pod = {{"apiVersion", "v1"},
                     {"kind", "Pod"},
                     {"metadata", {{"name", name}, {"namespace", "default"}}},
                     {"spec", {{"nodeName", "node1"}, {"containers", {{{"name", "c"}, {"image", "x"}}}}}}};
    ASSERT_TRUE(client_->Create(res::kPods, "default", pod).ok());
  }
  std::string Phase(const std::string& name) {
    auto p = client_->Get(res::kPods, "default", name);
    return p.ok() ? p->value("status", k8s::Json::object()).value("phase", "") : "";
  }

  FakeRuntime runtime_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<k8s::RestClient> client_;
  std::unique_ptr<LabKubelet> kubelet_;
};

TEST_F(KubeletWorkers, AHungAddHoldsUpOnlyItsOwnPod) {
  CreatePod("stuck-a");
  ASSERT_TRUE(Eventually([&] { return runtime_.Logged("add-start stuck-a"); }));
  CreatePod("quick");
  EXPECT_TRUE(Eventually([&] { return Phase("quick") == "Running"; }))
      << "another pod of the node waits behind the hung ADD";
  EXPECT_FALSE(runtime_.Logged("add-end stuck-a")) << "the hung ADD is still running";
  // Deleting the other pod goes on too.
  ASSERT_TRUE(client_->Delete(res::kPods, "default", "quick").ok());
  EXPECT_TRUE(Eventually([&] { return runtime_.Logged("del-end quick"); }));
  EXPECT_FALSE(runtime_.Logged("add-end stuck-a"));
  runtime_.Release("stuck-a");
  EXPECT_TRUE(Eventually([&] { return Phase("stuck-a") == "Running"; }));
}

TEST_F(KubeletWorkers, OnePodsDelWaitsForItsAdd) {
  CreatePod("stuck-b");
  ASSERT_TRUE(Eventually([&] { return runtime_.Logged("add-start stuck-b"); }));
  ASSERT_TRUE(client_->Delete(res::kPods, "default", "stuck-b").ok());
  // The DELETED event is in; give the kubelet every chance to misbehave by
  // letting another pod's work run through first.
  CreatePod("marker");
  ASSERT_TRUE(Eventually([&] { return Phase("marker") == "Running"; }));
  EXPECT_FALSE(runtime_.Logged("del-start stuck-b")) << "DEL ran beside the pod's own ADD";
  runtime_.Release("stuck-b");
  ASSERT_TRUE(Eventually([&] { return runtime_.Logged("del-end stuck-b"); }));
  EXPECT_LT(runtime_.IndexOf("add-end stuck-b"), runtime_.IndexOf("del-start stuck-b"));
}

TEST_F(KubeletWorkers, StopCancelsTheAddsStillRunning) {
  CreatePod("stuck-c");
  ASSERT_TRUE(Eventually([&] { return runtime_.Logged("add-start stuck-c"); }));
  std::thread poker([&] {
    // The fake waits on a condition variable: wake it so it sees the flag.
    Eventually([&] {
      runtime_.Poke();
      return runtime_.Logged("add-end stuck-c");
    });
  });
  kubelet_->Stop();
  poker.join();
  EXPECT_TRUE(runtime_.WasCancelled("stuck-c")) << "Stop left the plugin run to its own deadline";
  kubelet_.reset();
}

}  // namespace
}  // namespace terway::lab
