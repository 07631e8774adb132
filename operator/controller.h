// The operator's controller: BpfChains and Nodes in, one BpfNodeConfig per node out.
//
// Level-triggered, as controller-runtime: informers on BpfChains, Nodes and BpfNodeConfigs
// feed a work queue of keys ("chain/<name>", "node/<name>"); writeConcurrency workers
// reconcile keys from the caches and the current state of the world, whatever events led
// there, never one key twice at once.
//   chain/<name>  decides which revision each node runs (api::ChainRef: the
//                 ControllerRevision of a generation and its digest) by the rollout policy
//                 (rollout.h) and publishes it in the chain's status.published
//                 (api/published_rollout.h: a partition by node name, so a batch of any size
//                 is one status write); a node's spec.chains gets a membership entry that
//                 follows it, written only when the node's membership changes (an explicit
//                 reference only where the published rollout cannot say what the policy
//                 decided). It sums the agents' reports up in the chain's status.
//                 Chain reconciles run one at a time (chainMu_).
//   node/<name>   a Node has a BpfNodeConfig of the same name, whose spec.chains is written
//                 in one merge patch with every decision made for it meanwhile; a deleted
//                 Node's is deleted.
// A finalizer keeps a deleted chain until every agent reports it gone, or until a deadline,
// which the status then reports. Each generation's spec is kept as a ControllerRevision named
// after the chain's UID as well as its name (history.h) and owned by the chain: nodes refer
// to it, a rollback restores it, and a chain deleted and created again under its name never
// meets the old object's. Only what nodes and a rollback can need is kept (the current and
// the stable generation); the rest, and revisions of earlier objects of the same name, are
// deleted (no garbage collector is assumed).
//
// Scale: a reconcile reads no informer's whole cache. The event handlers keep an index of
// what reconciles need (each Node's labels; per BpfNodeConfig, each chain's assigned and
// reported generation), and a BpfNodeConfig change queues only the chains whose entries in it
// changed. A status is written only when it differs from the last one written or observed.
// Events (core/v1, on the BpfChain): RolloutStarted, NodeFailed (per node), CanaryReady or
// CanaryFailed, RolloutHalted, RolledBack, ProgressDeadlineExceeded, RolloutComplete (or
// NodesFailed, RolloutFailed: rollout.h's rolloutEvents), CleanupDeadlineExceeded.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "api/bpfchain.h"
#include "api/chain_ref.h"
#include "k8s/client.h"
#include "k8s/event_recorder.h"
#include "k8s/informer.h"
#include "k8s/label_selector.h"
#include "k8s/work_queue.h"
#include "operator/metrics.h"
#include "operator/reconcile_loop.h"
#include "operator/rollout.h"

namespace bpfchain::op {

struct ControllerOptions {
  std::string revisionNamespace = "bpfchain-system"; // where ControllerRevisions live
  std::chrono::seconds cleanupDeadline{300};         // a deleted chain waits this for agents
  OperatorMetrics* metrics = nullptr;                // optional; must outlive the controller
  std::string eventHost;                             // the Events' reportingInstance
  int writeConcurrency = 8; // workers: node writes in flight at once (chain reconciles take one)
  std::chrono::seconds progressDeadline{600}; // RolloutPolicy::progressDeadline
  std::chrono::seconds agentStale{180};       // RolloutPolicy::agentStale
  // A chain queued by a report (a BpfNodeConfig's change, a change of the chain's status
  // alone) is reconciled this much later, with every report that comes meanwhile: during a
  // rollout 1,000 agents report within seconds, and each reconcile reads every node. The
  // user's changes are reconciled at once. 0: at once too.
  std::chrono::milliseconds statusCoalesce{100};
};

class Controller {
public:
  Controller(k8s::Client& client, ControllerOptions options);
  ~Controller();

