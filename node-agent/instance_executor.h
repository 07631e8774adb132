// The data plane side of the agent: the instances of this network namespace, each a
// dataplane::Chain pinned under <bpffs>/<netns inode>/<key>/ ("<ifindex>/<hook>" for a host
// interface, "pods/<hook>/<set digest>" for a pods chain set), with its root's attachment and
// the chains it runs (recorded through the StateStore). It carries out what the planner
// (reconcile_plan.h) decided: adopt or open an instance, move it to its chains' programs one
// make-before-break step per chain, attach its root, remove it. It decides nothing itself: a
// step that fails is reported by chain, and the instance keeps what ran.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/attachment.h"
#include "dataplane/chain.h"
#include "node-agent/reconcile_plan.h"
#include "node-agent/state_store.h"

namespace bpfchain::agent {

struct Instance {
  std::string key;
  std::string dir;
  int ifindex = 0;    // 0 for a pods instance
  std::string ifname; // "" for a pods instance
  dataplane::Hook hook = dataplane::Hook::Xdp;
  dataplane::Chain chain;
  std::optional<dataplane::Attachment> attachment;
  AppliedChains applied;       // what runs, by BpfChain name
  bool stateSaved = false;     // `applied` is what its state file says
  std::vector<uint32_t> ahead; // programs that run before the TCX root, in order
  std::string where() const { return ifname.empty() ? key : ifname; }
};

// What applying chains to an instance did.
struct ApplyOutcome {
  std::map<std::string, ApplyFailure> failures; // the first failure of each chain
  std::map<std::string, double> seconds;        // time spent applying, by chain
  // Maps a new generation did not carry from the running version (they start empty).
  struct Uncarried {
    const ChainDecl* chain = nullptr;
    std::string where;
    std::vector<dataplane::UncarriedState> maps;
  };
  std::vector<Uncarried> uncarried;
};

class InstanceExecutor {
public:
  InstanceExecutor(std::string bpffsRoot, uint64_t netnsInode, const StateStore& store,
                   dataplane::AttachOptions attach);

  // Adopts every instance pinned for this network namespace (nothing is reloaded or detached).
  Result<void> adoptPinned();

  std::map<std::string, std::unique_ptr<Instance>>& all() { return instances_; }
  const std::map<std::string, std::unique_ptr<Instance>>& all() const { return instances_; }
  Instance* find(const std::string& key) const;

  // The instance `key`, opened (and its directory created) when it does not exist yet.
  Result<Instance*> open(const std::string& key, int ifindex, const std::string& ifname,
                         dataplane::Hook hook);
  // Carries out `plan` on `inst` for `chains` (in the order they run), then records what runs.
  void apply(Instance& inst, const std::vector<const ChainDecl*>& chains, const InstancePlan& plan,
             const Resolved& resolved, ApplyOutcome& out);
  // Attaches a host instance's root unless it is attached (adopting a pinned link first).
  Result<void> attachRoot(Instance& inst, bool placeLast);
  // Reads what runs before each TCX root; logs it when it changes.
  void followAhead();
  // Detaches and unpins the instance, and forgets its record.
  void remove(const std::string& key);
  std::string dirOf(const std::string& key) const;

private:
  void applyOne(Instance& inst, const ChainDecl& c, const std::vector<const ChainDecl*>& chains,
                const std::vector<dataplane::ProgramSpec>& programs, ApplyOutcome& out);

  std::string root_; // <bpffs>/<netns inode>
  std::string bpffsRoot_;
  const StateStore& store_;
  dataplane::AttachOptions attach_;
  std::map<std::string, std::unique_ptr<Instance>> instances_;
};

// "2 other programs (id 7, 9) run before this chain, ...": for logs and status.
std::string aheadMessage(const std::vector<uint32_t>& ids);

} // namespace bpfchain::agent
