#include "cni/installer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cni/json.h"
#include "cni/plugin.h"
#include "system/fd.h"
#include "system/file.h"

namespace bpfchain::cni {
namespace {

constexpr std::string_view kBinaryName = "bpfchain-cni";

std::string parentOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Result<void> makeDirectories(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0)
    return S_ISDIR(st.st_mode) ? Result<void>() : Error(ENOTDIR, dir + " is not a directory");
  std::string parent = parentOf(dir);
  if (parent != dir && parent != "/" && parent != ".")
    if (auto r = makeDirectories(parent); !r)
      return r;
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return systemError(errno, "mkdir " + dir);
  return {};
}

// confDir's network configurations in the order a runtime considers them (libcni's ConfFiles
// with .conf, .conflist and .json, sorted as strings).
Result<std::vector<std::string>> configFiles(const std::string& confDir) {
  DIR* dir = ::opendir(confDir.c_str());
  if (dir == nullptr)
    return systemError(errno, "open " + confDir);
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    auto dot = name.find_last_of('.');
    if (dot == std::string::npos)
      continue;
    std::string ext = name.substr(dot);
    if (ext != ".conf" && ext != ".conflist" && ext != ".json")
      continue;
    struct stat st {};
    std::string path = confDir;
    path.append("/").append(name);
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      names.push_back(path);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

bool isOurs(const json::Value& plugin) {
  const json::Value* type = plugin.find("type");
  return type != nullptr && type->isString() && type->text() == kBinaryName;
}

// Sets the entry's keys from the options; returns whether anything changed.
bool applyOptions(json::Value& entry, const InstallOptions& options) {
  bool changed = false;
  auto setKey = [&](const std::string& key, const std::optional<std::string>& value) {
    if (!value)
      return;
    json::Value wanted = json::Value::string(*value);
    const json::Value* current = entry.find(key);
    if (current == nullptr || !(*current == wanted)) {
      entry.set(key, std::move(wanted));
      changed = true;
    }
  };
  setKey("socketPath", options.socketPath);
  setKey("failurePolicy", options.failurePolicy);
  setKey("logFile", options.logFile);
  return changed;
}

Result<bool> installBinary(const InstallOptions& options) {
  auto self = readFile(options.selfPath, kNoSizeLimit);
  if (!self)
    return std::move(self).error().context("read the plugin binary");
  if (auto dir = makeDirectories(options.binDir); !dir)
    return std::move(dir).error();
  std::string target = options.binDir + "/" + std::string(kBinaryName);
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0 && (st.st_mode & 07777) == 0755) {
    auto current = readFile(target, kNoSizeLimit);
    if (current && *current == *self)
      return false;
  }
  if (auto written = writeFileAtomic(target, *self, {.mode = 0755}); !written)
    return std::move(written).error();
  return true;
}

// A network configuration file as JSON, refused unless it is an object of a CNI version
// bpfchain-cni implements.
Result<json::Value> readNetworkConfig(const std::string& file) {
  auto text = readFile(file, kNoSizeLimit);
  if (!text)
    return std::move(text).error();
  auto doc = json::parse(*text);
  if (!doc)
    return Error(EINVAL, file + ": " + doc.error().message());
  if (!doc->isObject())
    return Error(EINVAL, file + ": not a JSON object");
  const json::Value* version = doc->find("cniVersion");
  if (version == nullptr || !version->isString())
    return Error(EINVAL, file + ": no cniVersion");
  if (std::find(kSupportedVersions.begin(), kSupportedVersions.end(), version->text()) ==
      kSupportedVersions.end())
    return Error(EINVAL, file + ": the network uses CNI version " + version->text() +
                             ", which bpfchain-cni does not implement");
  return std::move(*doc);
}

// A plugin list to chain into, and the file it goes to.
struct PluginList {
  std::string file;
  json::Value list;
};

// `doc` (read from `file`) as a plugin list. A single-plugin configuration (removed in spec
// 1.0.0, still accepted by runtimes) becomes one beside it, as chaining needs a list.
Result<PluginList> asPluginList(json::Value doc, const std::string& file) {
  if (json::Value* plugins = doc.find("plugins")) {
    if (!plugins->isArray())
      return Error(EINVAL, file + ": \"plugins\" is not an array");
    return PluginList{file, std::move(doc)};
  }
  if (doc.find("type") == nullptr)
    return Error(EINVAL, file + ": neither a plugin list nor a plugin configuration");
  std::string target = file.substr(0, file.find_last_of('.')) + ".conflist";
  if (::access(target.c_str(), F_OK) == 0)
    return Error(EEXIST, file + " is a single-plugin configuration and " + target +
                             " exists: cannot convert it");
  json::Value list = json::Value::object();
  list.set("cniVersion", *doc.find("cniVersion"));
  if (const json::Value* name = doc.find("name"))
    list.set("name", *name);
  json::Value plugin = std::move(doc);
  plugin.erase("cniVersion");
  plugin.erase("name");
  json::Value single = json::Value::array();
  single.items().push_back(std::move(plugin));
  list.set("plugins", std::move(single));
  return PluginList{std::move(target), std::move(list)};
}

// Adds bpfchain-cni's entry to the list's plugins, or updates it; whether the list changed.
bool addEntry(json::Value& list, const InstallOptions& options) {
  json::Value& plugins = *list.find("plugins");
  auto ours = std::find_if(plugins.items().begin(), plugins.items().end(), isOurs);
  if (ours != plugins.items().end())
    return applyOptions(*ours, options);
  json::Value entry = json::Value::object();
  entry.set("type", json::Value::string(std::string(kBinaryName)));
  applyOptions(entry, options);
  plugins.items().push_back(std::move(entry));
  return true;
}

// The permissions `file` has, for the file written in its place (0644 when it has none).
mode_t modeOf(const std::string& file) {
  struct stat st {};
  return ::stat(file.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0644;
}

} // namespace

Result<InstallReport> install(const InstallOptions& options) {
  if (options.failurePolicy && *options.failurePolicy != "fail" &&
      *options.failurePolicy != "ignore")
    return Error(EINVAL, "--failure-policy must be fail or ignore");
  for (const auto* path : {&options.socketPath, &options.logFile})
    if (*path && (path->value().empty() || path->value()[0] != '/'))
      return Error(EINVAL, "socket and log file paths must be absolute: " + path->value());

  InstallReport report;
  auto binary = installBinary(options);
  if (!binary)
    return std::move(binary).error();
  report.binaryChanged = *binary;

  auto files = configFiles(options.confDir);
  if (!files)
    return std::move(files).error();
  if (files->empty())
    return Error(ENOENT, "no network configuration in " + options.confDir +
                             ": install the primary network plugin first");
  const std::string& file = files->front();
  auto doc = readNetworkConfig(file);
  if (!doc)
    return std::move(doc).error();
  auto list = asPluginList(std::move(*doc), file);
  if (!list)
    return std::move(list).error();
  const std::string& target = list->file;
  bool changed = target != file;
  if (addEntry(list->list, options))
    changed = true;
  report.confFile = target;
  if (!changed)
    return report;

  if (auto written =
          writeFileAtomic(target, json::serialize(list->list, 2) + "\n", {.mode = modeOf(file)});
      !written)
    return std::move(written).error();
  if (target != file && ::unlink(file.c_str()) != 0)
    return systemError(errno, "remove " + file + " (converted into " + target + ")");
  report.confChanged = true;
  return report;
}

Result<UninstallReport> uninstall(const InstallOptions& options) {
  UninstallReport report;
  auto files = configFiles(options.confDir);
  if (!files && files.error().code() != ENOENT)
    return std::move(files).error();
  for (const auto& file : files ? *files : std::vector<std::string>{}) {
    auto text = readFile(file, kNoSizeLimit);
    if (!text)
      return std::move(text).error();
    auto doc = json::parse(*text);
    if (!doc || !doc->isObject())
      continue; // not a configuration this tool wrote into
    json::Value* plugins = doc->find("plugins");
    if (plugins == nullptr || !plugins->isArray())
      continue;
    auto& items = plugins->items();
    auto kept = std::remove_if(items.begin(), items.end(), isOurs);
    if (kept == items.end())
      continue;
    items.erase(kept, items.end());
    struct stat st {};
    mode_t mode = ::stat(file.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0644;
    if (auto written = writeFileAtomic(file, json::serialize(*doc, 2) + "\n", {.mode = mode});
        !written)
      return std::move(written).error();
    report.confFiles.push_back(file);
  }
  if (!options.binDir.empty()) {
    std::string binary = options.binDir + "/" + std::string(kBinaryName);
    if (::unlink(binary.c_str()) == 0)
      report.binaryRemoved = true;
    else if (errno != ENOENT)
      return systemError(errno, "remove " + binary);
  }
  return report;
}

int installCommand(const InstallOptions& options) {
  auto report = install(options);
  if (!report) {
    std::fprintf(stderr, "bpfchain-cni install: %s\n", report.error().message().c_str());
    return 1;
  }
  std::printf("%s %s/%s\n", report->binaryChanged ? "installed" : "unchanged",
              options.binDir.c_str(), std::string(kBinaryName).c_str());
  std::printf("%s %s\n", report->confChanged ? "configured" : "unchanged",
              report->confFile.c_str());
  return 0;
}

int uninstallCommand(const InstallOptions& options) {
  auto report = uninstall(options);
  if (!report) {
    std::fprintf(stderr, "bpfchain-cni uninstall: %s\n", report.error().message().c_str());
    return 1;
  }
  for (const auto& file : report->confFiles)
    std::printf("removed from %s\n", file.c_str());
  if (report->binaryRemoved)
    std::printf("removed %s/%s\n", options.binDir.c_str(), std::string(kBinaryName).c_str());
  return 0;
}

} // namespace bpfchain::cni
