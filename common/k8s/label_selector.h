// metav1.LabelSelector: matchLabels AND matchExpressions (In, NotIn, Exists, DoesNotExist).
// An empty selector selects everything, as a Deployment's does.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "k8s/object.h"
#include "system/result.h"

namespace bpfchain::k8s {

class LabelSelector {
public:
  struct Requirement {
    std::string key;
    std::string op; // In, NotIn, Exists, DoesNotExist
    std::vector<std::string> values;
  };

  // Parses a selector object; null or absent selects everything. Errors name `field`.
  static Result<LabelSelector> parse(const Json& selector, const std::string& field);
  // One from its parts, judged as parse judges them (operators, values).
  static Result<LabelSelector> of(std::map<std::string, std::string> matchLabels,
                                  std::vector<Requirement> requirements, const std::string& field);

  bool matches(const std::map<std::string, std::string>& labels) const;
  bool empty() const { return matchLabels_.empty() && requirements_.empty(); }

private:
  std::map<std::string, std::string> matchLabels_;
  std::vector<Requirement> requirements_;
};

} // namespace bpfchain::k8s
