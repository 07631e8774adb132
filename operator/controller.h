// The operator's controller: BpfChains and Nodes in, one BpfNodeConfig per node out.
//
// Level-triggered, as controller-runtime: informers on BpfChains, Nodes and BpfNodeConfigs
// feed a work queue of keys ("chain/<name>", "node/<name>"); one worker reconciles a key at
// a time from the caches and the current state of the world, whatever events led there.
//   node/<name>   a Node has a BpfNodeConfig of the same name; a deleted Node's is deleted.
//   chain/<name>  the chain's entry in each node's BpfNodeConfig.spec.chains follows the
//                 rollout policy (rollout.h); the chain's status sums up the agents' reports.
// Each chain's entries are written by server-side apply with a field manager of the chain's
// own ("bpfchain-operator/<chain>"), so chains never overwrite each other's entries and
// releasing a chain from a node is applying nothing. A finalizer keeps a deleted chain until
// every agent reports it gone, or until a deadline, which the status then reports.
// Earlier generations' specs, which a rollback restores, are kept as ControllerRevisions.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "k8s/client.h"
#include "k8s/informer.h"
#include "k8s/work_queue.h"
#include "operator/rollout.h"

namespace bpfchain::op {

struct ControllerOptions {
  std::string revisionNamespace = "bpfchain-system"; // where ControllerRevisions live
  std::chrono::seconds cleanupDeadline{300};         // a deleted chain waits this for agents
};

class Controller {
public:
  Controller(k8s::Client& client, ControllerOptions options);
  ~Controller();

  // Starts the informers and the worker; returns once the caches have synced.
  Result<void> start(std::chrono::seconds syncTimeout = std::chrono::seconds(120));
  // Stops the worker (after the key in hand) and the informers.
  void stop();

private:
  struct Outcome {
    std::optional<std::chrono::milliseconds> requeueAfter;
  };
  void worker();
  k8s::ApiResult<Outcome> reconcile(const std::string& key);
  k8s::ApiResult<Outcome> reconcileNode(const std::string& name);
  k8s::ApiResult<Outcome> reconcileChain(const std::string& name);
  void enqueueAllChains();
  void enqueueChainsOf(const k8s::Json& nodeConfig);
  // The spec a node must run for `generation` of the chain: the chain's own when current,
  // else the ControllerRevision kept for it.
  k8s::ApiResult<k8s::Json> specAt(const k8s::Json& chain, int64_t generation);
  k8s::ApiResult<void> ensureRevision(const k8s::Json& chain);
  k8s::ApiResult<void> applyEntry(const std::string& chain, const std::string& node,
                                  const k8s::Json& entry);
  k8s::ApiResult<void> releaseEntry(const std::string& chain, const std::string& node);
  k8s::ApiResult<Outcome> finalize(const k8s::Json& chain);
  k8s::ApiResult<void> writeStatus(const k8s::Json& chain, const RolloutDecision& d,
                                   const std::string& problem);

  k8s::Client& client_;
  ControllerOptions options_;
  k8s::Informer chains_, nodes_, nodeConfigs_;
  k8s::WorkQueue queue_;
  std::thread worker_;
  std::set<std::string> revisions_; // ControllerRevisions known to exist
  // The rollout memory this process last wrote per chain. The informer's copy of the status
  // can lag behind our own write; deciding from it could, for example, forget a rollback and
  // roll the bad generation out again.
  std::map<std::string, RolloutMemory> written_;
};

} // namespace bpfchain::op
