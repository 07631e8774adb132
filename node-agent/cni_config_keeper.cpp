#include "node-agent/cni_config_keeper.h"

#include <chrono>
#include <filesystem>
#include <poll.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "system/log.h"

namespace bpfchain::agent {

namespace {
constexpr auto kResync = std::chrono::seconds(30);
constexpr int kPollMs = 200; // how soon stop() is noticed
} // namespace

Result<std::unique_ptr<CniConfigKeeper>> CniConfigKeeper::start(cni::InstallOptions options) {
  std::error_code ec;
  std::filesystem::create_directories(options.confDir, ec);
  if (ec)
    return Error(ec.value(), "--cni-conf-dir " + options.confDir + ": " + ec.message());
  FD inotify(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!inotify)
    return systemError(errno, "inotify_init1");
  if (::inotify_add_watch(inotify.get(), options.confDir.c_str(),
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE) < 0)
    return systemError(errno, "watch --cni-conf-dir " + options.confDir);
  std::unique_ptr<CniConfigKeeper> keeper(
      new CniConfigKeeper(std::move(options), std::move(inotify)));
  keeper->ensure();
  keeper->thread_ = std::thread([k = keeper.get()] { k->run(); });
  return keeper;
}

CniConfigKeeper::CniConfigKeeper(cni::InstallOptions options, FD inotify)
    : options_(std::move(options)), inotify_(std::move(inotify)),
      registry_(std::make_shared<prometheus::Registry>()) {
  gauge_ = &prometheus::BuildGauge()
                .Name("bpfchain_cni_entry_present")
                .Help("1 while bpfchain-cni is in the node's CNI configuration (the agent puts it "
                      "back when the configuration is rewritten without it), else 0.")
                .Register(*registry_)
                .Add({{"conf_dir", options_.confDir}});
}

CniConfigKeeper::~CniConfigKeeper() {
  stop(false);
}

std::weak_ptr<prometheus::Collectable> CniConfigKeeper::collectable() const {
  return registry_;
}

void CniConfigKeeper::ensure() {
  auto report = cni::install(options_);
  bool was = present_.exchange(report.ok());
  gauge_->Set(report.ok() ? 1 : 0);
  if (!report) {
    // A missing primary configuration is normal for a while on a new node: say it once.
    if (report.error().message() != lastProblem_)
      log::warning("bpfchain-cni is not in the CNI configuration",
                   {{"error", report.error().message()}});
    lastProblem_ = report.error().message();
    return;
  }
  lastProblem_.clear();
  if (report->confChanged || !was)
    log::info(report->confChanged ? "bpfchain-cni entry written" : "bpfchain-cni entry present",
              {{"file", report->confFile}, {"pluginInstalled", report->binaryChanged}});
}

void CniConfigKeeper::run() {
  auto next = std::chrono::steady_clock::now() + kResync;
  char buf[4096];
  while (!stopping_) {
    pollfd p{inotify_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, kPollMs);
    bool changed = false;
    if (n > 0)
      while (::read(inotify_.get(), buf, sizeof buf) > 0)
        changed = true;
    if (changed || std::chrono::steady_clock::now() >= next) {
      ensure();
      next = std::chrono::steady_clock::now() + kResync;
    }
  }
}

void CniConfigKeeper::stop(bool removeEntry) {
  if (stopping_.exchange(true))
    return;
  if (thread_.joinable())
    thread_.join();
  if (!removeEntry)
    return;
  auto removed = cni::uninstall(options_);
  gauge_->Set(0);
  present_ = false;
  if (!removed)
    log::error("cannot remove bpfchain-cni from the CNI configuration",
               {{"dir", options_.confDir}, {"error", removed.error().message()}});
  else
    for (const auto& file : removed->confFiles)
      log::info("removed the bpfchain-cni entry", {{"file", file}});
}

} // namespace bpfchain::agent
