#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <unistd.h>
#include <vector>

#include "k8s/config.h"

namespace bpfchain::k8s {
namespace {

// Inline "-data" fields are base64 (common/system/base64.h), the others files next to the
// kubeconfig (common/system/file.h).
class Kubeconfig : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/bpfchain-kubeconfig-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    std::ofstream(dir_ + "/cert.pem") << "CERT";
  }
  void TearDown() override {
    for (const char* f : {"/cert.pem", "/config"})
      std::remove((dir_ + f).c_str());
    ::rmdir(dir_.c_str());
  }
  Result<Config> load(const std::string& caData) {
    std::ofstream(dir_ + "/config") << "current-context: c\n"
                                       "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                                       "clusters: [{name: k, cluster: {server: 'https://x:1', "
                                       "certificate-authority-data: '"
                                    << caData
                                    << "'}}]\n"
                                       "users: [{name: u, user: {client-certificate: cert.pem, "
                                       "client-key-data: S0VZ}}]\n";
    return loadKubeconfig(dir_ + "/config");
  }
  std::string dir_;
};

TEST_F(Kubeconfig, InlineDataIsBase64AndFilesAreRelativeToTheKubeconfig) {
  auto config = load("Q0EgUEVN");
  ASSERT_TRUE(config.ok()) << config.error().message();
  EXPECT_EQ(config->caPem, "CA PEM");
  EXPECT_EQ(config->clientKeyPem, "KEY");
  EXPECT_EQ(config->clientCertPem, "CERT");
}

TEST_F(Kubeconfig, InvalidBase64NamesTheField) {
  auto config = load("Q0EgUEV*");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.error().message(), "clusters.k.certificate-authority-data: not valid base64");
}

// Found by fuzz/kubeconfig_fuzz.cpp: yaml-cpp's exceptions for a field of the wrong kind escaped
// loadKubeconfig (a scalar document threw YAML::BadSubscript) instead of being its error.
TEST_F(Kubeconfig, FieldsOfTheWrongKindAreErrorsNotExceptions) {
  const std::string good = "current-context: c\n"
                           "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                           "clusters: [{name: k, cluster: {server: 'https://x:1'}}]\n";
  struct Case {
    std::string yaml;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"f- a\n- b\n", "not a YAML mapping"},
           {"- a\n- b\n", "not a YAML mapping"},
           {"current-context: {a: 1}\n", "bad conversion (line 1)"},
           {good + "users: [{name: u, user: {token: [1]}}]\n", "bad conversion (line 4)"},
           {"current-context: c\n"
            "contexts: [{name: c, context: {cluster: k}}]\n"
            "clusters: [{name: k, cluster: {server: 'https://x:1', insecure-skip-tls-verify: "
            "maybe}}]\n",
            "bad conversion (line 3)"},
       }) {
    std::ofstream(dir_ + "/config") << c.yaml;
    Result<Config> config = Config{};
    ASSERT_NO_THROW(config = loadKubeconfig(dir_ + "/config")) << c.yaml;
    ASSERT_FALSE(config.ok()) << c.yaml;
    EXPECT_EQ(config.error().message(), "kubeconfig " + dir_ + "/config: " + c.message) << c.yaml;
  }
}

} // namespace
} // namespace bpfchain::k8s
