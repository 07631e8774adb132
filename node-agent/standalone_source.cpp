#include "node-agent/standalone_source.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <malloc.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "system/file.h"
#include "system/log.h"

namespace bpfchain::agent {

Result<std::unique_ptr<StandaloneSource>> StandaloneSource::create(std::string path,
                                                                   std::string statusPath) {
  auto spec = loadNodeSpecFile(path);
  if (!spec)
    return std::move(spec).error();
  return std::unique_ptr<StandaloneSource>(
      new StandaloneSource(std::move(path), std::move(statusPath), std::move(*spec)));
}

StandaloneSource::~StandaloneSource() {
  stop();
}

void StandaloneSource::start(std::function<void()> changed) {
  stopEvent_ = FD(eventfd(0, EFD_CLOEXEC));
  thread_ = std::thread([this, changed = std::move(changed)] { watch(changed); });
}

void StandaloneSource::stop() {
  if (!thread_.joinable())
    return;
  uint64_t one = 1;
  (void)!write(stopEvent_.get(), &one, sizeof(one));
  thread_.join();
}

void StandaloneSource::reload() {
  {
    auto spec = loadNodeSpecFile(path_);
    std::lock_guard lock(mu_);
    if (spec) {
      spec_ = std::move(*spec);
      configError_.clear();
    } else if (configError_ != spec.error().message()) {
      configError_ = spec.error().message();
      log::error("config refused; keeping the previous config", {{"error", configError_}});
    }
  }
  // Parsing takes many small allocations that are free now: give them back to the system.
  malloc_trim(0);
}

void StandaloneSource::watch(const std::function<void()>& changed) {
  namespace fs = std::filesystem;
  FD inotify(inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  fs::path file = fs::absolute(path_);
  std::string dir = file.parent_path().string();
  std::string name = file.filename().string();
  if (!inotify || inotify_add_watch(inotify.get(), dir.c_str(),
                                    IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
    log::warning("cannot watch the config's directory; the config is re-read on every resync only",
                 {{"dir", dir}, {"error", std::strerror(errno)}});
  }
  while (true) {
    pollfd fds[2] = {{stopEvent_.get(), POLLIN, 0}, {inotify.get(), POLLIN, 0}};
    if (poll(fds, inotify ? 2 : 1, 30000) < 0 && errno != EINTR)
      return;
    if (fds[0].revents & POLLIN)
      return;
    bool relevant = !inotify; // without inotify, poll's timeout is the resync
    if (inotify && (fds[1].revents & POLLIN)) {
      alignas(inotify_event) char buffer[4096];
      ssize_t n;
      while ((n = read(inotify.get(), buffer, sizeof(buffer))) > 0) {
        for (char* p = buffer; p < buffer + n;) {
          auto* event = reinterpret_cast<inotify_event*>(p);
          if (event->len > 0 && name == event->name)
            relevant = true;
          p += sizeof(inotify_event) + event->len;
        }
      }
    }
    if (relevant) {
      reload();
      changed();
    }
  }
}

std::optional<NodeSpec> StandaloneSource::current() {
  std::lock_guard lock(mu_);
  return spec_;
}

std::string statusYaml(const NodeStatus& status, const std::string& configError) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!configError.empty())
    out << YAML::Key << "configError" << YAML::Value << configError;
  out << YAML::Key << "chains" << YAML::Value << YAML::BeginSeq;
  for (const auto& c : status.chains) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << c.name;
    out << YAML::Key << "generation" << YAML::Value << c.generation;
    if (c.runningGeneration != 0)
      out << YAML::Key << "runningGeneration" << YAML::Value << c.runningGeneration;
    out << YAML::Key << "phase" << YAML::Value << c.phase;
    if (!c.reason.empty())
      out << YAML::Key << "reason" << YAML::Value << c.reason;
    if (!c.message.empty())
      out << YAML::Key << "message" << YAML::Value << c.message;
    out << YAML::Key << "attachments" << YAML::Value << YAML::BeginSeq;
    for (const auto& a : c.attachments) {
      out << YAML::Flow << YAML::BeginMap;
      out << YAML::Key << "interface" << YAML::Value << a.interface;
      out << YAML::Key << "hook" << YAML::Value << std::string(dataplane::hookName(a.hook));
      if (!a.pod.empty())
        out << YAML::Key << "pod" << YAML::Value << a.pod;
      out << YAML::Key << "programIDs" << YAML::Value << YAML::Flow << a.programIds;
      out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

bool StandaloneSource::report(const NodeStatus& status) {
  std::string text;
  {
    std::lock_guard lock(mu_);
    text = statusYaml(status, configError_);
    if (text == lastStatus_)
      return true;
    lastStatus_ = text;
  }
  for (const auto& c : status.chains) {
    std::vector<log::Field> fields{
        {"chain", c.name}, {"generation", c.generation}, {"phase", c.phase}};
    if (c.runningGeneration != c.generation)
      fields.emplace_back("runningGeneration", c.runningGeneration);
    if (!c.reason.empty()) {
      fields.emplace_back("reason", c.reason);
      fields.emplace_back("message", c.message);
    }
    log::write(log::Level::Info, "chain status", fields);
  }
  return writeFileAtomic(statusPath_, text, {.durable = false}).ok();
}

PodSelector StandaloneSource::podSelector() {
  return [](const ChainDecl& chain, const std::string&, const std::string&) {
    return chain.pods.namespaceSelector.empty() && chain.pods.podSelector.empty();
  };
}

std::optional<std::string> StandaloneSource::notReady() const {
  return std::nullopt;
}

} // namespace bpfchain::agent
