#include "dataplane/attachment.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <unistd.h>

#include "dataplane/features.h"
#include "dataplane/program_instance.h"
#include "dataplane/tcx.h"

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

Result<uint32_t> linkProgramId(int linkFd) {
  bpf_link_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(linkFd, &info, &len) != 0)
    return systemError(errno, "link info");
  return info.prog_id;
}

} // namespace

Result<Attachment> Attachment::attach(int programFd, int ifindex, Hook hook,
                                      const std::string& linkPin, const AttachOptions& options) {
  auto programId = programIdOf(programFd);
  if (!programId)
    return std::move(programId).error();

  if (!options.legacy && linksAvailable(hook)) {
    int fd = bpf_link_create(programFd, ifindex, linkAttachType(hook), nullptr);
    if (fd < 0)
      return systemError(errno, "attach " + where(ifindex, hook));
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
    if (bpf_xdp_attach(ifindex, programFd, XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr) != 0)
      return systemError(errno, "attach " + where(ifindex, hook) + " (netlink)");
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
    auto id = linkProgramId(link.get());
    if (!id)
      return std::move(id).error();
    if (*id == programId)
      return std::optional<Attachment>(Attachment(AttachMode::Link, ifindex, hook, linkPin,
                                                  std::move(link), programId, options));
  }

  uint32_t attached = 0;
  if (hook == Hook::Xdp) {
    if (bpf_xdp_query_id(ifindex, 0, &attached) != 0)
      return systemError(errno, "query " + where(ifindex, hook));
  } else {
    bpf_tc_hook h = tcHook(ifindex, hook);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = options.tcHandle, .priority = options.tcPriority);
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

} // namespace bpfchain::dataplane
