// How to reach and authenticate to an API server: from a kubeconfig file (its current context
// or a named one; certificate, key, CA and token inline or as files) or, inside a pod, from the
// service account (client-go's rest.InClusterConfig).
#pragma once

#include <chrono>
#include <string>

#include "system/result.h"

namespace bpfchain::k8s {

struct Config {
  std::string server; // https://host:port
  std::string caPem;  // trust only this CA; empty: the system's trust store
  bool insecureSkipTlsVerify = false;
  std::string clientCertPem; // client certificate authentication
  std::string clientKeyPem;
  std::string token;     // bearer token...
  std::string tokenFile; // ...or a file re-read every minute (service-account tokens rotate)
  std::string nameSpace; // the context's (or the pod's) namespace, "" if none
  // How long one request may take (connect, send, answer); watches set their own.
  std::chrono::milliseconds requestTimeout{30000};
};

// Parses a kubeconfig; `context` empty means its current-context.
Result<Config> loadKubeconfig(const std::string& path, const std::string& context = "");
// The service account of the pod this process runs in.
Result<Config> inClusterConfig();
// `kubeconfig` when not empty, else $KUBECONFIG when set, else the in-cluster config.
Result<Config> defaultConfig(const std::string& kubeconfig);

} // namespace bpfchain::k8s
