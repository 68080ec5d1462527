#include "qos/edt.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "edt_eni_egress.skel.h"  // generated at build time from bpf/edt_eni_egress.c

namespace terway::qos {

namespace {
uint32_t Key(Ipv4Addr ip) { return htonl(ip.value()); }  // as the IP header carries it
}  // namespace

Result<std::unique_ptr<EdtProgram>> EdtProgram::Load() {
  std::unique_ptr<EdtProgram> p(new EdtProgram());
  p->skel_ = terway_edt__open_and_load();
  if (p->skel_ == nullptr) {
    int err = errno;
    return Errorf(ErrorCode::kUnsupported,
                  "loading the EDT program (bpf/edt_eni_egress.c) failed: {} (needs CAP_BPF and a kernel with "
                  "bpf_skb_set_tstamp, 5.18 or later)",
                  std::strerror(err));
  }
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(p->prog_fd(), &info, &len) != 0) return SysError("reading the EDT program's id");
  p->prog_id_ = info.id;
  return p;
}

EdtProgram::~EdtProgram() {
  if (skel_ != nullptr) terway_edt__destroy(skel_);
}

int EdtProgram::prog_fd() const { return bpf_program__fd(skel_->progs.terway_edt_eni_egress); }
int EdtProgram::map_fd() const { return bpf_map__fd(skel_->maps.terway_edt); }
uint32_t EdtProgram::prog_id() const { return prog_id_; }

Status EdtProgram::SetRate(Ipv4Addr pod_ip, uint64_t bytes_per_sec, uint64_t horizon_ns) {
  uint32_t key = Key(pod_ip);
  terway_edt_state st{};
  if (bpf_map_lookup_elem(map_fd(), &key, &st) != 0) st = terway_edt_state{};
  st.bytes_per_sec = bytes_per_sec;
  st.horizon_ns = horizon_ns;
  if (bpf_map_update_elem(map_fd(), &key, &st, BPF_ANY) != 0) {
    return SysError(fmt::format("setting the EDT rate of pod IP {}", pod_ip.ToString()));
  }
  return Ok();
}

Status EdtProgram::Clear(Ipv4Addr pod_ip) {
  uint32_t key = Key(pod_ip);
  if (bpf_map_delete_elem(map_fd(), &key) != 0 && errno != ENOENT) {
    return SysError(fmt::format("clearing the EDT rate of pod IP {}", pod_ip.ToString()));
  }
  return Ok();
}

Result<std::optional<terway_edt_state>> EdtProgram::Get(Ipv4Addr pod_ip) const {
  uint32_t key = Key(pod_ip);
  terway_edt_state st{};
  if (bpf_map_lookup_elem(map_fd(), &key, &st) != 0) {
    if (errno == ENOENT) return std::optional<terway_edt_state>();
    return SysError(fmt::format("reading the EDT rate of pod IP {}", pod_ip.ToString()));
  }
  return std::optional<terway_edt_state>(st);
}

Result<std::vector<Ipv4Addr>> EdtProgram::Addresses() const {
  std::vector<Ipv4Addr> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(map_fd(), prev, &next) == 0) {
    out.push_back(Ipv4Addr(ntohl(next)));
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the EDT map");
  return out;
}

}  // namespace terway::qos
