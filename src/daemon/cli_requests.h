// terwayd's answers to terway-cli's `inspect` requests (list, show, mapping,
// metadata, nodeconfig): the views of cli_views.h built from the daemon's
// live parts, as one JSON document in the reply's text. Every other request
// goes on to the CNI service. Runs on the socket's control lane: it reads
// the store and copies the pool under its lock, and `metadata` asks the
// metadata service (bounded by that client's own timeouts), never the
// cloud's API.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>

#include "cloud/metadata.h"
#include "daemon/cli_views.h"
#include "daemon/request_lanes.h"
#include "ipam/address_source.h"
#include "ipam/pool.h"
#include "store/state_store.h"

namespace terway::daemon {

struct OperatorViewSources {
  store::StateStore* store = nullptr;
  ipam::PodAddressSource* addresses = nullptr;
  ipam::IpPool* pool = nullptr;  // null on exclusive-ENI nodes
  cloud::InstanceMetadata* metadata = nullptr;
  // network_service/default's config (fixed at start); its trace adds
  // readiness from the CNI service's own STATUS answer.
  std::vector<cli_views::KeyValue> service_config;
  std::function<std::vector<cli_views::KeyValue>()> service_trace;
  std::string pool_name;
  std::vector<cli_views::KeyValue> pool_config;
  cli_views::NodeConfigFacts node_config;
};

class OperatorViews : public RequestHandler {
 public:
  OperatorViews(OperatorViewSources sources, RequestHandler* next) : src_(std::move(sources)), next_(next) {}
  cni::protocol::Reply Handle(const cni::protocol::Request& req) override;

 private:
  Result<cli_views::Json> Build(const cni::protocol::InspectQuery& q, std::chrono::steady_clock::time_point deadline);
  Result<cli_views::StoreFacts> ReadStore();
  Result<cli_views::MetadataFacts> ReadMetadata(std::chrono::steady_clock::time_point deadline);

  OperatorViewSources src_;
  RequestHandler* next_;
  // One metadata view at a time: each of its reads may wait out a slow
  // metadata service (the client retries for up to 20 s), and the control
  // lane's other workers must stay free for the runtime's STATUS and CHECK.
  std::mutex metadata_mu_;
};

// The host links of this network namespace by lower-case MAC.
std::map<std::string, std::string> LinksByMac();

}  // namespace terway::daemon