  // Starts the informers and the worker; returns once the caches have synced, or fails when
  // they have not within `syncTimeout` or `stop` was requested meanwhile.
  Result<void> start(std::chrono::seconds syncTimeout = std::chrono::seconds(120),
                     const std::stop_token& stop = {});
  // Stops the worker (after the key in hand: a chain's writes stop between two nodes, and
  // the next reconcile, here or in another replica, continues) and the informers.
  void stop();
  // nullopt once every informer has synced, else which have not. Thread-safe.
  std::optional<std::string> readiness() const;

private:
  // One reconciler per kind over the generic loop (reconcile_loop.h); both read the index
  // below, which the informers' handlers keep.
  class ChainReconciler final : public Reconciler {
  public:
    explicit ChainReconciler(Controller& c) : c_(c) {}
    const char* kind() const override { return "chain"; }
    k8s::ApiResult<Outcome> reconcile(const std::string& name) override;

  private:
    Controller& c_;
  };
  class NodeReconciler final : public Reconciler {
  public:
    explicit NodeReconciler(Controller& c) : c_(c) {}
    const char* kind() const override { return "node"; }
    k8s::ApiResult<Outcome> reconcile(const std::string& name) override;

  private:
    Controller& c_;
  };
  // What reconciles need of one chain's entries in one BpfNodeConfig.
  struct ChainOnNode {
    bool inSpec = false;             // an entry in spec.chains...
    bool membership = false;         // ...that follows the chain's published rollout, or
    std::optional<int64_t> assigned; // ...with this generation (a reference or a copy)
    bool reference = false;          // a reference (an operator before them wrote copies)
    std::string revision;            // the reference's revision
    bool inStatus = false;           // an entry in status.chains...
    std::optional<int64_t> reported; // ...with this generation
    std::string phase, reason, message;
    bool operator==(const ChainOnNode&) const = default;
  };
  using NodeConfigIndex = std::map<std::string, ChainOnNode>; // by chain name
  // What this process decided a node's entry of a chain must become, until the node's
  // BpfNodeConfig in the cache shows the write that carried it (controller-runtime's
  // "expectations"). Chain reconciles decide; node reconciles write, once per node for every
  // chain decided meanwhile, so the creation of 20 chains is not 20 writes per node.
  struct Pending {
    std::optional<k8s::Json> want; // the entry (membership or reference); nullopt: remove it
    uint64_t seq = 0;              // which decision (a newer one replaces it)
    int64_t writtenRevision = 0;   // the resourceVersion of the write; 0: not written yet
  };
  // The last status this process wrote per chain: the informer's copy can lag behind it.
  struct Written {
    std::string uid; // of the object written: a chain created again under its name starts anew
    RolloutMemory memory;
    std::optional<api::BpfChainStatus> status;  // as sent
    int64_t resourceVersion = 0;                // of the chain after the write; 0 = unknown
    std::chrono::steady_clock::time_point at{}; // when it was sent
  };
  // The informers' handlers: the index below, and the keys to queue.
  void watchChains();
  void watchNodes();
  void watchNodeConfigs();
  static NodeConfigIndex indexOf(const k8s::Json& nodeConfig);
  void onNodeConfig(const k8s::Json* now, const std::string& name);
  void onHeartbeat(const k8s::Json* now, const std::string& name);
  // node/<name>: the BpfNodeConfig's spec.chains as decided (or its deletion).
  k8s::ApiResult<Outcome> reconcileNode(const std::string& name);
  k8s::ApiResult<void> deleteNodeConfig(const std::string& name, bool exists);
  // The entries `name` must have: the cache's with this process's decisions on top (those the
  // cache has not shown), less the chains that no longer exist; `carried` gets the decisions'
  // sequence numbers.
  k8s::Json desiredEntries(const std::string& name, const std::optional<k8s::Json>& cached,
                           std::map<std::string, uint64_t>& carried);
  // Creates or patches the BpfNodeConfig when `desired` differs; the resourceVersion written,
  // or 0 when nothing was.
  k8s::ApiResult<int64_t> writeNodeConfig(const std::string& name,
                                          const std::optional<k8s::Json>& cached,
                                          const k8s::Json& desired);
  // Marks the decisions a write carried as written (or done when the cache shows them).
  void settlePending(const std::string& name, const std::map<std::string, uint64_t>& carried,
                     int64_t written);

