// bpfchain-cni, the CNI protocol side (DESIGN.md section 5; CNI spec 1.0.0 and 1.1.0): a
// chained plugin that hands each pod's host-side interface to the node agent, which attaches
// the pod's chains, and passes prevResult through unchanged. docs/cni.md is the user's page.
#pragma once

#include <array>
#include <chrono>
#include <map>
#include <string>
#include <string_view>

namespace bpfchain::cni {

inline constexpr std::string_view kPluginType = "bpfchain-cni";
// Every version this plugin implements completely; the newest is last.
inline constexpr std::array<std::string_view, 3> kSupportedVersions = {"0.4.0", "1.0.0", "1.1.0"};

// CNI error codes: the spec's (0-99) and this plugin's own (100+).
enum ErrorCode : int {
  kIncompatibleVersion = 1,
  kInvalidEnvironment = 4,
  kDecodingFailure = 6,
  kInvalidNetworkConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50, // STATUS: cannot serve ADD
  kAgentRefused = 100,      // the agent answered and refused (its reason is in `details`)
  kNoHostInterface = 101,   // the pod interface has no host-side veth to attach to
  kInternal = 999,
};

enum class FailurePolicy { Fail, Ignore };

// The plugin's keys of its network configuration (the rest passes through unread).
struct PluginConfig {
  std::string cniVersion;
  std::string name;
  std::string socketPath = "/run/bpfchain/agent.sock";
  FailurePolicy failurePolicy = FailurePolicy::Fail;
  std::string logFile;
  std::chrono::milliseconds timeout{2000};
};

struct Invocation {
  std::map<std::string, std::string, std::less<>> env; // the CNI_* variables that were set
  std::string stdinText;
};

struct Outcome {
  int exitCode = 0;
  std::string stdoutText;
};

// Runs one CNI command. Never throws for bad input: every failure is a CNI error JSON on
// stdout with exit code 1.
Outcome run(const Invocation& invocation);

// The keys of CNI_ARGS ("K1=V1;K2=V2"); malformed pairs are skipped.
std::map<std::string, std::string, std::less<>> parseCniArgs(std::string_view args);

} // namespace bpfchain::cni
