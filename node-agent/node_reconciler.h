// Makes the data plane of this network namespace run a NodeSpec's host-interface chains, and
// says how that went, chain by chain.
//
// Per (interface, hook) there is one dataplane::Chain, pinned under
// <bpffs>/<netns inode>/<ifindex>/<hook>/, running the programs of every BpfChain that selects
// the interface, in (priority, name) order; program ids are "<chain>/<program>". What each
// instance runs, chain by chain, is recorded in <state>/instances/ so that a restarted agent
// knows the previous generation of every chain (it adopts the pins; nothing is reloaded).
//
// Pods: the chains that select a pod (SpecSource::selectsPod), per hook, form a chain set; all
// pods with the same set share one instance, pinned under <bpffs>/<netns inode>/pods/<hook>/
// <set digest>/ and loaded when the chains are applied, so attaching a pod (the CNI plugin's
// ADD) only links the loaded root to the pod's host-side veth. When a pod's set changes (a
// chain is added, labels change) its veth switches to the other instance in one atomic step
// (Attachment::replace). Each CNI attachment (network, container id, pod ifname) is recorded
// in <state>/pods/<container id>-<digest>.yaml and pinned as pod-links/<same>-<hook>.
//
// Failure isolation: each chain's new generation is applied on its own, one make-before-break
// step per instance; a chain that fails (package, verifier, map argument, attach) keeps its
// previous generation running there, and the other chains are unaffected. A failed generation
// is retried with backoff (10 s doubling to 5 min), or at once when the spec changes. An
// interface none of whose chains runs (each failed its first apply) gets no root: an empty root
// would only pass traffic on, as no root does, while pins and an attachment status does not
// list would say otherwise. A chain whose new target cannot be run (NodeSpec::invalid: its
// declaration does not parse, its revision cannot be read or does not match) fails with the
// reason of its kind and keeps running the last declaration that did (or the one the spec
// gives with it); one whose revision is unavailable is retried with the same backoff.
//
// Structure (bpfman's fetch / compute / execute): reconcile() fetches the spec in force, the
// links, the pods and each chain's programs; the pure planner (reconcile_plan.h) decides
// which instance runs which chains and where each pod links; the executor
// (instance_executor.h) and the pod attachments (pod_attachments.h) carry that out; the
// state store (state_store.h) keeps the records; status is built from what runs, and the
// metrics view (metrics_view.h) only exports it.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "dataplane/attachment.h"
#include "dataplane/chain.h"
#include "node-agent/apply_failure.h"
#include "node-agent/instance_executor.h"
#include "node-agent/link_monitor.h"
#include "node-agent/node_config.h"
#include "node-agent/pod_attachments.h"
#include "node-agent/pod_ref.h"
#include "node-agent/program_resolver.h"
#include "node-agent/reconcile_plan.h"
#include "node-agent/state_store.h"

