// A map argument's key or value as a spec wrote it (mapArgs[i].entries[j].key/value), held as
// a typed tree rather than a YAML document: a scalar's text, a map by member name in written
// order, a sequence, or null. Two values are equal when they say the same thing (quoting and
// flow/block style do not count), which is what decides whether a program's mapArgs changed.
// YAML is only the outside form: parsed in (specs, state files) and rendered out (state
// files), each a fresh tree owned by nobody else; the BTF encoder (btf/value.h) reads the
// ArgValue itself.
#pragma once

#include <string>
#include <vector>

#include "system/result.h"

namespace YAML {
class Node;
} // namespace YAML

namespace bpfchain::btf {

struct ArgValue {
  enum class Kind { Null, Scalar, Map, Sequence };
  Kind kind = Kind::Null;
  std::string scalar;             // Kind::Scalar: its text
  std::vector<std::string> names; // Kind::Map: member names, in written order
  std::vector<ArgValue> items;    // Kind::Map: the members' values (as names); Sequence: elements

  static ArgValue text(std::string scalar);
  bool operator==(const ArgValue&) const = default;
};

// `node` as an ArgValue; a map key that is not a scalar is an error naming `field`, as is an
// absent node.
Result<ArgValue> argValueFromYaml(const YAML::Node& node, const std::string& field);
// YAML text (flow or block) as an ArgValue; errors name `field`.
Result<ArgValue> parseArgValue(const std::string& text, const std::string& field);
// A new YAML tree of `value` (shares nothing with any other document).
YAML::Node argValueToYaml(const ArgValue& value);

} // namespace bpfchain::btf
