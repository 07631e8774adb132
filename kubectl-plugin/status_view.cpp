#include "kubectl-plugin/status_view.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <tuple>

#include "system/text_table.h"

namespace bpfchain::plugin {
namespace {

constexpr size_t kNamesShown = 3;

std::string names(const std::vector<std::string>& all, bool wide) {
  std::string out;
  size_t shown = wide ? all.size() : std::min(all.size(), kNamesShown);
  for (size_t i = 0; i < shown; ++i)
    out += (i ? ", " : "") + all[i];
  if (shown < all.size())
    out += ", +" + std::to_string(all.size() - shown) + " more";
  return out;
}

std::string chainStatus(const ChainView& c) {
  if (c.observedGeneration != c.generation)
    return "Pending";
  if (c.readyTrue)
    return "Ready";
  return c.readyReason.empty() ? "NotReady" : c.readyReason;
}

} // namespace

std::string renderStatus(const std::vector<ChainView>& chains, const std::vector<NodeView>& nodes,
                         bool wide) {
  if (chains.empty())
    return "No BpfChains found.\n";
  std::string out;
  for (size_t n = 0; n < chains.size(); ++n) {
    const ChainView& c = chains[n];
    if (n)
      out += "\n";
    out += textTable({{"CHAIN", "HOOK", "GENERATION", "READY", "STATUS"},
                      {c.name, c.hook, std::to_string(c.generation), c.ready, chainStatus(c)}},
                     "");
    // (generation, phase, reason) -> node names, failures first, then the newest generation.
    using Key = std::tuple<int, int64_t, std::string, std::string>;
    std::map<Key, std::vector<std::string>> groups;
    for (const auto& node : nodes)
      for (const auto& nc : node.chains)
        if (nc.chain == c.name)
          groups[{nc.phase == "Failed" ? 0 : 1, -nc.generation, nc.phase, nc.reason}].push_back(
              node.name);
    if (groups.empty()) {
      out += "  no node runs it\n";
      continue;
    }
    std::vector<std::vector<std::string>> rows{{"GENERATION", "PHASE", "REASON", "NODES", ""}};
    for (auto& [key, members] : groups) {
      std::sort(members.begin(), members.end());
      rows.push_back({std::to_string(-std::get<1>(key)), std::get<2>(key), std::get<3>(key),
                      std::to_string(members.size()), names(members, wide)});
    }
    out += textTable(rows, "  ");
  }
  return out;
}

std::string renderNodes(const std::vector<NodeView>& nodes, bool wide) {
  if (nodes.empty())
    return "No BpfNodeConfigs found.\n";
  std::vector<std::vector<std::string>> rows{
      {"NODE", "AGENT", "CHAINS", "READY", "FAILED", "RUNNING"}};
  for (const auto& node : nodes) {
    size_t ready = 0, failed = 0;
    std::vector<std::string> running;
    for (const auto& c : node.chains) {
      ready += c.phase == "Ready";
      failed += c.phase == "Failed";
      std::string item = c.chain + "@" + std::to_string(c.generation);
      if (c.phase != "Ready")
        item += " " + c.phase + (c.reason.empty() ? "" : "(" + c.reason + ")");
      running.push_back(item);
    }
    rows.push_back({node.name, node.agentVersion.empty() ? "<none>" : node.agentVersion,
                    std::to_string(node.chains.size()), std::to_string(ready),
                    std::to_string(failed), names(running, wide)});
  }
  return textTable(rows, "");
}

} // namespace bpfchain::plugin
