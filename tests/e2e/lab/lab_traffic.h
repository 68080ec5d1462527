// Real traffic between a lab's pods, nodes and VPC hosts, for the lab e2e
// tests: "who am I" servers that answer each client with the client's
// address as they saw it (proving delivery, and that no NAT rewrote the
// source), over TCP and UDP, IPv4 or IPv6.
#pragma once

#include <string>
#include <vector>

#include "common/ip.h"
#include "e2e/lab/lab_fixture.h"

namespace terway::testing {

class LabTrafficTest : public LabTest {
 protected:
  void TearDown() override {
    servers_.clear();  // before `down`: they run inside the pods' namespaces
    LabTest::TearDown();
  }

  // A TCP and a UDP server in `pod` (or, with pod "", the namespace
  // `netns`): IPv4 on ports 7001/7002, and with ipv6 also IPv6 on 7003/7004.
  void StartWhoAmI(const std::string& name, const std::string& pod, const std::string& netns, bool ipv6 = false) {
    std::vector<std::string> listens = {"TCP4-LISTEN:7001,reuseaddr,fork", "UDP4-RECVFROM:7002,fork"};
    if (ipv6) {
      listens.push_back("TCP6-LISTEN:7003,reuseaddr,fork,ipv6only=1");
      listens.push_back("UDP6-RECVFROM:7004,fork,ipv6only=1");
    }
    for (const std::string& listen : listens) {
      ProcessOptions po;
      if (!pod.empty()) {
        po.argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "exec", pod, "--",
                   "/usr/bin/socat", listen, "SYSTEM:echo $SOCAT_PEERADDR"};
      } else {
        po.argv = {"/usr/bin/socat", listen, "SYSTEM:echo $SOCAT_PEERADDR"};
        po.netns = netns;
      }
      po.log_path = dir_.File(name + "-" + listen.substr(0, 4) + ".log");
      auto p = Process::Start(po);
      ASSERT_TRUE(p.ok()) << p.error().ToString();
      servers_.push_back(std::move(p).value());
    }
  }

  // From a pod (or a namespace) to ip over proto ("tcp", "udp"; the family
  // is ip's); passes once the server answers with `me` (socat writes IPv6
  // peers expanded, in brackets: compared as addresses). Retried until the
  // server listens (bounded).
  void ExpectReach(const std::string& from_pod, const std::string& from_netns, const std::string& me,
                   const std::string& ip, const std::string& proto) {
    const bool v6 = ip.find(':') != std::string::npos;
    std::string target = proto == "tcp" ? (v6 ? "TCP6:[" + ip + "]:7003" : "TCP4:" + ip + ":7001")
                                        : (v6 ? "UDP6:[" + ip + "]:7004" : "UDP4:" + ip + ":7002");
    std::string last;
    bool ok = WaitFor(
        [&] {
          std::vector<std::string> cmd = {"/usr/bin/socat", "-T", "3", "-t", "1", "-", target};
          CommandResult r;
          if (!from_pod.empty()) {
            std::vector<std::string> argv = {BinaryPath("terway-lab"), "--lab", lab_dir_, "exec",
                                             from_pod, "--"};
            argv.insert(argv.end(), cmd.begin(), cmd.end());
            r = RunCommand(argv, "", std::chrono::seconds(15), "who\n");
          } else {
            r = RunCommand(cmd, from_netns, std::chrono::seconds(15), "who\n");
          }
          last = r.output;
          return SameAddress(r.output, me);
        },
        std::chrono::seconds(30), std::chrono::milliseconds(200));
    EXPECT_TRUE(ok) << proto << " " << (from_pod.empty() ? from_netns : from_pod) << " (" << me
                    << ") -> " << ip << ": last answer '" << last << "'";
  }

  std::vector<Process> servers_;

 private:
  // Whether some line of the server's answer is the address `me`.
  static bool SameAddress(const std::string& answer, const std::string& me) {
    size_t start = 0;
    while (start < answer.size()) {
      size_t nl = answer.find('\n', start);
      std::string line = answer.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      if (line == me) return true;
      if (line.size() > 2 && line.front() == '[' && line.back() == ']') {
        auto a = Ipv6Addr::Parse(line.substr(1, line.size() - 2));
        auto b = Ipv6Addr::Parse(me);
        if (a.ok() && b.ok() && *a == *b) return true;
      }
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    return false;
  }
};

}  // namespace terway::testing