namespace bpfchain::agent {

class AgentMetrics;
class MetricsView;

struct ReconcilerOptions {
  std::string bpffsRoot = "/sys/fs/bpf/bpfchain";
  std::string stateDir = "/var/lib/bpfchain";
  dataplane::AttachOptions attach;
};

struct AttachmentStatus {
  std::string interface;
  dataplane::Hook hook = dataplane::Hook::Xdp;
  std::string pod;                  // namespace/name for a pod interface
  std::vector<uint32_t> programIds; // root first, then this chain's programs
  bool operator==(const AttachmentStatus&) const = default;
};

struct ChainStatus {
  std::string name;
  int64_t generation = 0; // the target: the generation this node was given, phase/reason's
  // What actually runs: the oldest generation of the chain among the instances that run it,
  // 0 when none does. Differs from `generation` while applying and after a failure (the
  // previous generation keeps running).
  int64_t runningGeneration = 0;
  // Idle (reason NothingToAttach): no interface or pod of this node is the chain's, so nothing
  // runs it here; not a failure, and not Ready either.
  std::string phase;  // Applying | Ready | Idle | Failed | Removing
  std::string reason; // machine-readable, "" when Ready
  std::string message;
  std::vector<AttachmentStatus> attachments;
  // For a chain given by reference (ChainDecl::revision): the target revision, and that of the
  // generation reported in runningGeneration (differs as the generations do). "" otherwise.
  std::string revision;
  std::string runningRevision;
  bool operator==(const ChainStatus&) const = default;
};

struct NodeStatus {
  std::vector<ChainStatus> chains; // in spec order
  bool operator==(const NodeStatus&) const = default;
};

// What runs on one interface hook, for `bpfchain-agent status`.
struct ProgramInspection {
  std::string chain;
  std::string program;
  uint32_t programId = 0;
  int64_t generation = 0;
  bool hasStats = false;                                  // a chain.h stats map was found
  std::vector<std::pair<std::string, uint64_t>> verdicts; // AgentMetrics::verdictCounts
};
struct HookInspection {
  std::string interface; // pods/<hook>/<set> for a pods instance no pod is linked to
  std::string pod;       // namespace/name for a pod's host-side veth
  dataplane::Hook hook = dataplane::Hook::Xdp;
  std::string attachMode; // xdp link | xdp netlink | tcx | cls_bpf | not attached
  uint32_t rootProgramId = 0;
  std::vector<ProgramInspection> programs; // in the order they run
};

struct PodChain {
  std::string chain;
  dataplane::Hook hook = dataplane::Hook::Xdp;
  int64_t generation = 0;
  uint32_t rootProgramId = 0;
  std::string interface;
};

class NodeReconciler {
public:
  // Adopts every instance pinned for this network namespace (nothing is reloaded or detached).
  static Result<std::unique_ptr<NodeReconciler>>
  create(ReconcilerOptions options, ProgramResolver& resolver, AgentMetrics* metrics);
  ~NodeReconciler();

  // Level-triggered: converges on `spec` from whatever runs now. Never throws; every failure is
  // in the returned status.
  // `expectedPods` (namespace, name) are pods that will be attached soon (scheduled here, no
  // CNI ADD yet): their chain sets are loaded now, so that their ADD only attaches.
  // `known`: the namespace's links as a link monitor knows them; listed from the kernel when
  // absent (a dump of every link costs O(links) of kernel time: not in every Links pass).
  NodeStatus reconcile(const NodeSpec& spec, const PodSelector& selectsPod,
                       const std::vector<std::pair<std::string, std::string>>& expectedPods = {},
                       ReconcileScope scope = ReconcileScope::Full,
                       const std::optional<Interfaces>& known = std::nullopt);

  // The status of what runs now (after pods came and went), without applying anything.
  NodeStatus status() const;

  // Every instance with its programs in order and their verdict counts read now; a pods
  // instance once per pod linked to it.
  std::vector<HookInspection> inspect() const;

  // The CNI plugin's requests (thread-safe; the calling thread must be in the managed network
  // namespace), each about one attachment (PodRef's identity; host interface and pod name
  // matter only to attachPod). attachPod is idempotent; detachPod of an unknown attachment
  // succeeds.
  Result<std::vector<PodChain>, ApplyFailure> attachPod(const PodRef& ref);
  void detachPod(const PodRef& ref);
  // Whether the attachment's chains are still attached to its veth.
  Result<void, ApplyFailure> checkPod(const PodRef& ref);
  // Detaches every attachment of `network` whose (container id, pod ifname) is not in
  // `valid`; returns the removed attachments' container ids.
  std::vector<std::string> collectPods(const std::string& network,
                                       const std::set<std::pair<std::string, std::string>>& valid);
  // True once reconcile() ran with a spec (the CNI plugin's "ready").
  bool applied() const;

  // When the next reconcile should run to retry a failure, if any failed.
  std::optional<std::chrono::steady_clock::time_point> nextRetry() const;

