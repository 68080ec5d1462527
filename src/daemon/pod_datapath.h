// The datapath interface lives in src/datapath (datapath/pod_datapath.h):
// the daemon calls the datapath, never the other way round. These aliases
// keep the daemon's own code (and its tests) spelling the names unqualified.
#pragma once

#include "datapath/pod_datapath.h"

namespace terway::daemon {

using datapath::ParseHostStackCidrs;
using datapath::ParseRecordedHostStackCidrs;
using datapath::PodDatapath;
using datapath::PodNetwork;

}  // namespace terway::daemon
