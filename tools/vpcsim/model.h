// The emulated cloud's records, as kept in memory and persisted by StateStore.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloud/types.h"

namespace terway::vpcsim {

struct EniRecord {
  std::string id;
  int64_t seq = 0;            // creation order: listing order and paging key
  std::string status;         // cloud::kEni*
  std::string type;           // "Primary" / "Secondary"
  std::string vswitch_id;
  std::string instance_id;    // set while Attaching, InUse, Detaching
  int device_index = 0;       // 0 = primary ENI (eth0)
  std::string mac;
  std::string primary_ip;
  std::vector<std::string> secondary_ips;  // in assignment order
  std::vector<std::string> ipv6s;
  std::vector<std::string> security_groups;
  std::vector<cloud::Tag> tags;
  std::string resource_group_id;  // "": the account's default group
  std::string name;
  std::string description;
  int64_t created_at = 0;     // unix seconds
  int64_t transition_at_ms = 0;  // when Attaching/Detaching completes (unix ms)
};

struct InstanceRecord {
  std::string id;
  int64_t seq = 0;
  std::string instance_type;
  std::string zone;
  std::string vswitch_id;
  std::string primary_eni;
  int64_t created_at = 0;
};

struct ClientTokenRecord {
  std::string token;
  std::string action;
  std::string fingerprint;
  std::string result;  // the successful response (JSON text, without RequestId)
  int64_t created_at = 0;
};

struct StsCredential {
  std::string access_key_id;  // "STS.<random>"
  std::string access_key_secret;
  std::string security_token;
  std::string instance_id;
  std::string role;
  int64_t issued_at = 0;   // unix seconds
  int64_t expires_at = 0;
};

}  // namespace terway::vpcsim