  // Detaches and unpins every instance (--detach-on-exit, or a chain-free spec).
  void detachAll();

  // Instances by key "<ifindex>/<hook>", for tests and metrics.
  size_t instanceCount() const { return instances_->all().size(); }

private:
  NodeReconciler(ReconcilerOptions options, ProgramResolver& resolver, AgentMetrics* metrics);
  // Fetch: the spec in force (invalid chains keep their last good declaration), and each
  // chain's programs (packages fetched and verified) unless it is in backoff.
  void acceptSpec(const NodeSpec& spec, Clock::time_point now);
  Resolved resolveChains(Clock::time_point now, std::map<std::string, ApplyFailure>& failures);
  // Execute: instances to their chains (and host roots attached), pods to their chain sets.
  void converge(const NodePlan& plan, const Resolved& resolved, ReconcileScope scope,
                std::map<std::string, ApplyFailure>& failures,
                std::map<std::string, double>& applySeconds);
  void convergeInstance(const std::string& key, const DesiredInstance& d, const Resolved& resolved,
                        ReconcileScope scope, std::map<std::string, ApplyFailure>& failures,
                        std::map<std::string, double>& applySeconds);
  void followPods(const NodePlan& plan, ReconcileScope scope,
                  std::map<std::string, ApplyFailure>& failures);
  void recordOutcome(const std::map<std::string, ApplyFailure>& failures,
                     const std::map<std::string, double>& applySeconds, Clock::time_point now);
  // Loads the chain set `chains` of a pod's first ADD as instance `key`.
  Result<void, ApplyFailure> loadPodSet(const std::string& key, dataplane::Hook hook,
                                        const std::vector<const ChainDecl*>& chains);
  // Records (and logs) the maps of `chain` that an apply on `where` did not carry.
  void noteUncarried(const ApplyOutcome& outcome);
  NodeStatus buildStatus() const;
  ChainStatus chainStatus(const ChainDecl& c) const;
  // The monitor problems status reports, then the metrics view, after what runs changed.
  void refreshViews();
  // Removes the cached packages that neither a running program nor a chain of the spec uses;
  // runs when that set changes.
  void collectPackages();

  ReconcilerOptions options_;
  ProgramResolver& resolver_;
  AgentMetrics* metrics_;
  uint64_t netnsInode_ = 0;
  mutable std::mutex mu_; // the reconcile loop and the CNI socket's threads
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<InstanceExecutor> instances_;
  std::unique_ptr<PodAttachments> pods_;
  NodeSpec spec_;
  PodSelector selectsPod_;
  bool applied_ = false;
  std::map<std::string, RetryState> retries_;    // by chain name
  std::map<std::string, ApplyFailure> failures_; // of the last reconcile, by chain name
  // The spec's chains that did not parse, by name; spec_ holds their last good declaration
  // when they had one.
  std::map<std::string, InvalidChain> invalid_;
  // When to try again to read the revision of each chain whose revision is unavailable.
  std::map<std::string, RevisionRetry> unavailable_;
  std::unique_ptr<MetricsView> metricsView_; // null without metrics
  // Per chain, the first of its monitorMaps that cannot be exported (monitorProblems() as of
  // the last refreshViews): the chain runs, its status says what is not exported.
  std::map<std::string, std::string> monitorProblems_;
  // Per chain, the maps its running generation did not carry from the previous version of a
  // program (dataplane::ApplyReport::uncarried, "<program>: <map> (<reason>)"): they started
  // empty. Kept for the chain's spec (by its digest), so that status says so while it runs.
  struct Uncarried {
    std::string specDigest;
    std::set<std::string> maps;
  };
  std::map<std::string, Uncarried> uncarried_;
  // Each chain's resolved programs, by the digest of its declaration.
  std::map<std::string, std::pair<std::string, std::vector<dataplane::ProgramSpec>>> resolvedCache_;
  std::set<std::string> packagesInUse_; // digests, as of the last collectPackages
};

} // namespace bpfchain::agent
