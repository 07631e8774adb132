// A chain's typed label selector (node_config.h) as the k8s matcher, for cluster mode. Only
// for code that already speaks Kubernetes (k8s/ headers carry the JSON library).
#pragma once

#include <string>

#include "k8s/label_selector.h"
#include "node-agent/node_config.h"

namespace bpfchain::agent {

inline Result<k8s::LabelSelector> labelSelectorOf(const LabelSelectorDecl& decl,
                                                  const std::string& field) {
  std::vector<k8s::LabelSelector::Requirement> requirements;
  for (const auto& r : decl.matchExpressions)
    requirements.push_back({r.key, r.op, r.values});
  return k8s::LabelSelector::of(decl.matchLabels, std::move(requirements), field);
}

} // namespace bpfchain::agent