  // chain/<name>: the rollout, the nodes' entries, the status, the revisions.
  k8s::ApiResult<Outcome> reconcileChain(const std::string& name);
  void forgetChain(const std::string& name); // the chain is gone from the cache
  // The chain reconcile's steps read the chain as parsed once by reconcileChain (its raw spec
  // in spec.raw, for revisions); one whose spec did not parse has only its metadata, status
  // and spec.raw (api::bpfChainUncheckedFromJson).
  k8s::ApiResult<Outcome> refuseName(const api::BpfChain& chain); // terminal: NameTooLong
  // Terminal: SpecInvalid (a spec that does not parse, an invalid spec.nodeSelector).
  k8s::ApiResult<Outcome> refuseSpec(const api::BpfChain& chain, const std::string& error);
  k8s::ApiResult<Outcome> rollOut(const api::BpfChain& chain, const k8s::LabelSelector& selector);
  // The memory to plan from: the cache's status, or ours when the cache has not caught up.
  RolloutMemory memoryToStart(const api::BpfChain& chain) const;
  // What a matched node's entry of the chain is now (this process's pending decision, else
  // the cache's), and so which generation it runs by the published rollout.
  struct Have {
    enum Kind { None, Member, Pinned, Copy } kind = None; // Copy: of an operator before references
    std::optional<int64_t> generation;                    // Pinned, Copy
    std::string revision;                                 // Pinned
  };
  // The chain's matched nodes as the index shows them, in name order.
  struct Observed {
    std::vector<NodeView> views;
    std::vector<Have> have; // by the index in views
    std::set<std::string> matched;
  };
  // The caller holds indexMu_.
  Have haveOf(const std::string& chain, const std::string& node, const ChainOnNode* entry);
  Observed observeNodes(const std::string& chain, const k8s::LabelSelector& selector,
                        const RolloutMemory& memory);
  using Refs = std::map<int64_t, api::ChainRef>; // each generation's reference, resolved once
  k8s::ApiResult<api::ChainRef> refOf(const api::BpfChain& chain, const RolloutMemory& memory,
                                      Refs& refs, int64_t generation);
  // Sets d.memory.published to what makes the decided nodes run the target (and logs it).
  k8s::ApiResult<void> publishDecision(const api::BpfChain& chain, const RolloutMemory& memory,
                                       RolloutDecision& d, Refs& refs);
  using Decisions = std::vector<std::pair<std::string, std::optional<k8s::Json>>>;
  // The node entries that must change (nullopt: removed).
  k8s::ApiResult<Decisions> entriesToWrite(const api::BpfChain& chain, const RolloutMemory& memory,
                                           const Observed& observed, const RolloutDecision& d,
                                           Refs& refs);
  // Each matched node's generation of the chain once `d` is carried out (nullopt: none), by
  // the index in observed.views.
  static std::vector<std::optional<int64_t>> targetsAfter(const Observed& observed,
                                                          const RolloutDecision& d);
  std::set<int64_t> generationsToKeep(const std::string& chain, int64_t generation,
                                      const Observed& observed, const RolloutDecision& d);
  void enqueueAllChains();
  // Queues a chain after options_.statusCoalesce (see there).
  void queueChainSoon(const std::string& chain);
  // Whether `reported` (node's entry of chain, as just indexed) is the last report awaited_
  // holds for the chain; forgets the node's wait when it is awaited. The caller holds indexMu_.
  bool finishesRollout(const std::string& chain, const std::string& node,
                       const ChainOnNode& reported);
  // The spec a node must run for `generation` of the chain: the chain's own when current,
  // else the ControllerRevision kept for it.
  k8s::ApiResult<k8s::Json> specAt(const api::BpfChain& chain, int64_t generation);
  k8s::ApiResult<void> ensureRevision(const api::BpfChain& chain);
  // Deletes the chain's revisions that neither `keep` generation needs, and any of another
  // object of the same name; lists them only when `keep` changed. An empty `keep`: all.
  k8s::ApiResult<void> pruneRevisions(const api::BpfChain& chain, const std::set<int64_t>& keep);
  // The reference a node gets for `generation` of the chain (its revision must exist).
  k8s::ApiResult<api::ChainRef> refAt(const api::BpfChain& chain, int64_t generation);
  // Decides `node`'s entry of `chain` (nullopt: none) and queues the node's write. Takes
  // indexMu_.
  void decide(const std::string& node, const std::string& chain, std::optional<k8s::Json> want);
  // The decision on `node`'s entry of `chain` that the index has not caught up with, or
  // nullptr (forgetting it once the index shows its write). The caller holds indexMu_.
  const Pending* pendingFor(const std::string& chain, const std::string& node);
  // Removes `chain` from every node whose spec has it and that `keep` does not name.
  void releaseEverywhere(const std::string& chain, const std::set<std::string>& keep);
  // `object`: the chain as cached, for the finalizer's patch (finalizers.h).
  k8s::ApiResult<Outcome> finalize(const api::BpfChain& chain, const k8s::Json& object);
  // The status to compare with and to take transition times from: ours when the cache has
  // not caught up with our last write, else the cache's (empty when it has none).
  const api::BpfChainStatus& previousStatus(const api::BpfChain& chain) const;
  // A problem of the chain itself (not of its nodes): Degraded with this reason and message.
  struct Problem {
    std::string reason, message;
  };
  // A status that differs from the last one written only in its counts (and the messages that
  // quote them) waits until kCountsInterval has passed since that write: every agent watches
  // the chains, and a rollout changes the counts with every node's report. `deferred` (when
  // given) says how long it waits; a reconcile then comes back.
  static constexpr std::chrono::milliseconds kCountsInterval{1000};
  // The status for decision `d` (and `problem`), transition times taken from `previous`.
  api::BpfChainStatus statusOf(const api::BpfChain& chain, const RolloutDecision& d,
                               const Problem& problem, const api::BpfChainStatus& previous) const;
  k8s::ApiResult<void> writeStatus(const api::BpfChain& chain, const RolloutDecision& d,
                                   const Problem& problem,
                                   std::optional<std::chrono::milliseconds>* deferred = nullptr);
  void recordTransitions(const api::BpfChain& chain, const RolloutMemory& before,
                         const api::BpfChainStatus& previous, const RolloutDecision& d);
  void event(const api::BpfChain& chain, k8s::EventType type, const std::string& reason,
             const std::string& message);

