#include "node-agent/cni_exit.h"

namespace bpfchain::agent {

namespace {
std::string describe(const ObjectLookup& l) {
  return l.status ? "HTTP " + std::to_string(l.status) + (l.message.empty() ? "" : ": " + l.message)
                  : "no answer" + (l.message.empty() ? "" : ": " + l.message);
}
} // namespace

CniExitDecision decideCniExit(bool uninstallOnExit, const std::string& owner,
                              const std::optional<ObjectLookup>& daemonSet,
                              const std::optional<ObjectLookup>& nameSpace) {
  if (uninstallOnExit)
    return {true, "--cni-uninstall-on-exit"};
  if (!daemonSet)
    return {false, "no --cni-owner to tell an uninstall from a restart"};
  const std::string ds = "DaemonSet " + owner;
  if (daemonSet->status == 404)
    return {true, ds + " is gone (an uninstall)"};
  if (daemonSet->status == 200 && daemonSet->deleting)
    return {true, ds + " is being deleted (an uninstall)"};
  if (daemonSet->status == 401)
    return {true, "the agent's ServiceAccount is refused (401; deleted by an uninstall)"};
  if (daemonSet->status == 403)
    return {true,
            "the agent may no longer read " + ds + " (403; its RBAC deleted by an uninstall)"};
  if (nameSpace && nameSpace->status == 200 && nameSpace->deleting)
    return {true, "the agent's namespace is being deleted (an uninstall)"};
  if (daemonSet->status == 200)
    return {false, ds + " still exists (a restart or an upgrade)"};
  return {false, "cannot tell whether " + ds + " still exists (" + describe(*daemonSet) +
                     "); kept, as for an upgrade"};
}

std::optional<std::pair<std::string, std::string>> splitOwner(const std::string& owner) {
  size_t slash = owner.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == owner.size() ||
      owner.find('/', slash + 1) != std::string::npos)
    return std::nullopt;
  return std::make_pair(owner.substr(0, slash), owner.substr(slash + 1));
}

} // namespace bpfchain::agent
