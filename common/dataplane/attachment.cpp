#include "dataplane/attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <algorithm>
#include <sys/syscall.h>
#include <unistd.h>

#include "dataplane/features.h"
#include "dataplane/libbpf_log.h"
#include "dataplane/program_instance.h"
#include "dataplane/tcx.h"
#include "system/netlink.h"

namespace bpfchain::dataplane {
namespace {

std::string where(int ifindex, Hook hook) {
  return std::string(hookName(hook)) + " of ifindex " + std::to_string(ifindex);
}

bpf_attach_type linkAttachType(Hook hook) {
  switch (hook) {
  case Hook::Xdp:
    return BPF_XDP;
  case Hook::TcIngress:
    return kBpfTcxIngress;
  case Hook::TcEgress:
    return kBpfTcxEgress;
  }
  return BPF_XDP;
}

bool linksAvailable(Hook hook) {
  const KernelFeatures& f = kernelFeatures();
  return hook == Hook::Xdp ? f.xdpLink : f.tcx;
}

bpf_tc_hook tcHook(int ifindex, Hook hook) {
  bpf_tc_hook h{};
  h.sz = sizeof h;
  h.ifindex = ifindex;
  h.attach_point = hook == Hook::TcIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return h;
}

struct LinkTarget {
  uint32_t programId = 0;
  uint32_t ifindex = 0; // 0 once the link was detached (or its interface is gone)
};

Result<LinkTarget> linkTarget(int linkFd) {
  bpf_link_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(linkFd, &info, &len) != 0)
    return systemError(errno, "link info");
  // An XDP link's and a TCX link's info both start with the ifindex (the uapi headers here
  // predate TCX, so its member is read through xdp's).
  return LinkTarget{info.prog_id, info.xdp.ifindex};
}

// The XDP program attached to one interface. libbpf's bpf_xdp_query dumps every link of the
// namespace and picks one: O(links), milliseconds on a node with hundreds of pod veths, and
// the agent asks on every pod ADD. One RTM_GETLINK for the ifindex is O(1).
Result<uint32_t> xdpAttachedId(int ifindex) {
  auto sock = netlink::openRouteSocket(std::chrono::seconds(5));
  if (!sock)
    return std::move(sock).error();
  auto link = netlink::getLink(sock->get(), ifindex);
  if (!link)
    return std::move(link).error();
  // As bpf_xdp_query_id with no mode flag: programs in several modes at once are ambiguous.
  if (link->xdpAttached == XDP_ATTACHED_MULTI)
    return systemError(EINVAL,
                       "ifindex " + std::to_string(ifindex) + " has XDP programs in several modes");
  return link->xdpProgId;
}

// Why an XDP attach found the hook taken: an interface has one XDP program (or link), and
// bpfchain never replaces another tool's.
std::string xdpOwner(int ifindex) {
  auto id = xdpAttachedId(ifindex);
  std::string who = id && *id != 0 ? "XDP program id " + std::to_string(*id) : "an XDP program";
  return "the interface already runs " + who +
         " that bpfchain did not attach; it is not replaced (detach it, or choose a tc hook)";
}

} // namespace

