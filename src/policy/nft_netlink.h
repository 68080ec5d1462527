// Our delta scripts (nft_render.h's RenderNftDelta) sent to the kernel as
// nf_tables netlink messages of our own, without libnftables.
//
// Why: libnftables (1.0.6) evaluates every command against a cache it fills
// from the kernel first -- every chain, set and named counter of the table,
// and the elements of every interval set as soon as one element changes.
// At 10,000 policies over 1,000 pods that listing alone costs 10-60 ms on
// this machine for a change of one pod, whatever its size. Encoding the
// commands ourselves costs what the change holds.
//
// The script stays the one source of truth: the same text libnftables would
// run, translated command by command into one batch, so the kernel still
// applies it as one transaction (all or nothing). Only the commands and
// rule statements the renderer writes today are known (see nft_netlink.cc);
// a script with anything else is refused with kUnsupported before anything
// is sent, and the caller runs it through libnftables instead
// (tests/root/policy compares the tables both paths build).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace terway::policy {

// The batch for `script` (NFNL batch begin, one message per command or
// per chunk of elements, batch end), sequence numbers from `first_seq`.
// kUnsupported naming the first command it cannot translate.
Result<std::vector<uint8_t>> EncodeNftBatch(const std::string& script, uint32_t first_seq = 1);

// Encodes `script` and sends it in network namespace `netns` ("" = ours) as
// one transaction. kUnsupported: nothing was sent (run it through
// RunNftBatch). Other errors: the kernel refused it (and applied none of
// it), naming the command.
Status RunNftBatchNetlink(const std::string& netns, const std::string& script);

}  // namespace terway::policy
