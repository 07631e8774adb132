#include "node-agent/instance_executor.h"

#include <algorithm>
#include <filesystem>

#include "node-agent/program_resolver.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace fs = std::filesystem;

namespace {

// The data plane counts programs across the whole instance (every chain on the interface);
// users count them within their BpfChain: "programs[4] (web/filter)" becomes
// "programs[1] (web/filter)" when filter is web's second program. The error says which
// program it is about (ProgramRef); its message starts with that program's field.
std::string chainLocalIndexes(const Error& error, const std::vector<const ChainDecl*>& chains) {
  const std::string& message = error.message();
  const auto& program = error.program();
  if (!program)
    return message;
  std::string field = "programs[" + std::to_string(program->index) + "] (" + program->id + ")";
  size_t slash = program->id.find('/');
  if (message.rfind(field, 0) != 0 || slash == std::string::npos)
    return message;
  std::string key = program->id.substr(0, slash), name = program->id.substr(slash + 1);
  for (const ChainDecl* c : chains) {
    if (chainKey(c->name) != key)
      continue;
    for (size_t i = 0; i < c->programs.size(); ++i)
      if (c->programs[i].name == name)
        return "programs[" + std::to_string(i) + "] (" + c->name + "/" + name + ")" +
               message.substr(field.size());
  }
  return message;
}

ApplyFailure failureOf(const Error& error, const std::string& where,
                       const std::vector<const ChainDecl*>& chains) {
  ApplyFailure f = classifyApplyFailure(error, where);
  std::string local = chainLocalIndexes(error, chains);
  f.message = where.empty() ? local : where + ": " + local;
  return f;
}

} // namespace

std::string aheadMessage(const std::vector<uint32_t>& ids) {
  std::string list;
  for (uint32_t id : ids)
    list += (list.empty() ? "" : ", ") + std::to_string(id);
  return std::to_string(ids.size()) + " other program" + (ids.size() == 1 ? "" : "s") + " (id " +
         list + ") run before this chain, and may end a packet before it runs";
}

InstanceExecutor::InstanceExecutor(std::string bpffsRoot, uint64_t netnsInode,
                                   const StateStore& store, dataplane::AttachOptions attach)
    : root_(bpffsRoot + "/" + std::to_string(netnsInode)), bpffsRoot_(std::move(bpffsRoot)),
      store_(store), attach_(attach) {}

std::string InstanceExecutor::dirOf(const std::string& key) const {
  return root_ + "/" + key;
}

Instance* InstanceExecutor::find(const std::string& key) const {
  auto it = instances_.find(key);
  return it == instances_.end() ? nullptr : it->second.get();
}

Result<void> InstanceExecutor::adoptPinned() {
  std::error_code ec;
  if (!fs::exists(root_, ec))
    return {};
  auto interfaces = listInterfaces();
  auto adopt = [&](const fs::path& dir, const std::string& key, int ifindex,
                   dataplane::Hook hook) -> Result<void> {
    std::string ifname;
    for (const auto& [name, index] : interfaces)
      if (index == ifindex)
        ifname = name;
    auto chain = dataplane::Chain::open(dir.string(), hook);
    if (!chain)
      return std::move(chain).error().context("adopt " + dir.string());
    auto instance = std::make_unique<Instance>(
        Instance{key, dir.string(), ifindex, ifname, hook, std::move(*chain), {}, {}});
    if (!ifname.empty()) {
      auto attachment = dataplane::Attachment::adopt(instance->chain.rootId(), ifindex, hook,
                                                     instance->dir + "/link", attach_);
      if (attachment && attachment->has_value())
        instance->attachment = std::move(**attachment);
    }
    std::set<std::string> running;
    for (const auto& p : instance->chain.programs())
      running.insert(p.id);
    instance->applied = store_.loadInstance(key, running);
    log::info("adopted pinned chains", {{"interface", instance->where()},
                                        {"hook", dataplane::hookName(hook)},
                                        {"rootProgramId", instance->chain.rootId()},
                                        {"chains", instance->applied.size()},
                                        {"attached", instance->attachment.has_value()}});
    instances_[key] = std::move(instance);
    return {};
  };
  for (const auto& top : fs::directory_iterator(root_, ec)) {
    std::string first = top.path().filename().string();
    bool pods = first == "pods";
    int ifindex = std::atoi(first.c_str());
    if (!pods && ifindex <= 0)
      continue; // pod-links/
    for (const auto& hookdir : fs::directory_iterator(top.path(), ec)) {
      auto hook = dataplane::parseHook(hookdir.path().filename().string());
      if (!hook)
        continue;
      if (!pods) {
        if (auto r = adopt(hookdir.path(), instanceKey(ifindex, *hook), ifindex, *hook); !r)
          return r;
        continue;
      }
      for (const auto& setdir : fs::directory_iterator(hookdir.path(), ec)) {
        std::string key = "pods/" + std::string(dataplane::hookName(*hook)) + "/" +
                          setdir.path().filename().string();
        if (auto r = adopt(setdir.path(), key, 0, *hook); !r)
          return r;
      }
    }
  }
  return {};
}

