#include "node-agent/cni_owner.h"

#include <thread>

#include "k8s/client.h"
#include "k8s/object.h"

namespace bpfchain::agent {

namespace {
const k8s::Resource kDaemonSets{"apps", "v1", "daemonsets", "DaemonSet", true};

ObjectLookup toLookup(const k8s::ApiResult<k8s::Json>& got) {
  if (!got)
    return {got.error().status, false, got.error().describe()};
  return {200, !k8s::metadataString(*got, "deletionTimestamp").empty(), ""};
}
} // namespace

Result<std::unique_ptr<CniOwner>> CniOwner::create(const std::string& kubeconfig,
                                                   const std::string& owner) {
  auto parts = splitOwner(owner);
  if (!parts)
    return invalidError("--cni-owner: want NAMESPACE/NAME (the agent's DaemonSet), not \"" + owner +
                        "\"");
  auto config = k8s::defaultConfig(kubeconfig);
  if (!config)
    return config.error().context("--cni-owner");
  config->requestTimeout = std::chrono::seconds(5);
  auto client = k8s::Client::create(*config);
  if (!client)
    return client.error().context("--cni-owner");
  return std::unique_ptr<CniOwner>(
      new CniOwner(std::move(*client), owner, parts->first, parts->second));
}

CniOwner::CniOwner(std::unique_ptr<k8s::Client> client, std::string owner, std::string ns,
                   std::string name)
    : client_(std::move(client)), owner_(std::move(owner)), ns_(std::move(ns)),
      name_(std::move(name)) {}

CniOwner::~CniOwner() = default;

ObjectLookup CniOwner::daemonSet() {
  ObjectLookup last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (attempt)
      std::this_thread::sleep_for(std::chrono::seconds(1));
    last = toLookup(client_->get(kDaemonSets, ns_, name_));
    if (last.status != 0 && last.status != 429 && last.status < 500)
      break;
  }
  return last;
}

ObjectLookup CniOwner::nameSpace() {
  return toLookup(client_->get(k8s::resources::kNamespaces, "", ns_));
}

} // namespace bpfchain::agent