Result<Attachment> Attachment::attach(int programFd, int ifindex, Hook hook,
                                      const std::string& linkPin, const AttachOptions& options) {
  auto programId = programIdOf(programFd);
  if (!programId)
    return std::move(programId).error();

  if (!options.legacy && linksAvailable(hook)) {
    LIBBPF_OPTS(bpf_link_create_opts, opts,
                .flags = hook != Hook::Xdp && !options.tcxLast ? kBpfFBefore : 0);
    int fd = bpf_link_create(programFd, ifindex, linkAttachType(hook), &opts);
    if (fd < 0) {
      int err = errno;
      if (hook == Hook::Xdp && (err == EBUSY || err == EEXIST))
        return systemError(err, "attach " + where(ifindex, hook) + ": " + xdpOwner(ifindex));
      return systemError(err, "attach " + where(ifindex, hook));
    }
    FD link(fd);
    ::unlink(linkPin.c_str()); // a stale pin of a link that no longer exists
    if (bpf_obj_pin(link.get(), linkPin.c_str()) != 0) {
      int err = errno;
      (void)bpf_link_detach(link.get());
      return systemError(err, "pin link " + linkPin);
    }
    return Attachment(AttachMode::Link, ifindex, hook, linkPin, std::move(link), *programId,
                      options);
  }

  if (hook == Hook::Xdp) {
    // Refuses to replace someone else's program: the kernel checks it is still absent.
    if (bpf_xdp_attach(ifindex, programFd, XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) != 0) {
      int err = errno;
      if (err == EBUSY || err == EEXIST)
        return systemError(err,
                           "attach " + where(ifindex, hook) + " (netlink): " + xdpOwner(ifindex));
      return systemError(err, "attach " + where(ifindex, hook) + " (netlink)");
    }
  } else {
    bpf_tc_hook h = tcHook(ifindex, hook);
    if (bpf_tc_hook_create(&h) != 0 && errno != EEXIST)
      return systemError(errno, "create clsact on ifindex " + std::to_string(ifindex));
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = programFd, .flags = BPF_TC_F_REPLACE,
                .handle = options.tcHandle, .priority = options.tcPriority);
    if (bpf_tc_attach(&h, &opts) != 0)
      return systemError(errno, "attach " + where(ifindex, hook) + " (cls_bpf)");
  }
  return Attachment(AttachMode::Legacy, ifindex, hook, linkPin, FD(), *programId, options);
}

Result<std::optional<Attachment>> Attachment::adopt(uint32_t programId, int ifindex, Hook hook,
                                                    const std::string& linkPin,
                                                    const AttachOptions& options) {
  if (int fd = bpf_obj_get(linkPin.c_str()); fd >= 0) {
    FD link(fd);
    auto target = linkTarget(link.get());
    if (!target)
      return std::move(target).error();
    // A pinned link that someone detached still exists, but runs nothing.
    if (target->programId == programId && target->ifindex == static_cast<uint32_t>(ifindex))
      return std::optional<Attachment>(Attachment(AttachMode::Link, ifindex, hook, linkPin,
                                                  std::move(link), programId, options));
  }

  uint32_t attached = 0;
  if (hook == Hook::Xdp) {
    auto id = xdpAttachedId(ifindex);
    if (!id)
      return std::move(id).error().context("query " + where(ifindex, hook));
    attached = *id;
  } else {
    bpf_tc_hook h = tcHook(ifindex, hook);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = options.tcHandle, .priority = options.tcPriority);
    LibbpfLogCapture quiet; // no clsact qdisc is a normal answer, not a warning for the log
    if (bpf_tc_query(&h, &opts) == 0)
      attached = opts.prog_id;
  }
  if (attached != programId)
    return std::optional<Attachment>();
  return std::optional<Attachment>(
      Attachment(AttachMode::Legacy, ifindex, hook, linkPin, FD(), programId, options));
}

Result<void> Attachment::detach() {
  if (mode_ == AttachMode::Link) {
    if (bpf_link_detach(link_.get()) != 0 && errno != ENOLINK)
      return systemError(errno, "detach " + where(ifindex_, hook_));
    ::unlink(linkPin_.c_str());
    link_.reset();
    return {};
  }
  if (hook_ == Hook::Xdp) {
    // Only if our root is still the one attached.
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    auto prog = bpf_prog_get_fd_by_id(programId_);
    if (prog < 0)
      return systemError(errno, "open root program " + std::to_string(programId_));
    FD root(prog);
    opts.old_prog_fd = root.get();
    if (bpf_xdp_attach(ifindex_, -1, XDP_FLAGS_REPLACE, &opts) != 0 && errno != EEXIST)
      return systemError(errno, "detach " + where(ifindex_, hook_) + " (netlink)");
    return {};
  }
  bpf_tc_hook h = tcHook(ifindex_, hook_);
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = options_.tcHandle, .priority = options_.tcPriority);
  if (bpf_tc_detach(&h, &opts) != 0 && errno != ENOENT)
    return systemError(errno, "detach " + where(ifindex_, hook_) + " (cls_bpf)");
  return {};
}

