#include "k8s/label_selector.h"

#include <algorithm>

namespace bpfchain::k8s {

Result<LabelSelector> LabelSelector::parse(const Json& selector, const std::string& field) {
  LabelSelector s;
  if (selector.is_null())
    return s;
  if (!selector.is_object())
    return invalidError(field + ": not an object");
  if (selector.has_field("matchLabels")) {
    const Json& labels = selector.at("matchLabels");
    if (!labels.is_object())
      return invalidError(field + ".matchLabels: not an object");
    for (const auto& [key, value] : labels.as_object()) {
      if (!value.is_string())
        return invalidError(field + ".matchLabels." + std::string(key) + ": not a string");
      s.matchLabels_.emplace(key, value.as_string());
    }
  }
  std::vector<Requirement> requirements;
  if (selector.has_field("matchExpressions")) {
    const Json& expressions = selector.at("matchExpressions");
    if (!expressions.is_array())
      return invalidError(field + ".matchExpressions: not a list");
    for (const auto& e : expressions.as_array()) {
      Requirement r{stringAt(e, {"key"}), stringAt(e, {"operator"}), {}};
      if (e.has_field("values") && e.at("values").is_array())
        for (const auto& v : e.at("values").as_array())
          if (v.is_string())
            r.values.push_back(v.as_string());
      requirements.push_back(std::move(r));
    }
  }
  return of(std::move(s.matchLabels_), std::move(requirements), field);
}

Result<LabelSelector> LabelSelector::of(std::map<std::string, std::string> matchLabels,
                                        std::vector<Requirement> requirements,
                                        const std::string& field) {
  for (size_t i = 0; i < requirements.size(); ++i) {
    const Requirement& r = requirements[i];
    std::string at = field + ".matchExpressions[" + std::to_string(i) + "]";
    if (r.op != "In" && r.op != "NotIn" && r.op != "Exists" && r.op != "DoesNotExist")
      return invalidError(at + ".operator: \"" + r.op +
                          "\" is not one of In, NotIn, Exists, DoesNotExist");
    if ((r.op == "In" || r.op == "NotIn") && r.values.empty())
      return invalidError(at + ".values: " + r.op + " needs values");
  }
  LabelSelector s;
  s.matchLabels_ = std::move(matchLabels);
  s.requirements_ = std::move(requirements);
  return s;
}

bool LabelSelector::matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& [key, value] : matchLabels_) {
    auto it = labels.find(key);
    if (it == labels.end() || it->second != value)
      return false;
  }
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    bool present = it != labels.end();
    bool listed =
        present && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    if ((r.op == "In" && !listed) || (r.op == "NotIn" && listed) ||
        (r.op == "Exists" && !present) || (r.op == "DoesNotExist" && present))
      return false;
  }
  return true;
}

} // namespace bpfchain::k8s