Result<Instance*> InstanceExecutor::open(const std::string& key, int ifindex,
                                         const std::string& ifname, dataplane::Hook hook) {
  if (auto it = instances_.find(key); it != instances_.end()) {
    it->second->ifname = ifname;
    return it->second.get();
  }
  std::string dir = dirOf(key);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Error(ec.value(), "create " + dir + ": " + ec.message());
  auto chain = dataplane::Chain::open(dir, hook);
  if (!chain)
    return std::move(chain).error();
  auto instance = std::make_unique<Instance>(
      Instance{key, dir, ifindex, ifname, hook, std::move(*chain), {}, {}});
  Instance* raw = instance.get();
  instances_[key] = std::move(instance);
  return raw;
}

void InstanceExecutor::apply(Instance& inst, const std::vector<const ChainDecl*>& chains,
                             const InstancePlan& plan, const Resolved& resolved,
                             ApplyOutcome& out) {
  // Chains that left this instance go first (one step), then each chain moves on its own.
  for (const auto& name : plan.leaving)
    inst.applied.erase(name);
  if (!plan.leaving.empty())
    inst.stateSaved = false;
  if (plan.base)
    if (auto base = inst.chain.apply(composePrograms(inst.applied, chains)); !base)
      for (const ChainDecl* c : chains)
        out.failures.try_emplace(c->name, failureOf(base.error(), inst.where(), chains));
  for (const ChainDecl* c : plan.relabel) {
    inst.applied[c->name].revision = c->revision;
    inst.stateSaved = false;
  }
  for (const ChainDecl* c : plan.apply)
    applyOne(inst, *c, chains, *resolved.at(c->name), out);
  // Rendering the state is most of a pass's CPU when nothing changed: write it only on change.
  if (inst.stateSaved)
    return;
  if (auto saved =
          store_.saveInstance(inst.key, {inst.ifindex, inst.ifname, inst.hook, inst.applied});
      !saved)
    for (const ChainDecl* c : chains)
      out.failures.try_emplace(c->name, ApplyFailure{"StateWriteFailed", saved.error().message()});
  else
    inst.stateSaved = true;
}

