// The CNI attachments of this network namespace: each pod veth's links to the root of the pods
// instance (chain set) it runs, one per hook, pinned as <pinDir>/<attachment key>-<hook>, and
// recorded through the StateStore. Linking an attached veth to another instance replaces its
// program in one atomic step (Attachment::replace); nothing here decides which instance a pod
// should run: that is the planner's (reconcile_plan.h).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "dataplane/attachment.h"
#include "dataplane/chain.h"
#include "node-agent/pod_ref.h"
#include "node-agent/state_store.h"

namespace bpfchain::agent {

struct PodLink {
  std::string instanceKey;
  std::optional<dataplane::Attachment> attachment;
};

struct PodRecord {
  PodRef ref;
  std::map<dataplane::Hook, PodLink> links;
  std::map<dataplane::Hook, std::string> linkKeys() const; // hook -> instance key
};

class PodAttachments {
public:
  PodAttachments(const StateStore& store, std::string pinDir, dataplane::AttachOptions attach);

  // Adopts the recorded attachments whose links still run the root `rootOf` gives for their
  // instance key (nullptr: no such instance).
  void load(const std::function<const dataplane::Chain*(const std::string& key)>& rootOf);

  std::map<std::string, PodRecord>& all() { return pods_; } // by attachmentKey()
  const std::map<std::string, PodRecord>& all() const { return pods_; }

  // Points the pod's veth at `root` (instance `key`) for `hook`: attach, or replace atomically.
  // `verify`: also check that an existing link still runs (a syscall per pod).
  Result<void> link(PodRecord& pod, dataplane::Hook hook, const std::string& key,
                    const dataplane::Chain& root, bool verify);
  void unlink(PodRecord& pod, dataplane::Hook hook);
  void unlinkAll(PodRecord& pod);
  void save(const PodRecord& pod) const;
  // Unlinks, forgets and erases the attachment; returns the next one.
  std::map<std::string, PodRecord>::iterator remove(std::map<std::string, PodRecord>::iterator it);
  // Forgets the record of an attachment whose veth is gone (its links went with it).
  std::map<std::string, PodRecord>::iterator forget(std::map<std::string, PodRecord>::iterator it);

private:
  std::string pinOf(const PodRecord& pod, dataplane::Hook hook) const;

  const StateStore& store_;
  std::string pinDir_;
  dataplane::AttachOptions attach_;
  std::map<std::string, PodRecord> pods_;
};

} // namespace bpfchain::agent
