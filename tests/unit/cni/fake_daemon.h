// An in-test stand-in for terwayd: serves the CNI protocol on a unix socket
// in a private temp directory, answering each request with a handler the
// test supplies, and records every request it saw. Used by the client unit
// tests and the e2e tests of the real `terway` binary.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cni/daemon_client.h"
#include "cni/protocol.h"
#include "cni/server.h"

namespace terway::cni::testing {

// A temp directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "terway-cni-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class FakeDaemon {
 public:
  using Handler = std::function<protocol::Reply(const protocol::Request&)>;
  enum class Mode { kAnswer, kHangUp, kSilent, kGarbage };

  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)) {
    socket_path_ = dir_.path() + "/eni.socket";
    auto fd = protocol::ListenUnix(socket_path_);
    if (!fd.ok()) throw std::runtime_error("fake daemon: " + fd.error().ToString());
    listen_fd_ = *fd;
    if (pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("fake daemon: pipe failed");
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeDaemon() {
    (void)!write(stop_pipe_[1], "x", 1);
    thread_.join();
    close(listen_fd_);
    close(stop_pipe_[0]);
    close(stop_pipe_[1]);
  }
  FakeDaemon(const FakeDaemon&) = delete;
  FakeDaemon& operator=(const FakeDaemon&) = delete;

  const std::string& socket_path() const { return socket_path_; }
  void set_mode(Mode m) { mode_ = m; }
  // When the daemon was told each request's client stops waiting.
  std::vector<Deadline> deadlines() {
    std::lock_guard<std::mutex> l(mu_);
    return deadlines_;
  }
  std::vector<protocol::Request> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }
  // Requests that failed to decode, or connections that broke mid-request.
  std::vector<std::string> connection_errors() {
    std::lock_guard<std::mutex> l(mu_);
    return connection_errors_;
  }

 private:
  void Serve() {
    while (true) {
      pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents) return;
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      HandleConnection(c);
      close(c);
    }
  }

  void HandleConnection(int c) {
    if (mode_.load() == Mode::kAnswer) {
      // The production helper terwayd uses.
      Status st = protocol::ServeConnection(c, [this](const protocol::Request& req, Deadline deadline) {
        {
          std::lock_guard<std::mutex> l(mu_);
          requests_.push_back(req);
          deadlines_.push_back(deadline);
        }
        return handler_(req);
      });
      if (!st.ok()) {
        std::lock_guard<std::mutex> l(mu_);
        connection_errors_.push_back(st.error().ToString());
      }
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto frame = ReadFrame(c, deadline);
    if (!frame.ok()) return;
    auto req = protocol::DecodeRequest(*frame);
    protocol::Reply reply;
    if (!req.ok()) {
      std::lock_guard<std::mutex> l(mu_);
      connection_errors_.push_back(req.error().ToString());
      reply = protocol::Reply::Fail(protocol::ErrorClass::kInvalid, req.error().ToString());
    } else {
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(*req);
      }
      reply = handler_(*req);
    }
    switch (mode_.load()) {
      case Mode::kAnswer: (void)WriteFrame(c, protocol::EncodeReply(reply), deadline); break;
      case Mode::kHangUp: break;
      case Mode::kSilent: {
        // Hold the connection open until the client gives up (it closes).
        pollfd p{c, POLLIN, 0};
        pollfd s{stop_pipe_[0], POLLIN, 0};
        pollfd both[2] = {p, s};
        (void)poll(both, 2, 10000);
        break;
      }
      case Mode::kGarbage: (void)WriteFrame(c, "this is not json\n", deadline); break;
    }
  }

  TempDir dir_;
  Handler handler_;
  std::string socket_path_;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<Mode> mode_{Mode::kAnswer};
  std::thread thread_;
  std::mutex mu_;
  std::vector<protocol::Request> requests_;
  std::vector<std::string> connection_errors_;
  std::vector<Deadline> deadlines_;
};

// A pod network as terwayd would answer it: pod IP/32 via 169.254.1.1 on
// the pod's interface, plus the host-side veth.
inline protocol::Reply PodNetworkReply(const protocol::Request& req, const std::string& ip = "198.18.0.10/32") {
  protocol::Reply r;
  CniResult res;
  res.interfaces.push_back(Interface{"veth" + req.container_id.substr(0, 8), "02:00:00:00:00:01", "", {}});
  res.interfaces.push_back(Interface{req.ifname, "02:00:00:00:00:02", "", {}});
  res.ips.push_back(IpConfig{ip, "169.254.1.1", 1});
  res.routes.push_back(Route{"0.0.0.0/0", "169.254.1.1", {}, {}, {}, {}, {}});
  r.result = res;
  r.eni = protocol::EniInfo{"eni-test1", "00:16:3e:00:00:01", "vsw-test", "198.18.0.253"};
  return r;
}

}  // namespace terway::cni::testing
