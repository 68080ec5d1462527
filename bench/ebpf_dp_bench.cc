// Cost per packet of the eBPF datapath's programs, with BPF_PROG_TEST_RUN
// (needs root). Loads this build's programs (src/ebpf) into a private bpf
// filesystem, or, with --objects, two BPF objects built from other sources
// (to compare with an earlier version: compile its bpf/dp_*.c with the
// flags of src/ebpf/CMakeLists.txt). Prints the kernel's average ns per run
// for each fast path, and for a packet to a Service (the stack) and a
// spoofed one (dropped). Nothing is attached and no packet leaves: a test run
// only records the redirect.
//
//   ebpf_dp_bench [--calls N] [--objects dp_pod_veth_ingress.o dp_eni_ingress.o]
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf/include/datapath_abi.h"
#include "ebpf/endpoint.h"
#include "ebpf/programs.h"

namespace {

uint32_t Nip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

// Average ns per run of `prog_fd` on a UDP packet src -> dst arriving on
// ifindex 1. The program rewrites the packet (TTL - 1) and a test run
// repeats on the same buffer, so each call repeats 250 times from TTL 255
// (every run takes the path under test) and `calls` calls are averaged.
double NsPerRun(int prog_fd, const char* src, const char* dst, int calls, uint32_t verdict = 7 /* TC_ACT_REDIRECT */) {
  std::vector<uint8_t> f(sizeof(ethhdr) + sizeof(iphdr) + sizeof(udphdr) + 32, 0);
  reinterpret_cast<ethhdr*>(f.data())->h_proto = htons(ETH_P_IP);
  auto* ip = reinterpret_cast<iphdr*>(f.data() + sizeof(ethhdr));
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 255;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons(static_cast<uint16_t>(f.size() - sizeof(ethhdr)));
  ip->saddr = Nip(src);
  ip->daddr = Nip(dst);
  auto* udp = reinterpret_cast<udphdr*>(ip + 1);
  udp->source = htons(40000);
  udp->dest = htons(5555);
  __sk_buff ctx{};
  ctx.ifindex = 1;
  std::vector<uint8_t> out(f.size() + 256);
  double total = 0;
  for (int i = 0; i < calls; ++i) {
    LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = f.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(f.size()), .data_size_out = static_cast<uint32_t>(out.size()),
                .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = 250);
    if (bpf_prog_test_run_opts(prog_fd, &t) != 0) {
      std::perror("BPF_PROG_TEST_RUN");
      std::exit(1);
    }
    if (t.retval != verdict) {
      std::fprintf(stderr, "%s -> %s: verdict %u, not %u: not the path under test\n", src, dst, t.retval, verdict);
      std::exit(1);
    }
    total += t.duration;
  }
  return total / calls;
}

terway_dp_endpoint Ep(uint32_t host_ifindex, uint32_t eni_ifindex) {
  terway_dp_endpoint e{};
  e.host_ifindex = host_ifindex;
  e.eni_ifindex = eni_ifindex;
  e.gateway = Nip("198.18.0.1");
  std::memcpy(e.pod_mac, "\x02\x00\x00\x00\x00\x14", 6);
  std::memcpy(e.host_mac, "\xee\xee\xee\xee\xee\x01", 6);
  return e;
}

int LoadObject(const char* path, const char* prog, const std::string& pin_dir, int* ep_fd) {
  LIBBPF_OPTS(bpf_object_open_opts, o, .pin_root_path = pin_dir.c_str());
  bpf_object* obj = bpf_object__open_file(path, &o);
  if (obj == nullptr || bpf_object__load(obj) != 0) {
    std::fprintf(stderr, "loading %s failed\n", path);
    std::exit(1);
  }
  *ep_fd = bpf_object__find_map_fd_by_name(obj, "terway_dp_ep");
  return bpf_program__fd(bpf_object__find_program_by_name(obj, prog));  // the object lives until exit
}

}  // namespace

// The private bpf filesystem, unmounted at any exit (the error paths above
// leave through std::exit, which skips main's own clean-up).
static char g_bpffs[] = "/tmp/twbpfbench.XXXXXX";
static void UnmountBpffs() {
  umount2(g_bpffs, MNT_DETACH);
  rmdir(g_bpffs);
}

