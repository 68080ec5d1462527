// Fuzz target: the network configuration on stdin (DecodeConfigJson ->
// ConfigVersion -> ParseNetConf), with prevResult, runtimeConfig.bandwidth
// and GC's attachment lists.
//
// Besides "no crash, no exception, no sanitizer report", an accepted
// configuration must keep the promises the plugin relies on:
//   - every value it hands on stays inside the ranges config.h documents;
//   - the daemon request built from it encodes and decodes to itself (what
//     the plugin sends, terwayd can read);
//   - its prevResult renders, in the configuration's version, as JSON.
// A refused one must yield an error that renders as a CNI error object.
#include <cstdint>

#include "cni/config.h"
#include "cni/json_text.h"
#include "cni/protocol.h"
#include "cni/result.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = DecodeConfigJson(fuzz::AsText(data, size));
  if (!j.ok()) {
    fuzz::MustParse(RenderError(MakeCniError(kDecodingFailure, j.error().ToString()), "1.1.0"), "error");
    return 0;
  }
  (void)ConfigVersion(*j);
  auto conf = ParseNetConf(*j);
  if (!conf.ok()) {
    fuzz::MustParse(RenderError(MakeCniError(kInvalidNetworkConfig, conf.error().ToString()), "1.1.0"), "error");
    return 0;
  }
  const NetConf& c = *conf;
  // A raw NUL byte ends JSON text for the parser; accepting input with one
  // would mean whatever followed it was ignored.
  FUZZ_CHECK(fuzz::AsText(data, size).find('\0') == std::string_view::npos, "accepted a NUL byte on stdin");
  FUZZ_CHECK(ParseSpecVersion(c.cni_version) == c.version, c.cni_version);
  FUZZ_CHECK(ValidateNetworkName(c.name).ok(), c.name);
  FUZZ_CHECK(c.mtu == 0 || (c.mtu >= 68 && c.mtu <= 65535), std::to_string(c.mtu));
  FUZZ_CHECK(c.daemon_socket.empty() || protocol::CheckSocketPath(c.daemon_socket).ok(), c.daemon_socket);
  if (c.bandwidth) {
    for (uint64_t rate : {c.bandwidth->ingress_rate, c.bandwidth->egress_rate})
      FUZZ_CHECK(rate == 0 || (rate >= kMinBandwidthBitsPerSec && rate <= kMaxBandwidthBitsPerSec),
                 std::to_string(rate));
  }
  // CIDRs reach terwayd and the kernel as text: a NUL inside would be cut.
  FUZZ_CHECK(c.service_cidr.find('\0') == std::string::npos, c.service_cidr);
  for (const auto& cidr : c.host_stack_cidrs) FUZZ_CHECK(cidr.find('\0') == std::string::npos, cidr);
  for (const auto& a : c.valid_attachments) FUZZ_CHECK(!a.container_id.empty(), "attachment without containerID");

  // What the plugin sends for this configuration (plugin.cc's BaseRequest,
  // with the configuration's parts filled in).
  protocol::Request req;
  req.op = c.has_valid_attachments ? protocol::Op::kGc : protocol::Op::kAllocate;
  req.cni_version = c.cni_version;
  req.container_id = "c0ffee";
  req.bandwidth = c.bandwidth;
  req.network = protocol::NetworkOptions{c.name, c.eniip_virtual_type, c.mtu, c.service_cidr, c.host_stack_cidrs};
  req.prev_result = c.prev_result;
  req.valid_attachments = c.valid_attachments;
  const std::string frame = protocol::EncodeRequest(req);
  FUZZ_CHECK(frame.find('\n') == frame.size() - 1, "a request frame holds a raw newline");
  auto back = protocol::DecodeRequest(frame);
  FUZZ_CHECK(back.ok(), back.ok() ? "" : back.error().ToString());
  FUZZ_CHECK(*back == req, frame.substr(0, 512));

  if (c.prev_result) fuzz::MustParse(DumpJson(RenderResult(*c.prev_result, c.version)), "prevResult");
  return 0;
}
