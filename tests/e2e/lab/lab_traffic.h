// Real traffic between a lab's pods, nodes and VPC hosts, for the lab e2e
// tests: "who am I" servers that answer each client with the client's
// address as they saw it (proving delivery, and that no NAT rewrote the
// source), over TCP and UDP, IPv4 or IPv6; and traffic that must keep
// flowing while something happens (a paced TCP stream, a ping), for tests of
// terwayd's restart.
#pragma once

#include <signal.h>
#include <sys/stat.h>

#include <regex>
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

  // A paced TCP stream from `from_netns` to ip:port (IPv4 or IPv6, by ip)
  // served in `to_netns`: the reader appends what arrives to a file, so its
  // size counts what got through; the writer sends a line every 10 ms (not a
  // flood: the file stays small). Both stop with the object.
  struct TcpStream {
    std::string sink;
    Process reader;
    Process writer;

    long Bytes() const {
      struct stat st {};
      return stat(sink.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0L;
    }
    // Whether `more` bytes arrive within `within` from now.
    bool Grows(long more, std::chrono::milliseconds within) const {
      const long at = Bytes();
      return WaitFor([&] { return Bytes() > at + more; }, within);
    }
    // "" while both ends run and neither logged a reset or an error (socat's
    // "E " lines): the connection never broke. Else what went wrong.
    std::string Broken() {
      std::string logs = ReadFile(reader.log_path()) + ReadFile(writer.log_path());
      if (!reader.running()) return "the reader exited: " + logs;
      if (!writer.running()) return "the writer exited: " + logs;
      if (logs.find("reset") != std::string::npos || logs.find("E ") != std::string::npos) {
        return "socat reported: " + logs;
      }
      return "";
    }
  };

  // Starts the stream and waits (bounded) until it carries data.
  void StartStream(const std::string& name, const std::string& from_netns, const std::string& to_netns,
                   const std::string& ip, uint16_t port, TcpStream* out) {
    const bool v6 = ip.find(':') != std::string::npos;
    out->sink = dir_.File(name + ".bytes");
    ProcessOptions reader;
    reader.argv = {"/usr/bin/socat", "-u",
                   fmt::format("{}:{},reuseaddr{}", v6 ? "TCP6-LISTEN" : "TCP4-LISTEN", port, v6 ? ",ipv6only=1" : ""),
                   "OPEN:" + out->sink + ",creat,append"};
    reader.netns = to_netns;
    reader.log_path = dir_.File(name + "-reader.log");
    auto rp = Process::Start(reader);
    ASSERT_TRUE(rp.ok()) << rp.error().ToString();
    out->reader = std::move(rp).value();
    ProcessOptions writer;
    const std::string target = v6 ? fmt::format("TCP6:[{}]:{}", ip, port) : fmt::format("TCP4:{}:{}", ip, port);
    writer.argv = {"/bin/bash", "-c",
                   "while :; do echo 0123456789abcdef0123456789abcdef; sleep 0.01; done | "
                   "/usr/bin/socat -u - " + target + ",retry=50,interval=0.1"};
    writer.netns = from_netns;
    writer.log_path = dir_.File(name + "-writer.log");
    auto wp = Process::Start(writer);
    ASSERT_TRUE(wp.ok()) << wp.error().ToString();
    out->writer = std::move(wp).value();
    ASSERT_TRUE(WaitFor([&] { return out->Bytes() > 4096; }, std::chrono::seconds(30)))
        << "the stream " << name << " to " << target << " did not start: " << ReadFile(writer.log_path);
  }

  // A ping every 50 ms from `from_netns` to ip (`-6` for an IPv6 address),
  // started once its first replies came back (bounded).
  void StartPing(const std::string& name, const std::string& from_netns, const std::string& ip, Process* out) {
    ProcessOptions pinger;
    pinger.argv = {"/usr/bin/ping", ip.find(':') != std::string::npos ? "-6" : "-4", "-i", "0.05", "-W", "1", ip};
    pinger.netns = from_netns;
    pinger.log_path = dir_.File(name + ".log");
    auto pp = Process::Start(pinger);
    ASSERT_TRUE(pp.ok()) << pp.error().ToString();
    *out = std::move(pp).value();
    ASSERT_TRUE(WaitFor([&] { return ReadFile(pinger.log_path).find("icmp_seq=5 ") != std::string::npos; },
                        std::chrono::seconds(10)))
        << ReadFile(pinger.log_path);
  }

  struct PingCount {
    int sent = -1;
    int received = -1;
    std::string log;
  };
  // Stops the ping as a user does (SIGINT: it prints its summary) and reads
  // the summary; -1s (and a test failure) when there is none.
  static PingCount StopPing(Process& ping) {
    PingCount out;
    ::kill(ping.pid(), SIGINT);
    EXPECT_TRUE(WaitFor([&] { return !ping.running(); }, std::chrono::seconds(10))) << "ping ignored SIGINT";
    out.log = ReadFile(ping.log_path());
    std::smatch m;
    if (std::regex_search(out.log, m, std::regex(R"((\d+) packets transmitted, (\d+) received)"))) {
      out.sent = std::stoi(m[1]);
      out.received = std::stoi(m[2]);
    } else {
      ADD_FAILURE() << "ping printed no summary:\n" << out.log;
    }
    return out;
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
