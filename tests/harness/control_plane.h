// A real kube-apiserver + etcd for cluster and e2e tests, started through
// scripts/local-cluster.sh (which builds them with tools/envtest on first use). The script's
// watchdog stops the control plane when this process dies, even by SIGKILL.
#pragma once

#include <cstdint>
#include <gtest/gtest.h>
#include <memory>
#include <string>
#include <vector>

#include "harness/process.h"
#include "system/result.h"

namespace bpfchain::testing {

class ControlPlane {
public:
  static Result<ControlPlane> start();
  ~ControlPlane();
  ControlPlane(ControlPlane&& other) noexcept
      : dir_(std::move(other.dir_)), kubeconfig_(std::move(other.kubeconfig_)) {
    other.dir_.clear();
  }
  ControlPlane& operator=(ControlPlane&&) = delete;

  // An admin (system:masters) kubeconfig with embedded certificates.
  const std::string& kubeconfig() const { return kubeconfig_; }
  // Runs the machine's kubectl against this control plane; a non-zero exit is an error.
  // A request that got no answer (isTransportFailure) is retried, a few times with backoff;
  // an answer, even an error, never is.
  Result<CommandOutput> kubectl(const std::vector<std::string>& args) const;
  // The same, with a non-zero exit in exitCode (for commands a test expects to be refused).
  Result<CommandOutput> kubectlOutput(const std::vector<std::string>& args) const;
  // kubectl apply -f `path` (a file or a directory of CRDs), then waits until each CRD named
  // in `crds` ("plural.group") is Established.
  Result<void> installCrds(const std::string& path, const std::vector<std::string>& crds) const;

  // Faults, through scripts/local-cluster.sh compact and restart-apiserver.
  // Compacts etcd's history up to its current revision and returns that revision: a watch or
  // list from an older resourceVersion that reaches etcd then fails with 410 Expired.
  Result<int64_t> compactEtcd() const;
  // SIGKILLs kube-apiserver (every connection to it drops), waits `downSeconds`, then starts it
  // again on the same port with the same flags and returns once it is ready. etcd keeps running.
  Result<void> restartApiserver(double downSeconds) const;

private:
  ControlPlane(std::string dir, std::string kubeconfig)
      : dir_(std::move(dir)), kubeconfig_(std::move(kubeconfig)) {}
  std::string dir_;
  std::string kubeconfig_;
};

// Whether kubectl's stderr says its request got no answer from the API server (connection
// refused, reset or lost, EOF, a timeout): worth a retry, unlike an error the server returned.
bool isTransportFailure(const std::string& kubectlStderr);

// One control plane shared by every test of a binary:
//   ::testing::AddGlobalTestEnvironment(new ControlPlaneEnvironment);  (in main)
//   ControlPlaneEnvironment::get().kubectl(...)                       (in tests)
class ControlPlaneEnvironment : public ::testing::Environment {
public:
  void SetUp() override;
  void TearDown() override;
  static ControlPlane& get();

private:
  static std::unique_ptr<ControlPlane> instance_;
};

} // namespace bpfchain::testing
