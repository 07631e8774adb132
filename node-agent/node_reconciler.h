// Makes the data plane of this network namespace run a NodeSpec's host-interface chains, and
// says how that went, chain by chain.
//
// Per (interface, hook) there is one dataplane::Chain, pinned under
// <bpffs>/<netns inode>/<ifindex>/<hook>/, running the programs of every BpfChain that selects
// the interface, in (priority, name) order; program ids are "<chain>/<program>". What each
// instance runs, chain by chain, is recorded in <state>/instances/ so that a restarted agent
// knows the previous generation of every chain (it adopts the pins; nothing is reloaded).
//
// Failure isolation: each chain's new generation is applied on its own, one make-before-break
// step per instance; a chain that fails (package, verifier, map argument, attach) keeps its
// previous generation running there, and the other chains are unaffected. A failed generation
// is retried with backoff (10 s doubling to 5 min), or at once when the spec changes.
#pragma once
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/attachment.h"
#include "dataplane/chain.h"
#include "node-agent/apply_failure.h"
#include "node-agent/node_config.h"
#include "node-agent/program_resolver.h"

namespace bpfchain::agent {

class AgentMetrics;

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
};

struct ChainStatus {
  std::string name;
  int64_t generation = 0; // the generation that phase/reason describe
  std::string phase;      // Applying | Ready | Failed | Removing
  std::string reason;     // machine-readable, "" when Ready
  std::string message;
  std::vector<AttachmentStatus> attachments;
};

struct NodeStatus {
  std::vector<ChainStatus> chains; // in spec order
};

class NodeReconciler {
public:
  // Adopts every instance pinned for this network namespace (nothing is reloaded or detached).
  static Result<std::unique_ptr<NodeReconciler>>
  create(ReconcilerOptions options, ProgramResolver& resolver, AgentMetrics* metrics);
  ~NodeReconciler();

  // Level-triggered: converges on `spec` from whatever runs now. Never throws; every failure is
  // in the returned status.
  NodeStatus reconcile(const NodeSpec& spec);

  // When the next reconcile should run to retry a failure, if any failed.
  std::optional<std::chrono::steady_clock::time_point> nextRetry() const;

  // Detaches and unpins every instance (--detach-on-exit, or a chain-free spec).
  void detachAll();

  // Instances by key "<ifindex>/<hook>", for tests and metrics.
  size_t instanceCount() const { return instances_.size(); }

private:
  struct AppliedChain {
    int64_t generation = 0;
    std::vector<dataplane::ProgramSpec> programs;
    std::vector<std::vector<MonitorMapDecl>> monitors; // per program
  };
  struct Instance {
    std::string key;
    std::string dir;
    int ifindex = 0;
    std::string ifname;
    dataplane::Hook hook = dataplane::Hook::Xdp;
    dataplane::Chain chain;
    std::optional<dataplane::Attachment> attachment;
    std::map<std::string, AppliedChain> applied; // what runs, by BpfChain name
  };
  using Failure = ApplyFailure;
  struct RetryState {
    int64_t generation = 0;
    std::string specDigest;
    std::chrono::steady_clock::time_point notBefore;
    std::chrono::seconds backoff{0};
    Failure failure;
  };

  NodeReconciler(ReconcilerOptions options, ProgramResolver& resolver, AgentMetrics* metrics);
  Result<void> adoptPinned();
  Result<Instance*> instanceFor(int ifindex, const std::string& ifname, dataplane::Hook hook);
  void removeInstance(const std::string& key);
  Result<void> saveState(const Instance& instance) const;
  void loadState(Instance& instance) const;
  void publishMetrics();

  ReconcilerOptions options_;
  ProgramResolver& resolver_;
  AgentMetrics* metrics_;
  uint64_t netnsInode_ = 0;
  std::map<std::string, std::unique_ptr<Instance>> instances_;
  std::map<std::string, RetryState> retries_; // by chain name
};

} // namespace bpfchain::agent
