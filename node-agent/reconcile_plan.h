// The agent's decisions, as pure functions of what it was given and what runs (bpfman's
// fetch / compute / execute; the data plane's own planChain): no syscalls, no files, no clock
// but the `now` passed in. NodeReconciler fetches (spec, links, pods, resolved programs), asks
// these what to do, and its executor (instance_executor.h) does it.
//   - effectiveSpec: a chain whose new target cannot be run keeps its last good declaration;
//     an unavailable revision is retried with backoff.
//   - inBackoff / nextRetry: a failed generation is retried after 10 s doubling to 5 min, or
//     at once when its declaration changes.
//   - planNode: which instance (interface hook, or pods chain set) runs which chains, which
//     pod links where, which attachments lost their veth, which instances go.
//   - planInstance: per instance, the chains that leave, whether the base step runs, and the
//     chains that move to a new generation, each on its own (failure isolation).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/hook.h"
#include "dataplane/program_spec.h"
#include "node-agent/apply_failure.h"
#include "node-agent/link_monitor.h"
#include "node-agent/node_config.h"
#include "node-agent/pod_ref.h"
#include "node-agent/state_store.h"

namespace bpfchain::agent {

using Clock = std::chrono::steady_clock;
inline constexpr std::chrono::seconds kFirstRetry{10};
inline constexpr std::chrono::seconds kMaxRetry{300};

// Full: everything is re-applied (map arguments rewritten); Links: a pass that only follows
// interfaces and pods coming and going, and leaves running chains alone.
enum class ReconcileScope { Full, Links };

// Whether `chain` (a pods chain) selects the pod namespace/name.
using PodSelector =
    std::function<bool(const ChainDecl& chain, const std::string& ns, const std::string& name)>;

// Everything of a declaration that changes what runs (not its generation or monitors).
std::string specDigest(const ChainDecl& chain);
// `chains` in the order they run: (priority, name).
std::vector<const ChainDecl*> inOrder(std::vector<const ChainDecl*> chains);
std::string instanceKey(int ifindex, dataplane::Hook hook);
// A pods instance's key: "pods/<hook>/<digest of the chain names>".
std::string podInstanceKey(dataplane::Hook hook, const std::vector<const ChainDecl*>& chains);
bool isPodKey(const std::string& key);

// --- The spec in force ---------------------------------------------------------------------
struct RevisionRetry { // when to read an unavailable revision again (no watch event may come)
  std::string revision;
  Clock::time_point notBefore;
  std::chrono::seconds backoff{0};
  bool operator==(const RevisionRetry&) const = default;
};
struct EffectiveSpec {
  NodeSpec spec;                                // invalid chains replaced by their last good one
  std::map<std::string, InvalidChain> invalid;  // by name
  std::map<std::string, RevisionRetry> retries; // by name, for RevisionUnavailable
  std::vector<std::string> report;              // invalid chains to log and count this pass
};
// `given` is the source's spec, `previous` the one in force so far, `invalidBefore` and
// `retriesBefore` the last pass's.
EffectiveSpec effectiveSpec(const NodeSpec& given, const NodeSpec& previous,
                            const std::map<std::string, InvalidChain>& invalidBefore,
                            const std::map<std::string, RevisionRetry>& retriesBefore,
                            Clock::time_point now);

// --- Retries of failed generations ----------------------------------------------------------
struct RetryState {
  int64_t generation = 0;
  std::string specDigest;
  Clock::time_point notBefore;
  std::chrono::seconds backoff{0};
  ApplyFailure failure;
};
// The failure to report instead of trying `chain` again now, if its last attempt failed and is
// not due yet.
std::optional<ApplyFailure> inBackoff(const std::map<std::string, RetryState>& retries,
                                      const ChainDecl& chain, Clock::time_point now);
// The retry states after a pass whose failures are `failures`; `attempted` receives the chains
// whose failure starts a new attempt (to log and count: not every pass of a backoff).
std::map<std::string, RetryState> nextRetries(const std::map<std::string, RetryState>& before,
                                              const std::vector<ChainDecl>& chains,
                                              const std::map<std::string, ApplyFailure>& failures,
                                              Clock::time_point now,
                                              std::vector<std::string>* attempted);

// --- Where chains run -----------------------------------------------------------------------
struct DesiredInstance {
  int ifindex = 0;    // 0 for a pods instance
  std::string ifname; // "" for a pods instance
  dataplane::Hook hook = dataplane::Hook::Xdp;
  std::vector<const ChainDecl*> chains; // in the order they run
  bool create = true;     // false: no instance yet and none of its chains resolved: no root either
  bool placeLast() const; // every chain asks to go last (TCX)
};
struct PodView {
  std::string id; // attachmentKey
  PodRef ref;
};
struct NodePlanInput {
  const std::vector<ChainDecl>* chains = nullptr; // the spec in force
  Interfaces interfaces;
  std::vector<PodView> pods;                                     // the attachments known
  std::vector<std::pair<std::string, std::string>> expectedPods; // (namespace, name), no ADD yet
  PodSelector selectsPod;
  std::set<std::string> running;  // keys of the instances that exist
  std::set<std::string> resolved; // chains whose programs for this pass are known
};
struct NodePlan {
  std::map<std::string, DesiredInstance> instances;                         // by key
  std::map<std::string, std::map<dataplane::Hook, std::string>> podTargets; // pod id -> key
  std::vector<std::string> podsGone; // attachments whose veth is gone (it took the links)
  std::vector<std::string> remove;   // instances nothing wants any more
};
// The chains of `chains` that select the pod, by hook, in the order they run.
std::map<dataplane::Hook, std::vector<const ChainDecl*>>
podChains(const std::vector<ChainDecl>& chains, const PodSelector& selectsPod,
          const std::string& ns, const std::string& name);
NodePlan planNode(const NodePlanInput& in);

// --- One instance ---------------------------------------------------------------------------
using Resolved = std::map<std::string, std::optional<std::vector<dataplane::ProgramSpec>>>;
struct InstancePlan {
  std::vector<std::string> leaving;    // chains no longer on the instance: go in the base step
  bool base = false;                   // the base step (leaving chains go, mapArgs rewritten) runs
  std::vector<const ChainDecl*> apply; // chains that move to a new generation, in order
  std::vector<const ChainDecl*> relabel; // same programs, only the recorded revision changes
};
InstancePlan planInstance(const AppliedChains& applied, bool instanceEmpty,
                          const std::vector<const ChainDecl*>& chains, const Resolved& resolved,
                          ReconcileScope scope);
// What the instance would run with `candidate` applied: every chain's programs in order.
std::vector<dataplane::ProgramSpec> composePrograms(const AppliedChains& candidate,
                                                    const std::vector<const ChainDecl*>& chains);
// Why `candidate` cannot run on one root (the kernel's tail-call limit), if it cannot.
std::optional<std::string> tailCallProblem(const AppliedChains& candidate,
                                           const std::vector<const ChainDecl*>& chains);

} // namespace bpfchain::agent
