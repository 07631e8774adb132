// What `bpfchain-agent status` prints, as pure functions of the agent's StatusResponse (so
// tests need no agent): per interface hook, how the root is attached and each program in the
// order it runs, with its chain, kernel id, generation and verdict counts (programs that keep
// chain.h stats); then each chain's phase on the node.
#pragma once

#include <string>

#include "proto/agent.pb.h"

namespace bpfchain::agent {

// A readable table.
std::string renderStatusText(const v1::StatusResponse& status);
// One JSON object with the same content, for machines: agent.proto's fields by their proto3 JSON
// names (lowerCamelCase), every field present, integers as JSON numbers.
std::string renderStatusJson(const v1::StatusResponse& status);

} // namespace bpfchain::agent
