// Hand-written YAML (the standalone config file) as the JSON the API server would hold, so that
// one parser (api/chain_spec.h) reads both. Text-preserving: a plain integer in canonical form
// (42, -7) becomes a number and plain true/false a boolean, whose text is what was written;
// every other scalar, quoted or not (0x10, 1.50, "5", yes), stays a string with its text, and
// the parser reads it as YAML would where the schema wants a number or a boolean. Null (~,
// null, an empty value) is null. Objects keep the members in written order.
#pragma once

#include <string>

#include "k8s/object.h"
#include "system/result.h"

namespace YAML {
class Node;
} // namespace YAML

namespace bpfchain::api {

// Errors (a member name that is not a scalar) name `source` and the path to it.
Result<k8s::Json> jsonFromYaml(const YAML::Node& node, const std::string& source);

} // namespace bpfchain::api
