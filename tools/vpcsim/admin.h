// The admin endpoint (loopback listener only; never reachable from the VPC):
//   GET  /admin/health                  {"ok":true}
//   GET  /admin/stats                   calls and errors per action and code
//   POST /admin/stats/reset
//   GET  /admin/faults                  faults in force, per action ("*" = all)
//   POST /admin/faults                  {"action":"AssignPrivateIpAddresses","throttle_rate":0.2,...}
//   POST /admin/faults/clear            {"action":"X"} or {} for all
//   GET  /admin/world                   instances, ENIs, IPs, vSwitch usage
//   POST /admin/instances               {"id":"i-x"?,"instance_type":"ecs.g7.large","vswitch":"vsw-...",
//                                        "ipv6_address_count":1?}  (RunInstances' Ipv6AddressCount:
//                                        IPv6s of the primary ENI; answered in "ipv6s")
//   DELETE /admin/instances/<id>
// Errors: {"error": "..."} with 400 / 404 / 409.
#pragma once

#include <string>

#include "tools/vpcsim/cloud.h"
#include "tools/vpcsim/faults.h"
#include "tools/vpcsim/http_reply.h"

namespace terway::vpcsim {

class AdminService {
 public:
  AdminService(VpcCloud* cloud, FaultTable* faults, CallCounters* counters)
      : cloud_(cloud), faults_(faults), counters_(counters) {}
  HttpReply Handle(const std::string& method, const std::string& path, const std::string& body);

 private:
  VpcCloud* cloud_;
  FaultTable* faults_;
  CallCounters* counters_;
};

}  // namespace terway::vpcsim
