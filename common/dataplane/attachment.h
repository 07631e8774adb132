// A chain's root attached to one interface hook in the calling thread's network namespace.
//   xdp:        an XDP link (kernel 5.9+), pinned so that it outlives the agent; the netlink
//               attachment when links are missing or AttachOptions::legacy asks for it.
//   tc-*:       a TCX link (kernel 6.6+), pinned, FIRST among the hook's TCX programs (so a
//               program that returns a final verdict, a CNI's, cannot keep the chain from
//               running) unless AttachOptions::tcxLast; else clsact + a cls_bpf direct-action
//               filter at (tcHandle, tcPriority).
// Netlink and cls_bpf attachments outlive the process by themselves; adopt() recognises all
// four by the root's program id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/hook.h"
#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::dataplane {

enum class AttachMode { Link, Legacy };

struct AttachOptions {
  bool legacy = false;       // netlink XDP / cls_bpf even where links exist
  uint32_t tcHandle = 0xb7c; // cls_bpf filter handle
  uint32_t tcPriority = 1;   // cls_bpf filter priority: lower runs first
  bool tcxLast = false;      // a TCX root goes after the hook's other programs, not first
};

class Attachment {
public:
  static Result<Attachment> attach(int programFd, int ifindex, Hook hook,
                                   const std::string& linkPin, const AttachOptions& options = {});
  // The attachment of program `programId` at (ifindex, hook) that a previous process made,
  // or nullopt when that program is not attached there.
  static Result<std::optional<Attachment>> adopt(uint32_t programId, int ifindex, Hook hook,
                                                 const std::string& linkPin,
                                                 const AttachOptions& options = {});

  Attachment(Attachment&&) = default;
  Attachment& operator=(Attachment&&) = default;

  AttachMode mode() const { return mode_; }
  int ifindex() const { return ifindex_; }
  Hook hook() const { return hook_; }

  // Runs `programFd` (another chain's root) here instead, in one atomic step: a link update,
  // a netlink XDP replace, or a cls_bpf filter replace.
  Result<void> replace(int programFd);
  uint32_t programId() const { return programId_; }
  // Whether the program still runs there (someone may have detached it behind our back).
  Result<bool> attached() const;
  // The ids of the programs that run before ours on its TCX hook, in order (another tool may
  // have put one first since, or the chain asked to go last); empty for XDP and cls_bpf.
  Result<std::vector<uint32_t>> programsBefore() const;
  // Detaches, and removes the link pin. Traffic then bypasses the chain.
  Result<void> detach();

private:
  Attachment(AttachMode mode, int ifindex, Hook hook, std::string linkPin, FD link,
             uint32_t programId, AttachOptions options)
      : mode_(mode), ifindex_(ifindex), hook_(hook), linkPin_(std::move(linkPin)),
        link_(std::move(link)), programId_(programId), options_(options) {}
  AttachMode mode_;
  int ifindex_;
  Hook hook_;
  std::string linkPin_;
  FD link_; // Link mode only
  uint32_t programId_;
  AttachOptions options_;
};

} // namespace bpfchain::dataplane