  k8s::Client& client_;
  ControllerOptions options_;
  k8s::Informer chains_, nodes_, nodeConfigs_;
  k8s::EventRecorder events_;
  k8s::WorkQueue queue_;
  ChainReconciler chainReconciler_{*this};
  NodeReconciler nodeReconciler_{*this};
  ReconcileLoop loop_; // writeConcurrency workers: node writes go in parallel
  std::mutex chainMu_; // chain reconciles run one at a time (the state below)
  std::atomic<bool> stopping_{false};

  // Kept by the informers' handlers, read by the worker.
  mutable std::mutex indexMu_;
  std::map<std::string, std::map<std::string, std::string>> nodeLabels_; // by Node name
  std::map<std::string, NodeConfigIndex> configs_;                       // by BpfNodeConfig name
  std::map<std::string, int64_t> configRevisions_;                       // by BpfNodeConfig name
  std::map<std::string, std::optional<Clock::time_point>> heartbeats_;   // by BpfNodeConfig name
  std::map<std::string, std::map<std::string, Pending>> pending_;        // node -> chain
  // Per chain, the reports its rollout waits for (rollout.h awaitedReports), set by each chain
  // reconcile: the report that finishes the last of them queues the chain at once.
  std::map<std::string, std::map<std::string, int64_t>> awaited_; // chain -> node -> generation
  uint64_t pendingSeq_ = 0;
  std::set<std::string> chainNames_;

  // The chain reconciles' own (under chainMu_).
  std::set<std::string> revisions_; // ControllerRevisions known to exist
  std::map<std::string, std::pair<std::string, std::set<int64_t>>> pruned_; // chain -> uid, kept
  std::map<std::string, k8s::Json> revisionSpecs_; // spec by revision name, for rollbacks
  std::map<std::string, Written> written_;         // by chain
};

} // namespace bpfchain::op
