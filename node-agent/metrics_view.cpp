#include "node-agent/metrics_view.h"

#include <filesystem>
#include <unistd.h>

#include "node-agent/program_resolver.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;

std::optional<FD> openStatsMap(const dataplane::Chain& chain, const std::string& programId,
                               const std::string& dir) {
  std::error_code ec;
  for (const auto& pin : fs::directory_iterator(dir + "/maps", ec)) {
    std::string name = pin.path().filename().string();
    if (name.size() > 6 && name.ends_with("_stats")) {
      auto fd = chain.openMap(programId, name);
      if (fd && AgentMetrics::isStatsMap(fd->get()))
        return std::move(*fd);
    }
  }
  return std::nullopt;
}

namespace {

// One running program of an instance with what it declared (chain, position in the chain).
struct RunningProgram {
  std::string chain;
  const dataplane::ProgramSpec* spec = nullptr;
  const std::vector<MonitorMapDecl>* monitors = nullptr; // null when none were recorded
  std::string dir;
};

std::vector<RunningProgram> runningPrograms(const Instance& inst) {
  std::map<std::string, std::string> dirs; // running program id -> instance dir
  for (const auto& p : inst.chain.programs())
    dirs[p.id] = p.dir;
  std::vector<RunningProgram> out;
  for (const auto& [chain, applied] : inst.applied)
    for (size_t i = 0; i < applied.programs.size(); ++i)
      if (auto dir = dirs.find(applied.programs[i].id); dir != dirs.end())
        out.push_back({chain, &applied.programs[i],
                       i < applied.monitors.size() ? &applied.monitors[i] : nullptr, dir->second});
  return out;
}

// The monitor map opened, its key encoded and its value's fields read; `error` says why not.
ExportedMonitor bindMonitor(const Instance& inst, const std::string& programId,
                            const MonitorMapDecl& decl) {
  ExportedMonitor m{decl, {}, nullptr, {}, ""};
  auto fd = inst.chain.openMap(programId, decl.map);
  auto key =
      fd ? AgentMetrics::encodeKey(fd->get(), decl.key) : Result<std::vector<uint8_t>>(fd.error());
  auto fields =
      fd ? AgentMetrics::valueFields(fd->get()) : Result<std::vector<ValueField>>(fd.error());
  if (fd && key && fields) {
    m.map = std::make_shared<FD>(std::move(*fd));
    m.key = std::move(*key);
    m.fields = std::move(*fields);
  } else {
    m.error = !key ? key.error().message() : fields.error().message();
  }
  return m;
}

std::string problemLine(const std::string& programId, const ExportedMonitor& m) {
  return "monitorMaps of " + programId + ": map " + m.decl.map + ": " + m.error;
}

} // namespace

std::map<std::string, std::string>
monitorProblems(const std::map<std::string, std::unique_ptr<Instance>>& instances) {
  std::map<std::string, std::string> problems;
  for (const auto& [key, inst] : instances)
    for (const auto& p : runningPrograms(*inst))
      if (p.monitors)
        for (const auto& decl : *p.monitors)
          if (auto m = bindMonitor(*inst, p.spec->id, decl); !m.error.empty())
            problems.try_emplace(p.chain, problemLine(p.spec->id, m) + "; not exported");
  return problems;
}

void MetricsView::publish(const std::map<std::string, std::unique_ptr<Instance>>& instances) {
  std::vector<ExportedAttachment> exported;
  for (const auto& [key, inst] : instances) {
    ExportedAttachment e;
    e.interface = inst->where(); // pods/<hook>/<set> for a pods instance
    e.hook = std::string(dataplane::hookName(inst->hook));
    e.root = std::make_shared<FD>(dup(inst->chain.rootFd()));
    for (const auto& p : runningPrograms(*inst)) {
      ExportedProgram program;
      program.chain = p.chain;
      program.program = p.spec->id.substr(chainKey(p.chain).size() + 1);
      if (auto stats = openStatsMap(inst->chain, p.spec->id, p.dir))
        program.stats = std::make_shared<FD>(std::move(*stats));
      for (const auto& decl : p.monitors ? *p.monitors : std::vector<MonitorMapDecl>{}) {
        ExportedMonitor m = bindMonitor(*inst, p.spec->id, decl);
        // A monitor map that cannot be read does not fail the chain: the log and the error
        // counter say so once.
        if (std::string line = problemLine(p.spec->id, m);
            !m.error.empty() && reported_.insert(line).second) {
          log::warning("monitor map not exported", {{"chain", p.chain}, {"problem", line}});
          metrics_.countError(p.chain, "MonitorMapInvalid");
        }
        program.monitors.push_back(std::move(m));
      }
      e.programs.push_back(std::move(program));
    }
    exported.push_back(std::move(e));
  }
  metrics_.publish(std::move(exported));
}

} // namespace bpfchain::agent
