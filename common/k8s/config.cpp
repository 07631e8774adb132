#include "k8s/config.h"

#include <cstdlib>
#include <filesystem>
#include <yaml-cpp/yaml.h>

#include "system/base64.h"
#include "system/file.h"

namespace bpfchain::k8s {
namespace {

Result<std::string> decodeBase64(const std::string& text, const std::string& field) {
  auto bytes = base64Decode(text);
  if (!bytes)
    return invalidError(field + ": not valid base64");
  return std::move(bytes).value();
}

// Returns the named entry's inner map from a kubeconfig list such as clusters[].
YAML::Node findNamed(const YAML::Node& list, const std::string& name, const std::string& inner) {
  if (list && list.IsSequence())
    for (const auto& item : list)
      if (item["name"] && item["name"].as<std::string>() == name)
        return item[inner];
  return YAML::Node();
}

// Inline "<key>-data" (base64) wins over "<key>" (a file, relative to the kubeconfig's dir).
Result<std::string> inlineOrFile(const YAML::Node& node, const std::string& key,
                                 const std::filesystem::path& base, const std::string& field) {
  if (node[key + "-data"])
    return decodeBase64(node[key + "-data"].as<std::string>(), field + "." + key + "-data");
  if (node[key]) {
    std::filesystem::path file = node[key].as<std::string>();
    return readFile(file.is_absolute() ? file : base / file, kNoSizeLimit);
  }
  return std::string();
}

// The config of `doc`, a kubeconfig document. yaml-cpp throws for a field of the wrong kind
// (a map where a string belongs, "maybe" for a bool, a scalar document): loadKubeconfig turns
// that into an error.
Result<Config> fromDocument(const YAML::Node& doc, const std::string& path,
                            const std::string& context) {
  auto fail = [&](const std::string& what) {
    return invalidError("kubeconfig " + path + ": " + what);
  };
  if (!doc.IsMap())
    return fail("not a YAML mapping");
  std::string contextName = context;
  if (contextName.empty()) {
    if (!doc["current-context"])
      return fail("no current-context, and no context was named");
    contextName = doc["current-context"].as<std::string>();
  }
  YAML::Node ctx = findNamed(doc["contexts"], contextName, "context");
  if (!ctx)
    return fail("no context named \"" + contextName + "\"");
  std::string clusterName = ctx["cluster"] ? ctx["cluster"].as<std::string>() : "";
  std::string userName = ctx["user"] ? ctx["user"].as<std::string>() : "";
  YAML::Node cluster = findNamed(doc["clusters"], clusterName, "cluster");
  if (!cluster || !cluster["server"])
    return fail("context \"" + contextName + "\": no cluster \"" + clusterName +
                "\" with a server");
  YAML::Node user = findNamed(doc["users"], userName, "user");

  Config config;
  auto base = std::filesystem::path(path).parent_path();
  config.server = cluster["server"].as<std::string>();
  config.insecureSkipTlsVerify =
      cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
  config.nameSpace = ctx["namespace"] ? ctx["namespace"].as<std::string>() : "";
  auto ca = inlineOrFile(cluster, "certificate-authority", base, "clusters." + clusterName);
  if (!ca)
    return std::move(ca).error();
  config.caPem = *ca;
  if (user) {
    std::string field = "users." + userName;
    auto cert = inlineOrFile(user, "client-certificate", base, field);
    if (!cert)
      return std::move(cert).error();
    auto key = inlineOrFile(user, "client-key", base, field);
    if (!key)
      return std::move(key).error();
    config.clientCertPem = *cert;
    config.clientKeyPem = *key;
    if (user["token"])
      config.token = user["token"].as<std::string>();
    if (user["tokenFile"])
      config.tokenFile = user["tokenFile"].as<std::string>();
  }
  return config;
}

} // namespace

Result<Config> loadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return invalidError("kubeconfig " + path + ": " + e.what());
  }
  try {
    return fromDocument(doc, path, context);
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? "" : " (line " + std::to_string(e.mark.line + 1) + ")";
    return invalidError("kubeconfig " + path + ": " + e.msg + where);
  }
}

Result<Config> inClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port || !*host || !*port)
    return invalidError("not in a cluster: KUBERNETES_SERVICE_HOST/PORT are not set");
  const std::string dir = "/var/run/secrets/kubernetes.io/serviceaccount";
  Config config;
  std::string h = host;
  config.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  config.tokenFile = dir + "/token";
  auto ca = readFile(dir + "/ca.crt", kNoSizeLimit);
  if (!ca)
    return std::move(ca).error();
  config.caPem = *ca;
  if (auto ns = readFile(dir + "/namespace", kNoSizeLimit))
    config.nameSpace = *ns;
  return config;
}

Result<Config> defaultConfig(const std::string& kubeconfig) {
  if (!kubeconfig.empty())
    return loadKubeconfig(kubeconfig);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env)
    return loadKubeconfig(env);
  return inClusterConfig();
}

} // namespace bpfchain::k8s
