#include "qos/edt.h"

#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include "edt_egress.skel.h"  // generated at build time from bpf/edt_egress.c

namespace terway::qos {

Result<std::unique_ptr<EdtProgram>> EdtProgram::Load() {
  std::unique_ptr<EdtProgram> p(new EdtProgram());
  p->skel_ = terway_edt__open_and_load();
  if (p->skel_ == nullptr) {
    int err = errno;
    return Errorf(ErrorCode::kUnsupported,
                  "loading the EDT program (bpf/edt_egress.c) failed: {} (needs CAP_BPF and a kernel with BTF "
                  "and bpf_skb_set_tstamp, 5.18 or later)",
                  std::strerror(err));
  }
  return p;
}

EdtProgram::~EdtProgram() {
  if (skel_ != nullptr) terway_edt__destroy(skel_);
}

int EdtProgram::prog_fd() const { return bpf_program__fd(skel_->progs.terway_edt_egress); }
int EdtProgram::map_fd() const { return bpf_map__fd(skel_->maps.terway_edt); }

Status EdtProgram::SetRate(int ifindex, uint64_t bytes_per_sec, uint64_t horizon_ns) {
  uint32_t key = static_cast<uint32_t>(ifindex);
  terway_edt_state st{};
  if (bpf_map_lookup_elem(map_fd(), &key, &st) != 0) st = terway_edt_state{};
  st.bytes_per_sec = bytes_per_sec;
  st.horizon_ns = horizon_ns;
  if (bpf_map_update_elem(map_fd(), &key, &st, BPF_ANY) != 0) {
    return SysError(fmt::format("setting the EDT rate of link #{}", ifindex));
  }
  return Ok();
}

Status EdtProgram::Clear(int ifindex) {
  uint32_t key = static_cast<uint32_t>(ifindex);
  if (bpf_map_delete_elem(map_fd(), &key) != 0 && errno != ENOENT) {
    return SysError(fmt::format("clearing the EDT rate of link #{}", ifindex));
  }
  return Ok();
}

Result<std::optional<terway_edt_state>> EdtProgram::Get(int ifindex) const {
  uint32_t key = static_cast<uint32_t>(ifindex);
  terway_edt_state st{};
  if (bpf_map_lookup_elem(map_fd(), &key, &st) != 0) {
    if (errno == ENOENT) return std::optional<terway_edt_state>();
    return SysError(fmt::format("reading the EDT rate of link #{}", ifindex));
  }
  return std::optional<terway_edt_state>(st);
}

Result<std::vector<int>> EdtProgram::Links() const {
  std::vector<int> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(map_fd(), prev, &next) == 0) {
    out.push_back(static_cast<int>(next));
    key = next;
    prev = &key;
  }
  if (errno != ENOENT) return SysError("listing the EDT map");
  return out;
}

}  // namespace terway::qos
