#include "tools/vpcsim/catalogue.h"

namespace terway::vpcsim {

namespace {

cloud::InstanceType T(const char* id, const char* family, int cpu, double mem, int enis,
                      int ipv4_per_eni, int ipv6_per_eni) {
  cloud::InstanceType t;
  t.instance_type_id = id;
  t.instance_type_family = family;
  t.cpu_core_count = cpu;
  t.memory_size = mem;
  t.eni_quantity = enis;
  t.eni_private_ip_address_quantity = ipv4_per_eni;
  t.eni_ipv6_address_quantity = ipv6_per_eni;
  t.eni_total_quantity = enis;
  t.eni_trunk_supported = false;
  return t;
}

std::vector<cloud::InstanceType> Build() {
  return {
      // Published quotas (vCPU, GiB, ENIs incl. the primary, private IPv4 per ENI
      // incl. its primary IP, IPv6 per ENI) from Alibaba Cloud's "General-purpose
      // instance families" page:
      //   https://www.alibabacloud.com/help/en/ecs/user-guide/general-purpose-instance-families
      // (cross-checked: ecs.g7.large = 6 IPv4 and 6 IPv6 per ENI, as the IP prefix page
      //  https://www.alibabacloud.com/help/en/ecs/user-guide/ip-prefix states).
      // g5
      T("ecs.g5.large", "ecs.g5", 2, 8, 2, 6, 1),
      T("ecs.g5.xlarge", "ecs.g5", 4, 16, 3, 10, 1),
      T("ecs.g5.2xlarge", "ecs.g5", 8, 32, 4, 10, 1),
      T("ecs.g5.3xlarge", "ecs.g5", 12, 48, 6, 10, 1),
      T("ecs.g5.4xlarge", "ecs.g5", 16, 64, 8, 20, 1),
      T("ecs.g5.6xlarge", "ecs.g5", 24, 96, 8, 20, 1),
      T("ecs.g5.8xlarge", "ecs.g5", 32, 128, 8, 20, 1),
      T("ecs.g5.16xlarge", "ecs.g5", 64, 256, 8, 20, 1),
      T("ecs.g5.22xlarge", "ecs.g5", 88, 352, 15, 20, 1),
      // g6
      T("ecs.g6.large", "ecs.g6", 2, 8, 2, 6, 1),
      T("ecs.g6.xlarge", "ecs.g6", 4, 16, 3, 10, 1),
      T("ecs.g6.2xlarge", "ecs.g6", 8, 32, 4, 10, 1),
      T("ecs.g6.3xlarge", "ecs.g6", 12, 48, 6, 10, 1),
      T("ecs.g6.4xlarge", "ecs.g6", 16, 64, 8, 20, 1),
      T("ecs.g6.6xlarge", "ecs.g6", 24, 96, 8, 20, 1),
      T("ecs.g6.8xlarge", "ecs.g6", 32, 128, 8, 20, 1),
      T("ecs.g6.13xlarge", "ecs.g6", 52, 192, 7, 20, 1),
      T("ecs.g6.26xlarge", "ecs.g6", 104, 384, 15, 20, 1),
      // g7
      T("ecs.g7.large", "ecs.g7", 2, 8, 3, 6, 6),
      T("ecs.g7.xlarge", "ecs.g7", 4, 16, 4, 15, 15),
      T("ecs.g7.2xlarge", "ecs.g7", 8, 32, 4, 15, 15),
      T("ecs.g7.3xlarge", "ecs.g7", 12, 48, 8, 15, 15),
      T("ecs.g7.4xlarge", "ecs.g7", 16, 64, 8, 30, 30),
      T("ecs.g7.6xlarge", "ecs.g7", 24, 96, 8, 30, 30),
      T("ecs.g7.8xlarge", "ecs.g7", 32, 128, 8, 30, 30),
      T("ecs.g7.16xlarge", "ecs.g7", 64, 256, 8, 30, 30),
      T("ecs.g7.32xlarge", "ecs.g7", 128, 512, 15, 30, 30),
      // Emulator-only types: small quotas so tests reach the limits quickly.
      T("ecs.vpcsim.tiny", "ecs.vpcsim", 1, 1, 3, 3, 3),
      T("ecs.vpcsim.small", "ecs.vpcsim", 2, 4, 4, 5, 5),
      // A type without IPv6 (EniIpv6AddressQuantity 0, as older families such as
      // ecs.sn1 report): AssignIpv6Addresses answers InvalidOperation.Ipv6NotSupport.
      T("ecs.vpcsim.ipv4only", "ecs.vpcsim", 2, 4, 3, 5, 0),
      // Dense node for benchmarks: (18 - 1) x 30 = 510 pods.
      T("ecs.vpcsim.xlarge", "ecs.vpcsim", 64, 256, 18, 30, 30),
  };
}

}  // namespace

const std::vector<cloud::InstanceType>& InstanceTypeCatalogue() {
  static const std::vector<cloud::InstanceType> kCatalogue = Build();
  return kCatalogue;
}

const cloud::InstanceType* FindInstanceType(std::string_view id) {
  for (const auto& t : InstanceTypeCatalogue()) {
    if (t.instance_type_id == id) return &t;
  }
  return nullptr;
}

}  // namespace terway::vpcsim