void InstanceExecutor::applyOne(Instance& inst, const ChainDecl& c,
                                const std::vector<const ChainDecl*>& chains,
                                const std::vector<dataplane::ProgramSpec>& programs,
                                ApplyOutcome& out) {
  auto candidate = inst.applied;
  AppliedChain applied{c.generation, c.revision, programs, {}};
  for (const auto& p : c.programs)
    applied.monitors.push_back(p.monitorMaps);
  candidate[c.name] = std::move(applied);
  // One root runs every chain of the instance: a generation that would take the instance past
  // the kernel's tail-call limit is refused (its previous generation keeps running).
  if (auto overflow = tailCallProblem(candidate, chains)) {
    out.failures.try_emplace(c.name, ApplyFailure{"TailCallLimitExceeded",
                                                  inst.where() + " " +
                                                      std::string(dataplane::hookName(inst.hook)) +
                                                      ": " + *overflow});
    return;
  }
  auto start = Clock::now();
  auto result = inst.chain.apply(composePrograms(candidate, chains));
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  out.seconds[c.name] += seconds;
  if (!result) {
    out.failures.try_emplace(c.name, failureOf(result.error(), inst.where(), chains));
    return;
  }
  log::info("applied chain", {{"chain", c.name},
                              {"generation", c.generation},
                              {"interface", inst.where()},
                              {"hook", dataplane::hookName(inst.hook)},
                              {"seconds", seconds}});
  inst.applied = std::move(candidate);
  inst.stateSaved = false;
  out.uncarried.push_back({&c, inst.where(), result->uncarried});
}

Result<void> InstanceExecutor::attachRoot(Instance& inst, bool placeLast) {
  if (inst.attachment) {
    auto attached = inst.attachment->attached();
    if (!attached || *attached)
      return {};
    inst.attachment.reset(); // detached behind our back: attach again
  }
  auto adopted = dataplane::Attachment::adopt(inst.chain.rootId(), inst.ifindex, inst.hook,
                                              inst.dir + "/link", attach_);
  if (adopted && adopted->has_value()) {
    inst.attachment = std::move(**adopted);
    return {};
  }
  // A TCX root goes first among the hook's programs, unless every chain there asks for last.
  dataplane::AttachOptions options = attach_;
  options.tcxLast = placeLast;
  auto attached = dataplane::Attachment::attach(inst.chain.rootFd(), inst.ifindex, inst.hook,
                                                inst.dir + "/link", options);
  if (!attached)
    return std::move(attached).error();
  inst.attachment = std::move(*attached);
  log::info("attached chain root", {{"interface", inst.ifname},
                                    {"hook", dataplane::hookName(inst.hook)},
                                    {"rootProgramId", inst.chain.rootId()}});
  return {};
}

void InstanceExecutor::followAhead() {
  for (auto& [key, inst] : instances_) {
    if (!inst->attachment || inst->ifindex == 0)
      continue;
    auto ahead = inst->attachment->programsBefore();
    if (!ahead || *ahead == inst->ahead)
      continue;
    inst->ahead = std::move(*ahead);
    if (!inst->ahead.empty())
      log::warning("other programs run before the chain root",
                   {{"interface", inst->ifname},
                    {"hook", dataplane::hookName(inst->hook)},
                    {"detail", aheadMessage(inst->ahead)}});
  }
}

void InstanceExecutor::remove(const std::string& key) {
  auto it = instances_.find(key);
  if (it == instances_.end())
    return;
  Instance& instance = *it->second;
  if (instance.attachment) {
    (void)instance.attachment->detach();
  } else if (!isPodKey(key) && !instance.ifname.empty()) {
    // Adopted pins whose attachment was not recognised: detach whatever runs our root.
    auto adopted = dataplane::Attachment::adopt(instance.chain.rootId(), instance.ifindex,
                                                instance.hook, instance.dir + "/link", attach_);
    if (adopted && adopted->has_value())
      (void)(*adopted)->detach();
  }
  log::info("root detached and unpinned: no chain runs there any more",
            {{"interface", instance.where()}, {"hook", dataplane::hookName(instance.hook)}});
  std::error_code ec;
  fs::remove(instance.dir + "/link", ec);
  (void)instance.chain.destroy();
  // The directory and its parents, once empty, up to the bpffs root.
  for (fs::path dir = instance.dir; dir.string().size() > bpffsRoot_.size();
       dir = dir.parent_path())
    fs::remove(dir, ec);
  store_.removeInstance(instance.key);
  instances_.erase(it);
}

} // namespace bpfchain::agent
