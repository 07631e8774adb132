#include "harness/control_plane.h"

#include <cstdlib>
#include <filesystem>
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

Result<CommandOutput> ControlPlane::kubectl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"kubectl", "--kubeconfig", kubeconfig_};
  argv.insert(argv.end(), args.begin(), args.end());
  return checkCommand(argv);
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
