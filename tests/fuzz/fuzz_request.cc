// Fuzz target: terwayd's side of the protocol, a request frame from a client
// (DecodeRequest), and what the server does with it (ServeConnection's
// answer to a frame it cannot decode).
//
// Invariants: a decoded request encodes to exactly one line (the framing
// depends on it) that decodes to the same request; a refused one yields an
// "invalid" reply that itself encodes and decodes.
#include <cstdint>

#include "cni/protocol.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;
using namespace terway::cni::protocol;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto req = DecodeRequest(fuzz::AsText(data, size));
  if (!req.ok()) {
    FUZZ_CHECK(req.error().code == ErrorCode::kInvalidArgument, req.error().ToString());
    const std::string frame = EncodeReply(Reply::Fail(ErrorClass::kInvalid, req.error().ToString()));
    FUZZ_CHECK(frame.find('\n') == frame.size() - 1, "a reply frame holds a raw newline");
    auto back = DecodeReply(frame);
    FUZZ_CHECK(back.ok() && back->error && back->error->cls == ErrorClass::kInvalid, frame.substr(0, 512));
    return 0;
  }
  const bool per_container = req->op == Op::kAllocate || req->op == Op::kRelease || req->op == Op::kGet;
  FUZZ_CHECK(!per_container || !req->container_id.empty(), "per-container op without container_id");
  FUZZ_CHECK(req->network.mtu >= 0 && req->network.mtu <= 65535, std::to_string(req->network.mtu));
  FUZZ_CHECK(fuzz::AsText(data, size).find('\0') == std::string_view::npos, "accepted a frame with a NUL byte");
  const std::string frame = EncodeRequest(*req);
  FUZZ_CHECK(frame.find('\n') == frame.size() - 1, "a request frame holds a raw newline");
  fuzz::MustParse(frame, "request frame");
  auto back = DecodeRequest(frame);
  FUZZ_CHECK(back.ok(), back.ok() ? "" : back.error().ToString() + " in " + frame.substr(0, 512));
  FUZZ_CHECK(*back == *req, frame.substr(0, 512));
  return 0;
}
