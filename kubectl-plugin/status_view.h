// What `kubectl bpfchain` prints, as pure functions of the cluster's objects (so tests need no
// cluster). Built to be read at a glance on a 100-node cluster: per chain, nodes are grouped
// by (generation, phase, reason) with a count and the first few names; `wide` lists them all.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bpfchain::plugin {

// A BpfChain as its spec and status say.
struct ChainView {
  std::string name;
  std::string hook;
  int64_t generation = 0;         // metadata.generation
  int64_t observedGeneration = 0; // status.observedGeneration
  std::string ready;              // status.ready, "ready/matched"
  std::string readyReason;        // the Ready condition's reason
  bool readyTrue = false;
};

// One chain in one node's BpfNodeConfig status.
struct NodeChainView {
  std::string chain;
  int64_t generation = 0;
  std::string phase;
  std::string reason;
};

struct NodeView {
  std::string name;
  std::string agentVersion; // "" while the agent has not reported
  std::vector<NodeChainView> chains;
};

// `kubectl bpfchain status [CHAIN]`: every chain of `chains` (already filtered), with its
// nodes grouped; a chain no node reports says so.
std::string renderStatus(const std::vector<ChainView>& chains, const std::vector<NodeView>& nodes,
                         bool wide);
// `kubectl bpfchain nodes`: one line per node: agent version, counts, each chain's phase.
std::string renderNodes(const std::vector<NodeView>& nodes, bool wide);

} // namespace bpfchain::plugin
