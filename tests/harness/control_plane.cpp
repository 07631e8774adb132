#include "harness/control_plane.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace bpfchain::testing {
namespace {

std::string clusterScript() {
  return std::string(BPFCHAIN_SOURCE_DIR) + "/scripts/local-cluster.sh";
}

std::string trimmed(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
    text.pop_back();
  return text;
}

} // namespace

std::unique_ptr<ControlPlane> ControlPlaneEnvironment::instance_;

Result<ControlPlane> ControlPlane::start() {
  auto up = checkCommand({clusterScript(), "up", "--owner-pid", std::to_string(::getpid())});
  if (!up)
    return std::move(up).error().context("start control plane");
  std::string kubeconfig = trimmed(up->out);
  return ControlPlane(std::filesystem::path(kubeconfig).parent_path().string(), kubeconfig);
}

ControlPlane::~ControlPlane() {
  if (!dir_.empty())
    (void)runCommand({clusterScript(), "down", "--dir", dir_});
}

bool isTransportFailure(const std::string& kubectlStderr) {
  // kubectl's (Go's net/http's) words for a request without an answer. An answer from the
  // API server (NotFound, Invalid, Conflict, ...) never matches: its text is the server's.
  for (const char* words :
       {"http2: client connection lost", "connection refused", "connection reset by peer",
        "broken pipe", "unexpected EOF", ": EOF", "i/o timeout", "TLS handshake timeout",
        "http2: server sent GOAWAY", "Client.Timeout exceeded", "use of closed network connection"})
    if (kubectlStderr.find(words) != std::string::npos)
      return true;
  return false;
}

Result<CommandOutput> ControlPlane::kubectlOutput(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"kubectl", "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  constexpr int kAttempts = 5;
  auto backoff = std::chrono::milliseconds(500);
  for (int attempt = 1;; ++attempt) {
    auto result = runCommand(argv);
    if (!result || result->exitCode == 0 || attempt == kAttempts ||
        !isTransportFailure(result->err))
      return result;
    std::cerr << describeCommand(argv) << ": no answer (attempt " << attempt << " of " << kAttempts
              << "), retrying: " << result->err;
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

Result<CommandOutput> ControlPlane::kubectl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"kubectl", "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  return checkExit(argv, kubectlOutput(args));
}

Result<int64_t> ControlPlane::compactEtcd() const {
  auto out = checkCommand({clusterScript(), "compact", "--dir", dir_});
  if (!out)
    return std::move(out).error().context("compact etcd");
  std::string revision = trimmed(out->out);
  char* end = nullptr;
  long long value = std::strtoll(revision.c_str(), &end, 10);
  if (revision.empty() || *end != '\0')
    return invalidError("compact etcd: not a revision: \"" + revision + "\"");
  return static_cast<int64_t>(value);
}

Result<void> ControlPlane::restartApiserver(double downSeconds) const {
  auto out = checkCommand({clusterScript(), "restart-apiserver", "--dir", dir_, "--down-seconds",
                           std::to_string(downSeconds)});
  if (!out)
    return std::move(out).error().context("restart kube-apiserver");
  return {};
}

Result<void> ControlPlane::installCrds(const std::string& path,
                                       const std::vector<std::string>& crds) const {
  if (auto applied = kubectl({"apply", "-f", path}); !applied)
    return std::move(applied).error();
  std::vector<std::string> wait{"wait", "--for=condition=Established", "--timeout=60s"};
  for (const auto& crd : crds)
    wait.push_back("crd/" + crd);
  if (auto established = kubectl(wait); !established)
    return std::move(established).error();
  return {};
}

void ControlPlaneEnvironment::SetUp() {
  auto plane = ControlPlane::start();
  ASSERT_TRUE(plane.ok()) << plane.error().message();
  instance_ = std::make_unique<ControlPlane>(std::move(*plane));
}

void ControlPlaneEnvironment::TearDown() {
  instance_.reset();
}

ControlPlane& ControlPlaneEnvironment::get() {
  // A failed SetUp skips every test, so reaching here without a control plane is a bug.
  if (!instance_)
    std::abort();
  return *instance_;
}

} // namespace bpfchain::testing
