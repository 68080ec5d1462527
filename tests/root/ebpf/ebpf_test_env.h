// What the eBPF datapath's root tests share: a private bpf filesystem per
// test (mounted on a temporary directory, so pins never touch the node's
// /sys/fs/bpf and vanish with the unmount, also when a test fails) and
// frame builders.
#pragma once

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <sys/mount.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "ebpf/programs.h"
#include "test_util.h"

namespace terway::ebpf::testing {

// A bpffs of the test's own. skip_reason() is set when none can be mounted.
class PrivateBpffs {
 public:
  PrivateBpffs() {
    char tmpl[] = "/tmp/twbpffs.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      skip_ = std::string("mkdtemp: ") + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    if (mount("bpf", dir_.c_str(), "bpf", 0, "mode=0700") != 0) {
      skip_ = "cannot mount a bpf filesystem (" + std::string(std::strerror(errno)) + ")";
      return;
    }
    mounted_ = true;
  }
  ~PrivateBpffs() {
    if (mounted_) umount2(dir_.c_str(), MNT_DETACH);
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  const std::string& skip_reason() const { return skip_; }
  LoaderOptions Options(const std::string& subdir = "terway") const {
    LoaderOptions o;
    o.bpffs = dir_;
    o.pin_subdir = subdir;
    o.mount_bpffs = false;  // ours is mounted; anything else is a bug
    return o;
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_, skip_;
  bool mounted_ = false;
};

#define TERWAY_REQUIRE_BPFFS(fs)                                                  \
  do {                                                                            \
    if (!(fs).skip_reason().empty()) GTEST_SKIP() << (fs).skip_reason();          \
  } while (0)

inline uint32_t Nip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

inline uint16_t Ipv4Checksum(const iphdr* ip) {
  const auto* w = reinterpret_cast<const uint16_t*>(ip);
  uint32_t sum = 0;
  for (int i = 0; i < ip->ihl * 2; ++i) sum += w[i];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// Ethernet + IPv4 + 8 bytes of payload (for UDP: a header with ports 0,
// a tuple no conntrack tracks), header checksum valid.
inline std::vector<uint8_t> Frame(const char* src, const char* dst, uint8_t ttl = 64,
                                  uint16_t ethertype = ETH_P_IP, uint8_t protocol = 17,
                                  uint16_t frag_off_host_order = 0) {
  std::vector<uint8_t> f(sizeof(ethhdr) + sizeof(iphdr) + 8, 0);
  auto* eth = reinterpret_cast<ethhdr*>(f.data());
  std::memcpy(eth->h_dest, "\xee\xee\xee\xee\xee\x01", 6);
  std::memcpy(eth->h_source, "\x02\x00\x00\x00\x00\x14", 6);
  eth->h_proto = htons(ethertype);
  auto* ip = reinterpret_cast<iphdr*>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = ttl;
  ip->protocol = protocol;
  ip->frag_off = htons(frag_off_host_order);
  ip->tot_len = htons(static_cast<uint16_t>(sizeof(iphdr) + 8));
  ip->saddr = Nip(src);
  ip->daddr = Nip(dst);
  ip->check = 0;
  ip->check = Ipv4Checksum(ip);
  return f;
}

}  // namespace terway::ebpf::testing