Result<bool> Attachment::attached() const {
  if (mode_ == AttachMode::Link) {
    auto target = linkTarget(link_.get());
    if (!target)
      return std::move(target).error();
    return target->ifindex == static_cast<uint32_t>(ifindex_) && target->programId == programId_;
  }
  uint32_t attached = 0;
  if (hook_ == Hook::Xdp) {
    auto id = xdpAttachedId(ifindex_);
    if (!id)
      return id.error().code() == ENODEV
                 ? Result<bool>(false)
                 : std::move(id).error().context("query " + where(ifindex_, hook_));
    attached = *id;
  } else {
    bpf_tc_hook h = tcHook(ifindex_, hook_);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = options_.tcHandle, .priority = options_.tcPriority);
    LibbpfLogCapture quiet; // no clsact qdisc is a normal answer, not a warning for the log
    if (bpf_tc_query(&h, &opts) == 0)
      attached = opts.prog_id;
  }
  return attached == programId_;
}

Result<std::vector<uint32_t>> Attachment::programsBefore() const {
  if (mode_ != AttachMode::Link || hook_ == Hook::Xdp)
    return std::vector<uint32_t>{};
  std::vector<uint32_t> ids(64);
  TcxQueryAttr attr{};
  attr.targetIfindex = static_cast<__u32>(ifindex_);
  attr.attachType = linkAttachType(hook_);
  attr.progIds = reinterpret_cast<uintptr_t>(ids.data());
  attr.count = static_cast<__u32>(ids.size());
  if (syscall(__NR_bpf, BPF_PROG_QUERY, &attr, sizeof attr) != 0)
    return systemError(errno, "query the programs of " + where(ifindex_, hook_));
  ids.resize(std::min<size_t>(attr.count, ids.size()));
  auto ours = std::find(ids.begin(), ids.end(), programId_);
  ids.erase(ours, ids.end());
  return ids;
}

Result<void> Attachment::replace(int programFd) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(programFd, &info, &len) != 0)
    return systemError(errno, "program info");
  if (mode_ == AttachMode::Link) {
    // One atomic switch: packets see the old program or the new one, never none.
    if (bpf_link_update(link_.get(), programFd, nullptr) != 0)
      return systemError(errno, "replace the program on " + where(ifindex_, hook_));
  } else if (hook_ == Hook::Xdp) {
    LIBBPF_OPTS(bpf_xdp_attach_opts, opts);
    auto prog = bpf_prog_get_fd_by_id(programId_);
    if (prog < 0)
      return systemError(errno, "open root program " + std::to_string(programId_));
    FD old(prog);
    opts.old_prog_fd = old.get();
    if (bpf_xdp_attach(ifindex_, programFd, XDP_FLAGS_REPLACE, &opts) != 0)
      return systemError(errno, "replace the program on " + where(ifindex_, hook_) + " (netlink)");
  } else {
    // cls_bpf: replacing the filter at the same handle and priority is one netlink change.
    bpf_tc_hook h = tcHook(ifindex_, hook_);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = programFd, .flags = BPF_TC_F_REPLACE,
                .handle = options_.tcHandle, .priority = options_.tcPriority);
    if (bpf_tc_attach(&h, &opts) != 0)
      return systemError(errno, "replace the program on " + where(ifindex_, hook_) + " (cls_bpf)");
  }
  programId_ = info.id;
  return {};
}

} // namespace bpfchain::dataplane
