#include "harness/dashboards.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <regex>
#include <sstream>
#include <yaml-cpp/yaml.h>

namespace bpfchain::testing {

namespace fs = std::filesystem;

std::string dashboardsDir() {
  return std::string(BPFCHAIN_SOURCE_DIR) + "/dashboards";
}

std::vector<std::string> dashboardFiles() {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dashboardsDir()))
    if (e.path().extension() == ".json")
      files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::string substituteGrafanaVariables(const std::string& expr) {
  std::string out = expr;
  for (const auto& [from, to] : {std::pair{"$__rate_interval", "5m"},
                                 std::pair{"$__interval", "1m"}, std::pair{"$__range", "1h"}})
    for (size_t at; (at = out.find(from)) != std::string::npos;)
      out.replace(at, std::string(from).size(), to);
  static const std::regex variable(R"(\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)");
  return std::regex_replace(out, variable, ".*");
}

Result<std::vector<PromQuery>> dashboardQueries() {
  std::vector<PromQuery> queries;
  for (const auto& file : dashboardFiles()) {
    YAML::Node d;
    try {
      d = YAML::LoadFile(file); // JSON is YAML
    } catch (const std::exception& e) {
      return invalidError(file + ": " + e.what());
    }
    std::string name = fs::path(file).filename().string();
    for (const auto& panel : d["panels"])
      for (const auto& target : panel["targets"])
        queries.push_back({name + ": panel \"" + panel["title"].as<std::string>("") + "\" " +
                               target["refId"].as<std::string>(""),
                           substituteGrafanaVariables(target["expr"].as<std::string>(""))});
  }
  return queries;
}

Result<std::vector<PromQuery>> alertQueries() {
  std::string file = dashboardsDir() + "/alerts/bpfchain.rules.yaml";
  YAML::Node rules;
  try {
    rules = YAML::LoadFile(file);
  } catch (const std::exception& e) {
    return invalidError(file + ": " + e.what());
  }
  std::vector<PromQuery> queries;
  for (const auto& group : rules["groups"])
    for (const auto& rule : group["rules"])
      queries.push_back(
          {"alert " + rule["alert"].as<std::string>(""), rule["expr"].as<std::string>("")});
  return queries;
}

namespace {

// Drops everything from `open` to its matching `close` (not nested: PromQL's label matchers,
// ranges and grouping lists are flat once strings are gone).
std::string dropBetween(const std::string& s, char open, char close) {
  std::string out;
  bool inside = false;
  for (char c : s) {
    if (!inside && c == open) {
      inside = true;
      out += ' ';
    } else if (inside && c == close) {
      inside = false;
    } else if (!inside) {
      out += c;
    }
  }
  return out;
}

} // namespace

std::set<std::string> metricNamesOf(const std::string& expr) {
  // 1. strings (label values, regexes) go: they may hold anything.
  std::string s;
  char quote = 0;
  for (size_t i = 0; i < expr.size(); ++i) {
    char c = expr[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
      s += "\"\"";
      continue;
    }
    s += c;
  }
  // 2. label matchers and range/subquery durations.
  s = dropBetween(dropBetween(s, '{', '}'), '[', ']');
  // 3. label lists of grouping and vector matching.
  static const std::regex grouping(
      R"(\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))");
  s = std::regex_replace(s, grouping, " ");
  static const std::set<std::string> keywords{
      "by",  "without", "on",     "ignoring", "group_left", "group_right", "bool",
      "and", "or",      "unless", "offset",   "inf",        "nan",         "atan2"};
  std::set<std::string> names;
  static const std::regex identifier(R"([A-Za-z_:][A-Za-z0-9_:]*)");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), identifier); it != std::sregex_iterator();
       ++it) {
    size_t end = it->position() + it->length();
    // A number's exponent or hex digits ("1e3", "0x1f") are not names.
    if (it->position() > 0 && std::isdigit(static_cast<unsigned char>(s[it->position() - 1])))
      continue;
    size_t next = s.find_first_not_of(" \t\n", end);
    if (next != std::string::npos && s[next] == '(')
      continue; // a function or an aggregation
    std::string word = it->str();
    std::string lower = word;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    if (!keywords.contains(lower))
      names.insert(word);
  }
  return names;
}

std::set<std::string> exportedMetricNames(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string first, second, name, type;
    words >> first;
    if (first == "#") {
      words >> second >> name >> type;
      if (second != "TYPE")
        continue;
      names.insert(name);
      if (type == "histogram" || type == "summary")
        for (const char* suffix : {"_bucket", "_sum", "_count"})
          names.insert(name + suffix);
    } else if (!first.empty()) {
      names.insert(first.substr(0, first.find('{')));
    }
  }
  return names;
}

} // namespace bpfchain::testing
