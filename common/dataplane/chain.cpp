#include "dataplane/chain.h"

#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sys/stat.h>

#include "dataplane/chain_plan.h"
#include "root.skel.h"

namespace bpfchain::dataplane {
namespace {
namespace fs = std::filesystem;

constexpr size_t kDigestChars = 16;

// Instance directory names: "<escaped id>@<digest>@<serial>". Ids may hold '/' and '.', and
// bpffs refuses names with a '.', so both are %-escaped.
std::string escapeId(const std::string& id) {
  std::string out;
  for (unsigned char c : id) {
    if (std::isalnum(c) || c == '-' || c == '_') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

std::optional<std::string> unescapeId(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned value = 0;
    auto [end, ec] =
        std::from_chars(text.data() + i + 1, text.data() + std::min(i + 3, text.size()), value, 16);
    if (ec != std::errc() || end != text.data() + i + 3)
      return std::nullopt; // not ours: a name this code never wrote
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

struct InstanceName {
  std::string id;
  std::string digest;
  unsigned serial = 0;
};

std::optional<InstanceName> parseInstanceName(const std::string& name) {
  auto dot = name.rfind('@');
  if (dot == std::string::npos || dot == 0)
    return std::nullopt;
  auto at = name.rfind('@', dot - 1);
  if (at == std::string::npos)
    return std::nullopt;
  auto id = unescapeId(name.substr(0, at));
  if (!id)
    return std::nullopt;
  try {
    return InstanceName{*id, name.substr(at + 1, dot - at - 1),
                        static_cast<unsigned>(std::stoul(name.substr(dot + 1)))};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

Result<void> makeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Error(ec.value(), "mkdir " + dir + ": " + ec.message());
  return {};
}

Result<ProgramInstance> loadRoot(const std::string& dir, Hook hook) {
  size_t size = 0;
  const void* image = root__elf_bytes(&size);
  bool xdp = hook == Hook::Xdp;
  ProgramSpec spec{.id = "root",
                   .objectPath = "root.bpf.o (built in)",
                   .entry = xdp ? "root_xdp" : "root_tc",
                   .nextMap = xdp ? "root_xdp_next" : "root_tc_next"};
  return ProgramInstance::loadImage(image, size, spec, hook, dir);
}

} // namespace

Result<Chain> Chain::open(const std::string& dir, Hook hook) {
  if (auto r = makeDirs(dir + "/programs"); !r)
    return std::move(r).error();
  std::string rootDir = dir + "/root";
  auto root = ProgramInstance::adopt(rootDir);
  if (!root) {
    // No root, or one a crash left half-pinned before it was ever attached: start over.
    (void)removePinTree(rootDir);
    root = loadRoot(rootDir, hook);
    if (!root)
      return std::move(root).error().context("load the root program");
  }
  Chain chain(dir, hook, std::move(*root));
  if (auto r = chain.adoptPrograms(); !r)
    return std::move(r).error();
  return chain;
}

Result<void> Chain::adoptPrograms() {
  running_.clear();
  std::map<uint32_t, Running> byProgramId;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ + "/programs", ec)) {
    auto parsed = parseInstanceName(entry.path().filename());
    auto instance = parsed ? ProgramInstance::adopt(entry.path()) : invalidError("bad name");
    if (!instance) {
      (void)removePinTree(entry.path());
      continue;
    }
    serial_ = std::max(serial_, parsed->serial + 1);
    uint32_t id = instance->programId();
    byProgramId.emplace(id, Running{parsed->id, parsed->digest, std::move(*instance)});
  }
  if (ec)
    return Error(ec.value(), "list " + dir_ + "/programs: " + ec.message());

  std::set<uint32_t> onPath;
  auto next = root_.nextProgramId();
  while (next && *next != 0 && !onPath.contains(*next)) {
    auto it = byProgramId.find(*next);
    if (it == byProgramId.end())
      return invalidError("chain " + dir_ + ": program id " + std::to_string(*next) +
                          " is linked but has no pinned instance");
    onPath.insert(*next);
    next = it->second.instance.nextProgramId();
    running_.push_back(std::move(it->second));
    byProgramId.erase(it);
  }
  if (!next)
    return std::move(next).error();
  for (auto& [id, leftover] : byProgramId)
    (void)leftover.instance.unpin(); // loaded by a process that died before linking it
  return {};
}

std::string Chain::newInstanceDir(const std::string& id, const std::string& digest) {
  return dir_ + "/programs/" + escapeId(id) + "@" + digest + "@" + std::to_string(serial_++);
}

// One apply() in progress: the enabled programs, the plan, and the instances loaded for it.
struct Chain::Update {
  std::vector<ProgramSpec> desired;
  std::vector<size_t> position; // in apply()'s `programs`, for errors that name the field
  std::vector<ProgramKey> keys;
  ChainPlan plan;
  std::vector<std::optional<ProgramInstance>> fresh;

  std::string field(size_t j) const {
    return "programs[" + std::to_string(position[j]) + "] (" + desired[j].id + ")";
  }
  ProgramRef ref(size_t j) const { return ProgramRef{position[j], desired[j].id}; }
  // Unpins the instances loaded so far: nothing links to them yet.
  void discardFresh() {
    for (auto& instance : fresh)
      if (instance)
        (void)instance->unpin();
  }
};

Result<ApplyReport> Chain::apply(std::span<const ProgramSpec> programs) {
  auto update = planUpdate(programs);
  if (!update)
    return std::move(update).error();
  ApplyReport report;
  if (auto r = loadNewInstances(*update, report); !r)
    return std::move(r).error();
  if (auto r = setMapArguments(*update); !r)
    return std::move(r).error();
  if (auto r = relink(*update, report); !r)
    return std::move(r).error();
  retireAndAdopt(*update, report);
  return report;
}

// The enabled programs, their keys (id, digest) and the plan from the running chain to them.
Result<Chain::Update> Chain::planUpdate(std::span<const ProgramSpec> programs) const {
  Update u;
  for (size_t i = 0; i < programs.size(); ++i) {
    if (programs[i].enabled) {
      u.desired.push_back(programs[i]);
      u.position.push_back(i);
    }
  }
  std::vector<ProgramKey> runningKeys;
  for (const auto& r : running_)
    runningKeys.push_back({r.id, r.digest});
  for (size_t j = 0; j < u.desired.size(); ++j) {
    auto digest = reloadDigest(u.desired[j]);
    if (!digest)
      return std::move(digest).error().context(u.field(j)).about(u.ref(j));
    u.keys.push_back({u.desired[j].id, digest->substr(0, kDigestChars)});
  }
  auto plan = planChain(runningKeys, u.keys);
  if (!plan)
    return std::move(plan).error();
  u.plan = std::move(*plan);
  u.fresh.resize(u.desired.size());
  return u;
}

// Step 1: load every new instance. Nothing links to them yet: packets cannot see them.
Result<void> Chain::loadNewInstances(Update& u, ApplyReport& report) {
  for (size_t j = 0; j < u.desired.size(); ++j) {
    const PlannedSlot& slot = u.plan.slots[j];
    if (slot.source == SlotSource::Keep)
      continue;
    CarryFrom carry;
    if (slot.runningIndex) {
      carry.running = &running_[*slot.runningIndex].instance;
      carry.clone = slot.source == SlotSource::Clone;
    }
    std::vector<UncarriedMap> uncarried;
    auto instance = ProgramInstance::load(
        u.desired[j], hook_, newInstanceDir(u.keys[j].id, u.keys[j].digest), carry, &uncarried);
    if (!instance) {
      u.discardFresh();
      return std::move(instance).error().context(u.field(j)).about(u.ref(j));
    }
    u.fresh[j] = std::move(*instance);
    ++report.loaded;
    for (auto& m : uncarried)
      report.uncarried.push_back({u.desired[j].id, std::move(m.map), std::move(m.reason)});
  }
  return {};
}

// The instance that runs in slot j after the update: the new one, or the running one kept.
const ProgramInstance& Chain::instanceAt(const Update& u, size_t j) const {
  return u.fresh[j] ? *u.fresh[j] : running_[*u.plan.slots[j].runningIndex].instance;
}

// Step 2: map arguments, new instances first (still invisible), then running ones.
Result<void> Chain::setMapArguments(Update& u) const {
  for (bool runningPass : {false, true}) {
    for (size_t j = 0; j < u.desired.size(); ++j) {
      if (u.fresh[j].has_value() == runningPass)
        continue;
      for (size_t k = 0; k < u.desired[j].mapArgs.size(); ++k) {
        const MapArgSpec& arg = u.desired[j].mapArgs[k];
        std::string argField = u.field(j) + ".mapArgs[" + std::to_string(k) + "]";
        auto fd = instanceAt(u, j).openMap(arg.map);
        auto applied = fd ? btf::applyMapArgs(fd->get(), arg.mode, arg.entries, argField)
                          : Result<void>(invalidError(argField + ": map \"" + arg.map +
                                                      "\": no such map in the program"));
        if (!applied) {
          u.discardFresh();
          return std::move(applied).error().withKind(ErrorKind::MapArgInvalid).about(u.ref(j));
        }
      }
    }
  }
  return {};
}

// Step 3: relink, segment by segment: link the new instances to the successor, then swap the
// segment in with one update of the predecessor's slot.
Result<void> Chain::relink(const Update& u, ApplyReport& report) {
  auto at = [&](size_t j) -> const ProgramInstance& { return instanceAt(u, j); };
  for (const Relink& r : u.plan.relinks) {
    int successor = r.successor ? at(*r.successor).programFd() : -1;
    Result<void> linked;
    for (size_t j = r.begin; linked && j < r.end; ++j) {
      int next = j + 1 < r.end ? at(j + 1).programFd() : successor;
      linked = next >= 0 ? at(j).setNext(next) : at(j).clearNext();
    }
    if (linked) {
      const ProgramInstance& predecessor = r.predecessor ? at(*r.predecessor) : root_;
      int first = r.begin < r.end ? at(r.begin).programFd() : successor;
      linked = first >= 0 ? predecessor.setNext(first) : predecessor.clearNext();
    }
    if (!linked) {
      // A slot update failed (it should not): trust the kernel's view, not the plan.
      (void)adoptPrograms();
      return std::move(linked).error();
    }
    ++report.relinks;
  }
  return {};
}

// Step 4: retire what is no longer linked, and adopt the new order.
void Chain::retireAndAdopt(Update& u, ApplyReport& report) {
  std::vector<Running> next;
  for (size_t j = 0; j < u.desired.size(); ++j) {
    if (u.fresh[j])
      next.push_back({u.keys[j].id, u.keys[j].digest, std::move(*u.fresh[j])});
    else
      next.push_back(std::move(running_[*u.plan.slots[j].runningIndex]));
  }
  for (size_t i : u.plan.retired) {
    (void)running_[i].instance.unpin();
    ++report.retired;
  }
  running_ = std::move(next);
}

std::vector<Chain::Program> Chain::programs() const {
  std::vector<Program> out;
  for (const auto& r : running_)
    out.push_back({r.id, r.digest, r.instance.programId(), r.instance.dir()});
  return out;
}

Result<FD> Chain::openMap(const std::string& programId, const std::string& map) const {
  for (const auto& r : running_)
    if (r.id == programId)
      return r.instance.openMap(map);
  return invalidError("no program \"" + programId + "\" in chain " + dir_);
}

Result<void> Chain::destroy() {
  running_.clear();
  return removePinTree(dir_);
}

} // namespace bpfchain::dataplane
