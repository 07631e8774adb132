#include "node-agent/pod_attachments.h"

#include <filesystem>

#include "packages/digest.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;

std::string attachmentKey(const PodRef& ref) {
  std::string identity = ref.containerId;
  identity += '\0';
  identity += ref.network;
  identity += '\0';
  identity += ref.podIfname;
  return ref.containerId.substr(0, 64) + "-" + packages::sha256Hex(identity).substr(0, 16);
}

std::map<dataplane::Hook, std::string> PodRecord::linkKeys() const {
  std::map<dataplane::Hook, std::string> keys;
  for (const auto& [hook, link] : links)
    keys[hook] = link.instanceKey;
  return keys;
}

PodAttachments::PodAttachments(const StateStore& store, std::string pinDir,
                               dataplane::AttachOptions attach)
    : store_(store), pinDir_(std::move(pinDir)), attach_(attach) {}

std::string PodAttachments::pinOf(const PodRecord& pod, dataplane::Hook hook) const {
  return pinDir_ + "/" + attachmentKey(pod.ref) + "-" + std::string(dataplane::hookName(hook));
}

void PodAttachments::load(
    const std::function<const dataplane::Chain*(const std::string& key)>& rootOf) {
  for (auto& stored : store_.loadPods()) {
    PodRecord pod{stored.ref, {}};
    for (const auto& [hook, key] : stored.links) {
      const dataplane::Chain* root = rootOf(key);
      if (root == nullptr)
        continue;
      auto adopted = dataplane::Attachment::adopt(root->rootId(), pod.ref.hostIfindex, hook,
                                                  pinOf(pod, hook), attach_);
      if (adopted && adopted->has_value())
        pod.links[hook] = PodLink{key, std::move(**adopted)};
    }
    pods_[attachmentKey(pod.ref)] = std::move(pod);
  }
}

Result<void> PodAttachments::link(PodRecord& pod, dataplane::Hook hook, const std::string& key,
                                  const dataplane::Chain& root, bool verify) {
  PodLink& link = pod.links[hook];
  if (link.attachment) {
    auto attached = verify ? link.attachment->attached() : Result<bool>(true);
    if (attached && !*attached)
      link.attachment.reset(); // detached behind our back: attach again
    else if (link.instanceKey == key)
      return {};
  }
  std::string where = std::string(dataplane::hookName(hook)) + " on " + pod.ref.hostIfname +
                      " (pod " + pod.ref.ns + "/" + pod.ref.name + ")";
  if (link.attachment) {
    if (auto r = link.attachment->replace(root.rootFd()); !r)
      return std::move(r).error().context(where);
  } else {
    std::error_code ec;
    fs::create_directories(pinDir_, ec);
    auto adopted = dataplane::Attachment::adopt(root.rootId(), pod.ref.hostIfindex, hook,
                                                pinOf(pod, hook), attach_);
    if (adopted && adopted->has_value()) {
      link.attachment = std::move(**adopted);
    } else {
      auto attached = dataplane::Attachment::attach(root.rootFd(), pod.ref.hostIfindex, hook,
                                                    pinOf(pod, hook), attach_);
      if (!attached)
        return std::move(attached).error().context(where);
      link.attachment = std::move(*attached);
    }
  }
  link.instanceKey = key;
  return {};
}

void PodAttachments::unlink(PodRecord& pod, dataplane::Hook hook) {
  auto it = pod.links.find(hook);
  if (it == pod.links.end())
    return;
  if (it->second.attachment)
    (void)it->second.attachment->detach(); // fails only when the veth is gone already
  std::error_code ec;
  fs::remove(pinOf(pod, hook), ec);
  pod.links.erase(it);
}

void PodAttachments::unlinkAll(PodRecord& pod) {
  for (auto hook : {dataplane::Hook::Xdp, dataplane::Hook::TcIngress, dataplane::Hook::TcEgress})
    unlink(pod, hook);
}

void PodAttachments::save(const PodRecord& pod) const {
  store_.savePod(PodRecordFile{pod.ref, pod.linkKeys()});
}

std::map<std::string, PodRecord>::iterator
PodAttachments::remove(std::map<std::string, PodRecord>::iterator it) {
  unlinkAll(it->second);
  store_.forgetPod(it->first);
  return pods_.erase(it);
}

std::map<std::string, PodRecord>::iterator
PodAttachments::forget(std::map<std::string, PodRecord>::iterator it) {
  store_.forgetPod(it->first);
  return pods_.erase(it);
}

} // namespace bpfchain::agent
