// Where the API server is and how to authenticate: from the pod's service
// account (in-cluster) or from a kubeconfig file.
#pragma once

#include <string>

#include "common/result.h"

namespace terway::k8s {

struct RestConfig {
  std::string server;  // "https://10.0.0.1:443" or "http://127.0.0.1:6443"
  // Bearer token, either literal or re-read from a file on each request
  // (service-account tokens are rotated by the kubelet underneath us).
  std::string token;
  std::string token_file;
  // PEM CA bundle: a file or the data itself.
  std::string ca_file;
  std::string ca_data;
  // Client certificate and key (PEM): files or data.
  std::string client_cert_file;
  std::string client_cert_data;
  std::string client_key_file;
  std::string client_key_data;
  bool insecure_skip_tls_verify = false;
  // Client-side rate limit (client-go's defaults are 5 QPS, burst 10).
  double qps = 5;
  int burst = 10;
  std::string user_agent = "terway-cpp";
};

// Paths of the in-cluster files, overridable by tests.
struct InClusterPaths {
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
};

// Reads KUBERNETES_SERVICE_HOST/PORT and the service-account files.
Result<RestConfig> LoadInClusterConfig(const InClusterPaths& paths = {});

// Reads a kubeconfig file; context empty means current-context. Relative
// file paths inside it are relative to the kubeconfig's directory, as kubectl
// resolves them.
Result<RestConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// Decodes base64 (the *-data fields of kubeconfig).
Result<std::string> Base64Decode(std::string_view in);

}  // namespace terway::k8s
