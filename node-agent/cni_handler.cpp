#include "node-agent/cni_handler.h"

#include <chrono>
#include <set>

#include "node-agent/agent_metrics.h"
#include "system/log.h"

namespace bpfchain::agent {

namespace {

v1::Response failed(const std::string& reason, const std::string& message) {
  v1::Response r;
  r.set_ok(false);
  r.set_reason(reason);
  r.set_message(message);
  return r;
}

v1::Response notReady() {
  return failed("NotReady", "the agent has not applied its node config yet");
}

} // namespace

void CniHandler::fillInspection(v1::StatusResponse& status) const {
  for (const HookInspection& h : reconciler_.inspect()) {
    auto* hook = status.add_hooks();
    hook->set_interface(h.interface);
    hook->set_hook(std::string(dataplane::hookName(h.hook)));
    hook->set_pod(h.pod);
    hook->set_attach_mode(h.attachMode);
    hook->set_root_program_id(h.rootProgramId);
    for (const ProgramInspection& p : h.programs) {
      auto* program = hook->add_programs();
      program->set_chain(p.chain);
      program->set_program(p.program);
      program->set_program_id(p.programId);
      program->set_generation(p.generation);
      program->set_has_stats(p.hasStats);
      for (const auto& [verdict, packets] : p.verdicts) {
        auto* count = program->add_verdicts();
        count->set_verdict(verdict);
        count->set_packets(packets);
      }
    }
  }
  for (const ChainStatus& c : reconciler_.status().chains) {
    auto* chain = status.add_chains();
    chain->set_chain(c.name);
    chain->set_generation(c.generation);
    chain->set_running_generation(c.runningGeneration);
    chain->set_phase(c.phase);
    chain->set_reason(c.reason);
    chain->set_message(c.message);
  }
}

template <typename Serve> v1::Response CniHandler::measured(const char* command, Serve serve) {
  auto start = std::chrono::steady_clock::now();
  v1::Response response = serve();
  if (metrics_)
    metrics_->observeCni(
        command, response.ok() ? "" : (response.reason().empty() ? "Unknown" : response.reason()),
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return response;
}

v1::Response CniHandler::attachPod(const v1::AttachPod& request) {
  return measured("ADD", [&] { return attach(request); });
}

v1::Response CniHandler::attach(const v1::AttachPod& request) {
  if (!reconciler_.applied())
    return notReady();
  // Which chains select the pod depends on its labels: without them, attaching nothing would
  // start the pod unprotected. The plugin's failurePolicy decides (as when the agent is down).
  if (auto why = source_.preparePod(request.pod_namespace(), request.pod_name()))
    return failed("PodUnknown", "cannot tell which chains select pod " + request.pod_namespace() +
                                    "/" + request.pod_name() + ": " + *why);
  PodRef ref{request.container_id(), request.pod_namespace(), request.pod_name(),
             request.host_ifname(),  request.host_ifindex(),  request.pod_ifname(),
             request.network()};
  auto attached = reconciler_.attachPod(ref);
  std::string pod = request.pod_namespace() + "/" + request.pod_name();
  if (!attached) {
    log::error("pod not attached", {{"pod", pod},
                                    {"container", request.container_id()},
                                    {"interface", request.host_ifname()},
                                    {"reason", attached.error().reason},
                                    {"message", attached.error().message}});
    return failed(attached.error().reason, attached.error().message);
  }
  std::string chains;
  for (const PodChain& c : *attached)
    chains +=
        (chains.empty() ? "" : ",") + c.chain + "@" + std::string(dataplane::hookName(c.hook));
  log::info("attached pod", {{"pod", pod},
                             {"container", request.container_id()},
                             {"interface", request.host_ifname()},
                             {"chains", chains}});
  changed_();
  v1::Response r;
  r.set_ok(true);
  for (const PodChain& c : *attached) {
    auto* chain = r.add_chains();
    chain->set_chain(c.chain);
    chain->set_hook(std::string(dataplane::hookName(c.hook)));
    chain->set_generation(c.generation);
    chain->set_root_program_id(c.rootProgramId);
    chain->set_interface(c.interface);
  }
  return r;
}

v1::Response CniHandler::detachPod(const v1::DetachPod& request) {
  return measured("DEL", [&] {
    reconciler_.detachPod(PodRef{request.container_id(), request.pod_namespace(),
                                 request.pod_name(), "", 0, request.pod_ifname(),
                                 request.network()});
    log::info("detached pod", {{"pod", request.pod_namespace() + "/" + request.pod_name()},
                               {"container", request.container_id()}});
    changed_();
    v1::Response r;
    r.set_ok(true);
    return r;
  });
}

v1::Response CniHandler::checkPod(const v1::CheckPod& request) {
  return measured("CHECK", [&] { return check(request); });
}

v1::Response CniHandler::check(const v1::CheckPod& request) {
  if (!reconciler_.applied())
    return notReady();
  auto checked = reconciler_.checkPod(PodRef{request.container_id(), request.pod_namespace(),
                                             request.pod_name(), request.host_ifname(), 0,
                                             request.pod_ifname(), request.network()});
  if (!checked)
    return failed(checked.error().reason, checked.error().message);
  v1::Response r;
  r.set_ok(true);
  return r;
}

v1::Response CniHandler::status(const v1::StatusRequest&) {
  return measured("STATUS", [&] {
    v1::Response r;
    bool ready = reconciler_.applied();
    r.set_ok(ready);
    if (!ready) {
      r.set_reason("NotReady");
      r.set_message("the agent has not applied its node config yet");
    }
    r.mutable_status()->set_ready(ready);
    r.mutable_status()->set_agent_version(version_);
    r.mutable_status()->set_node_name(nodeName_);
    fillInspection(*r.mutable_status());
    return r;
  });
}

v1::Response CniHandler::gc(const v1::GcRequest& request) {
  return measured("GC", [&] {
    std::set<std::pair<std::string, std::string>> valid;
    for (const auto& a : request.valid_attachments())
      valid.emplace(a.container_id(), a.pod_ifname());
    v1::Response r;
    r.set_ok(true);
    for (const auto& id : reconciler_.collectPods(request.network(), valid))
      r.add_removed_container_ids(id);
    if (r.removed_container_ids_size() > 0) {
      log::info("collected pods the runtime no longer has",
                {{"network", request.network()}, {"containers", r.removed_container_ids_size()}});
      changed_();
    }
    return r;
  });
}

} // namespace bpfchain::agent
