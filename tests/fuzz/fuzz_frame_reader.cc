// Fuzz target: the protocol's framing. FrameReader (a server's incremental
// splitter) fed in chunks, and ReadFrame (the blocking reader the plugin and
// ServeConnection use) on a real socket pair, both against a model: frames
// are the bytes between newlines, and no frame may exceed the cap.
//
// Input layout: byte 0 picks the cap (1..256 bytes), byte 1 the chunk size
// (1..16 bytes), the rest is the stream.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cni/daemon_client.h"
#include "cni/protocol.h"
#include "fuzz/fuzz_check.h"

using namespace terway;
using namespace terway::cni;

namespace {

void CheckFrameReader(std::string_view stream, size_t cap, size_t chunk) {
  protocol::FrameReader reader(cap);
  std::string consumed;  // frames given back, each with its '\n'
  size_t fed = 0;
  for (; fed < stream.size(); fed += chunk) {
    std::string_view piece = stream.substr(fed, chunk);
    Status st = reader.Feed(piece);
    const std::string_view so_far = stream.substr(0, fed + piece.size());
    const size_t last_nl = so_far.rfind('\n');
    const size_t tail = last_nl == std::string_view::npos ? so_far.size() : so_far.size() - last_nl - 1;
    // Feed fails exactly when the unterminated tail passes the cap.
    FUZZ_CHECK(st.ok() == (tail <= cap), "cap " + std::to_string(cap) + " tail " + std::to_string(tail));
    if (!st.ok()) return;  // the connection would be closed here
    while (auto f = reader.Next()) {
      FUZZ_CHECK(f->find('\n') == std::string::npos, "a frame holds its newline");
      consumed += *f + '\n';
    }
    FUZZ_CHECK(consumed.size() + reader.buffered() == so_far.size(), "bytes lost or invented");
  }
  FUZZ_CHECK(stream.substr(0, consumed.size()) == consumed, "frames differ from the stream");
}

void CheckReadFrame(std::string_view stream, size_t cap) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  // The stream fits the socket buffer (-max_len keeps inputs small), so one
  // blocking write and a shutdown give the reader all of it, then EOF.
  ssize_t n = write(sv[1], stream.data(), stream.size());
  shutdown(sv[1], SHUT_WR);
  if (n == static_cast<ssize_t>(stream.size())) {
    auto frame = ReadFrame(sv[0], std::chrono::steady_clock::now() + std::chrono::seconds(5), cap);
    const size_t nl = stream.find('\n');
    if (nl == std::string_view::npos) {
      // No newline: EOF mid-frame, unless the frame outgrew the cap first.
      FUZZ_CHECK(!frame.ok(), "a frame without a newline was accepted");
    } else if (nl <= cap) {
      FUZZ_CHECK(frame.ok() && *frame == stream.substr(0, nl), "first frame");
    } else {
      FUZZ_CHECK(!frame.ok() && frame.error().code == ErrorCode::kInvalidArgument, "oversized frame accepted");
    }
  }
  close(sv[0]);
  close(sv[1]);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)fuzz::ReportFd();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = 1 + data[0];
  const size_t chunk = 1 + data[1] % 16;
  const std::string_view stream = fuzz::AsText(data + 2, size - 2);
  CheckFrameReader(stream, cap, chunk);
  CheckReadFrame(stream, cap);
  return 0;
}
