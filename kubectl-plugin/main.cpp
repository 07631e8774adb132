// kubectl-bpfchain: the kubectl plugin (kubectl finds it on PATH as `kubectl bpfchain`).
//   kubectl bpfchain status [CHAIN] [-o wide]   per chain: generation, READY, status, and its
//                                               nodes grouped by generation, phase and reason
//   kubectl bpfchain nodes [-o wide]            per node: agent version, chains ready/failed
// --kubeconfig FILE, else $KUBECONFIG, ~/.kube/config or the in-cluster config (k8s/config.h).
// Reads BpfChains and BpfNodeConfigs (two list requests); exit 1 on an API error, 2 on usage.
#include <iostream>
#include <string>
#include <vector>

#include "api/resources.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "kubectl-plugin/status_view.h"
#include "system/command_line.h"

namespace {

using bpfchain::k8s::Json;
namespace k8s = bpfchain::k8s;
namespace api = bpfchain::api;
namespace plugin = bpfchain::plugin;

const k8s::Resource& kChains = api::kBpfChains;
const k8s::Resource& kNodeConfigs = api::kBpfNodeConfigs;

constexpr const char* kSynopsis = "kubectl bpfchain status [CHAIN] [-o wide] [--kubeconfig FILE]\n"
                                  "kubectl bpfchain nodes [-o wide] [--kubeconfig FILE]\n";

int64_t int64At(const Json& obj, const char* a, const char* b) {
  if (!obj.has_field(a) || !obj.at(a).has_field(b) || !obj.at(a).at(b).is_number())
    return 0;
  return obj.at(a).at(b).as_number().to_int64();
}

plugin::ChainView chainView(const Json& c) {
  plugin::ChainView v;
  v.name = k8s::nameOf(c);
  v.hook = k8s::stringAt(c, {"spec", "hook"});
  v.generation = k8s::generationOf(c);
  v.observedGeneration = int64At(c, "status", "observedGeneration");
  v.ready = k8s::stringAt(c, {"status", "ready"});
  if (c.has_field("status") && c.at("status").has_field("conditions") &&
      c.at("status").at("conditions").is_array())
    for (const auto& cond : c.at("status").at("conditions").as_array())
      if (k8s::stringAt(cond, {"type"}) == "Ready") {
        v.readyTrue = k8s::stringAt(cond, {"status"}) == "True";
        v.readyReason = k8s::stringAt(cond, {"reason"});
      }
  return v;
}

plugin::NodeView nodeView(const Json& n) {
  plugin::NodeView v;
  v.name = k8s::nameOf(n);
  v.agentVersion = k8s::stringAt(n, {"status", "agent", "version"});
  if (n.has_field("status") && n.at("status").has_field("chains") &&
      n.at("status").at("chains").is_array())
    for (const auto& c : n.at("status").at("chains").as_array())
      v.chains.push_back({k8s::stringAt(c, {"name"}),
                          c.has_field("generation") && c.at("generation").is_number()
                              ? c.at("generation").as_number().to_int64()
                              : 0,
                          k8s::stringAt(c, {"phase"}), k8s::stringAt(c, {"reason"})});
  return v;
}

} // namespace

int main(int argc, char** argv) {
  bpfchain::cli::CommandLine cl("kubectl-bpfchain", kSynopsis);
  CLI::App& app = cl.app();
  app.require_subcommand(1);
  app.fallthrough(); // -o and --kubeconfig after the command too
  std::string kubeconfig, output, chain;
  app.add_option("--kubeconfig", kubeconfig,
                 "the API server (default: $KUBECONFIG, ~/.kube/config, else in-cluster)")
      ->type_name("FILE");
  app.add_option("-o,--output", output, "wide: more columns")
      ->type_name("wide")
      ->check(CLI::Validator(
          [](std::string& v) { return v == "wide" ? std::string() : "only -o wide is supported"; },
          ""));
  CLI::App* status = app.add_subcommand(
      "status", "per chain: generation, READY, status, and its nodes grouped by generation, "
                "phase and reason");
  status->add_option("CHAIN", chain, "one chain (default: every chain)");
  app.add_subcommand("nodes", "per node: agent version, chains ready and failed");
  if (auto exit = cl.parse(argc, argv))
    return *exit;
  bool wide = output == "wide";
  std::string command = status->parsed() ? "status" : "nodes";
  auto config = k8s::defaultConfig(kubeconfig);
  if (!config) {
    std::cerr << "kubectl-bpfchain: " << config.error().message() << "\n";
    return 1;
  }
  auto client = k8s::Client::create(*config);
  if (!client) {
    std::cerr << "kubectl-bpfchain: " << client.error().message() << "\n";
    return 1;
  }
  auto configs = (*client)->list(kNodeConfigs, "");
  if (!configs) {
    std::cerr << "kubectl-bpfchain: list bpfnodeconfigs: " << configs.error().describe() << "\n";
    return 1;
  }
  std::vector<plugin::NodeView> nodes;
  for (const auto& n : configs->items)
    nodes.push_back(nodeView(n));
  if (command == "nodes") {
    std::cout << plugin::renderNodes(nodes, wide);
    return 0;
  }
  std::vector<plugin::ChainView> chains;
  if (!chain.empty()) {
    auto one = (*client)->get(kChains, "", chain);
    if (!one) {
      std::cerr << "kubectl-bpfchain: bpfchain " << chain << ": " << one.error().describe() << "\n";
      return 1;
    }
    chains.push_back(chainView(*one));
  } else {
    auto all = (*client)->list(kChains, "");
    if (!all) {
      std::cerr << "kubectl-bpfchain: list bpfchains: " << all.error().describe() << "\n";
      return 1;
    }
    for (const auto& c : all->items)
      chains.push_back(chainView(c));
  }
  std::cout << plugin::renderStatus(chains, nodes, wide);
  return 0;
}
