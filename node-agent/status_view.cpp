#include "node-agent/status_view.h"

#include "cni/json.h"
#include "system/text_table.h"

namespace bpfchain::agent {
namespace {

namespace json = cni::json;

std::string verdictText(const v1::ProgramStatus& p) {
  if (!p.has_stats())
    return "-";
  std::string out;
  for (const auto& v : p.verdicts())
    out += (out.empty() ? "" : " ") + v.verdict() + "=" + std::to_string(v.packets());
  return out;
}

json::Value number(int64_t n) {
  return json::Value::number(std::to_string(n));
}
json::Value unsignedNumber(uint64_t n) {
  return json::Value::number(std::to_string(n));
}

} // namespace

std::string renderStatusText(const v1::StatusResponse& status) {
  std::string out = "node " + (status.node_name().empty() ? "-" : status.node_name()) + "  agent " +
                    status.agent_version() + "  " +
                    (status.ready() ? "ready" : "not ready (no node config applied yet)") + "\n";
  out += "\n";
  if (status.hooks().empty())
    out += "nothing attached\n";
  for (const auto& h : status.hooks()) {
    out += h.interface() + " " + h.hook();
    if (!h.pod().empty())
      out += " (pod " + h.pod() + ")";
    out += ": " + h.attach_mode() + ", root id " + std::to_string(h.root_program_id()) + "\n";
    std::vector<std::vector<std::string>> rows = {
        {"#", "CHAIN", "PROGRAM", "ID", "GENERATION", "VERDICTS"}};
    int position = 0;
    for (const auto& p : h.programs())
      rows.push_back({std::to_string(++position), p.chain().empty() ? "-" : p.chain(), p.program(),
                      std::to_string(p.program_id()),
                      p.generation() == 0 ? "-" : std::to_string(p.generation()), verdictText(p)});
    if (h.programs().empty())
      out += "  no programs (the root passes every packet on)\n";
    else
      out += textTable(rows, "  ");
  }
  if (!status.chains().empty()) {
    out += "\n";
    std::vector<std::vector<std::string>> rows = {
        {"CHAIN", "GENERATION", "RUNNING", "PHASE", "REASON", "MESSAGE"}};
    for (const auto& c : status.chains())
      rows.push_back({c.chain(), std::to_string(c.generation()),
                      c.running_generation() == 0 ? "-" : std::to_string(c.running_generation()),
                      c.phase(), c.reason(), c.message()});
    out += textTable(rows);
  }
  return out;
}

std::string renderStatusJson(const v1::StatusResponse& status) {
  json::Value root = json::Value::object();
  root.set("nodeName", json::Value::string(status.node_name()));
  root.set("agentVersion", json::Value::string(status.agent_version()));
  root.set("ready", json::Value::boolean(status.ready()));
  json::Value hooks = json::Value::array();
  for (const auto& h : status.hooks()) {
    json::Value hook = json::Value::object();
    hook.set("interface", json::Value::string(h.interface()));
    hook.set("hook", json::Value::string(h.hook()));
    hook.set("pod", json::Value::string(h.pod()));
    hook.set("attachMode", json::Value::string(h.attach_mode()));
    hook.set("rootProgramId", unsignedNumber(h.root_program_id()));
    json::Value programs = json::Value::array();
    for (const auto& p : h.programs()) {
      json::Value program = json::Value::object();
      program.set("chain", json::Value::string(p.chain()));
      program.set("program", json::Value::string(p.program()));
      program.set("programId", unsignedNumber(p.program_id()));
      program.set("generation", number(p.generation()));
      program.set("hasStats", json::Value::boolean(p.has_stats()));
      json::Value verdicts = json::Value::array();
      for (const auto& v : p.verdicts()) {
        json::Value verdict = json::Value::object();
        verdict.set("verdict", json::Value::string(v.verdict()));
        verdict.set("packets", unsignedNumber(v.packets()));
        verdicts.items().push_back(std::move(verdict));
      }
      program.set("verdicts", std::move(verdicts));
      programs.items().push_back(std::move(program));
    }
    hook.set("programs", std::move(programs));
    hooks.items().push_back(std::move(hook));
  }
  root.set("hooks", std::move(hooks));
  json::Value chains = json::Value::array();
  for (const auto& c : status.chains()) {
    json::Value chain = json::Value::object();
    chain.set("chain", json::Value::string(c.chain()));
    chain.set("generation", number(c.generation()));
    chain.set("runningGeneration", number(c.running_generation()));
    chain.set("phase", json::Value::string(c.phase()));
    chain.set("reason", json::Value::string(c.reason()));
    chain.set("message", json::Value::string(c.message()));
    chains.items().push_back(std::move(chain));
  }
  root.set("chains", std::move(chains));
  return json::serialize(root, 2) + "\n";
}

} // namespace bpfchain::agent