int main(int argc, char** argv) {
  int calls = 4000;
  const char* objects[2] = {nullptr, nullptr};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
      calls = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--objects") == 0 && i + 2 < argc) {
      objects[0] = argv[++i];
      objects[1] = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--calls N] [--objects dp_pod_veth_ingress.o dp_eni_ingress.o]\n", argv[0]);
      return 2;
    }
  }
  if (mkdtemp(g_bpffs) == nullptr) {
    std::perror("making a directory for a private bpf filesystem");
    return 1;
  }
  if (mount("bpf", g_bpffs, "bpf", 0, "mode=0700") != 0) {
    std::perror("mounting a private bpf filesystem (are we root?)");
    rmdir(g_bpffs);
    return 1;
  }
  std::atexit(UnmountBpffs);
  const std::string fs = g_bpffs;
  int rc = [&]() {
    int pod_fd = -1, eni_fd = -1, ep_fd = -1;
    std::unique_ptr<terway::ebpf::DatapathPrograms> dp;
    if (objects[0] != nullptr) {
      mkdir((fs + "/terway").c_str(), 0700);
      pod_fd = LoadObject(objects[0], "terway_from_pod", fs + "/terway", &ep_fd);
      eni_fd = LoadObject(objects[1], "terway_from_eni", fs + "/terway", &ep_fd);
      // As SetPolicySynced(true) below: objects built since the policy map
      // police every pod (the stack) until its state says synced.
      int state_fd = bpf_obj_get((fs + "/terway/terway_dp_policy_state").c_str());
      uint32_t zero = 0, synced = TERWAY_DP_POLICY_SYNCED;
      if (state_fd >= 0 && bpf_map_update_elem(state_fd, &zero, &synced, BPF_ANY) != 0) {
        std::perror("writing the policy state map");
        return 1;
      }
    } else {
      terway::ebpf::LoaderOptions o;
      o.bpffs = fs;
      o.mount_bpffs = false;
      auto p = terway::ebpf::DatapathPrograms::Load(o);
      if (!p.ok()) {
        std::fprintf(stderr, "%s\n", p.error().ToString().c_str());
        return 1;
      }
      dp = std::move(*p);
      pod_fd = dp->from_pod_fd();
      eni_fd = dp->from_eni_fd();
      ep_fd = bpf_obj_get((fs + "/terway/terway_dp_ep").c_str());
      // No pod isolated: a fresh policy map polices every pod (the stack).
      if (terway::Status st = dp->SetPolicySynced(true); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.error().ToString().c_str());
        return 1;
      }
    }
    // a: the sender, on "veth" 1; b: a pod of this node on ENI 1.
    uint32_t ka = Nip("198.18.0.20"), kb = Nip("198.18.0.21");
    terway_dp_endpoint a = Ep(1, 3), b = Ep(42, 1);
    if (bpf_map_update_elem(ep_fd, &ka, &a, BPF_ANY) != 0 || bpf_map_update_elem(ep_fd, &kb, &b, BPF_ANY) != 0) {
      std::perror("writing the endpoint map");
      return 1;
    }
    // A Service address, in the stack prefixes (as terwayd writes the
    // Service CIDR): the packet goes to the stack, no redirect.
    terway_dp_stack_key svc{24, Nip("10.96.0.0")};
    uint32_t kind = TERWAY_DP_STACK_SERVICE;
    int stack_fd = bpf_obj_get((fs + "/terway/terway_dp_stack").c_str());
    if (stack_fd < 0 || bpf_map_update_elem(stack_fd, &svc, &kind, BPF_ANY) != 0) {
      std::perror("writing the stack prefix map");
      return 1;
    }
    std::printf("pod -> pod (bpf_redirect_peer):  %.1f ns\n", NsPerRun(pod_fd, "198.18.0.20", "198.18.0.21", calls));
    std::printf("pod -> ENI (bpf_redirect_neigh): %.1f ns\n", NsPerRun(pod_fd, "198.18.0.20", "198.18.9.9", calls));
    std::printf("ENI -> pod (bpf_redirect_peer):  %.1f ns\n", NsPerRun(eni_fd, "198.18.9.9", "198.18.0.21", calls));
    std::printf("pod -> Service (the stack):      %.1f ns\n",
                NsPerRun(pod_fd, "198.18.0.20", "10.96.0.10", calls, static_cast<uint32_t>(-1) /* TC_ACT_UNSPEC */));
    std::printf("spoofed source (dropped):        %.1f ns\n",
                NsPerRun(pod_fd, "198.18.0.99", "198.18.0.21", calls, 2 /* TC_ACT_SHOT */));
    return 0;
  }();
  return rc;
}
