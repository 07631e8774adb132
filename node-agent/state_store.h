// The agent's records under <state-dir>, so that a restarted agent knows what it ran:
//   instances/<netns inode>-<instance key>.yaml  the chains each instance runs, with their
//                                                generation, revision, programs and monitors;
//   pods/<attachment key>.yaml                   each CNI attachment and the instance each of
//                                                its hooks is linked to.
// Not durable (a write does not wait for the disk): the pins they describe do not survive a
// reboot either. The kernel is the truth: a record only says what to adopt, and a record that
// does not parse, or names a program that no longer runs, is dropped, never trusted.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dataplane/hook.h"
#include "dataplane/program_spec.h"
#include "node-agent/node_config.h"
#include "node-agent/pod_ref.h"
#include "system/result.h"

namespace bpfchain::agent {

// What an instance runs of one BpfChain.
struct AppliedChain {
  int64_t generation = 0;
  std::string revision; // ChainDecl::revision
  std::vector<dataplane::ProgramSpec> programs;
  std::vector<std::vector<MonitorMapDecl>> monitors; // per program
  bool operator==(const AppliedChain&) const = default;
};
using AppliedChains = std::map<std::string, AppliedChain>; // by BpfChain name

struct InstanceRecord {
  int ifindex = 0;    // 0 for a pods instance
  std::string ifname; // "" for a pods instance
  dataplane::Hook hook = dataplane::Hook::Xdp;
  AppliedChains chains;
};

struct PodRecordFile {
  PodRef ref;
  std::map<dataplane::Hook, std::string> links; // hook -> pods instance key
};

class StateStore {
public:
  StateStore(std::string stateDir, uint64_t netnsInode);

  // Creates the record directories.
  Result<void> prepare() const;

  // The chains recorded for instance `key` whose enabled programs all run (`running`: the
  // program ids the instance's pins hold); none when there is no readable record.
  AppliedChains loadInstance(const std::string& key, const std::set<std::string>& running) const;
  Result<void> saveInstance(const std::string& key, const InstanceRecord& record) const;
  void removeInstance(const std::string& key) const;

  // Pod records, by attachmentKey(); a record that cannot be written or read is logged.
  void savePod(const PodRecordFile& pod) const;
  void forgetPod(const std::string& attachmentKey) const;
  std::vector<PodRecordFile> loadPods() const;

  std::string instanceFile(const std::string& key) const;

private:
  std::string dir_;
  uint64_t netnsInode_ = 0;
};

} // namespace bpfchain::agent
