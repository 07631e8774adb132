#include "harness/agent_process.h"

#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/http.h"
#include "harness/resources.h"

namespace bpfchain::testing {

namespace {} // namespace

bool eventually(const std::function<bool()>& check, int timeoutMs) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    if (check())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return check();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

Result<std::unique_ptr<AgentProcess>> AgentProcess::start(const AgentOptions& o,
                                                          const std::string& logFile) {
  std::vector<std::string> argv{std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-agent",
                                "--metrics-address", "127.0.0.1:0"};
  auto flag = [&](const char* name, const std::string& value) {
    if (!value.empty()) {
      argv.emplace_back(name);
      argv.push_back(value);
    }
  };
  flag("--config", o.config);
  flag("--node-name", o.nodeName);
  flag("--kubeconfig", o.kubeconfig);
  flag("--netns", o.netnsPath);
  flag("--bpffs", o.bpffs);
  flag("--state-dir", o.stateDir);
  flag("--socket", o.socket);
  argv.insert(argv.end(), o.extra.begin(), o.extra.end());
  // Keep earlier runs' logs: a restarted agent appends to a new file.
  auto child = ChildProcess::spawn(argv, logFile);
  if (!child)
    return std::move(child).error();
  uint16_t port = 0;
  bool exited = false;
  eventually(
      [&] {
        std::string log = readFile(logFile);
        const std::string prefix = " metricsPort=";
        size_t at = log.find(prefix);
        if (at != std::string::npos)
          port = static_cast<uint16_t>(std::atoi(log.c_str() + at + prefix.size()));
        exited = !child->running();
        return port != 0 || exited;
      },
      20000);
  if (port == 0)
    return invalidError("bpfchain-agent did not start (" + describeCommand(argv) +
                        "): " + readFile(logFile));
  return std::unique_ptr<AgentProcess>(new AgentProcess(std::move(*child), logFile, port));
}

Result<std::string> AgentProcess::get(const std::string& path) const {
  auto r = httpGet("127.0.0.1", port_, path);
  if (!r)
    return std::move(r).error();
  if (r->status != 200)
    return invalidError("GET " + path + ": " + std::to_string(r->status) + " " + r->body);
  return r->body;
}

std::string AgentProcess::log() const {
  return readFile(logFile_);
}

Result<BuiltPackage> buildPackage(const std::string& dir, const std::string& name,
                                  const std::string& object, const std::string& entry,
                                  const std::string& hook, const std::string& nextMap) {
  BuiltPackage p;
  p.path = dir + "/" + name + ".tar.gz";
  auto built = checkCommand({std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-pkg", "build", "--name",
                             name, "--version", "1.0.0", "--program",
                             std::string(BPFCHAIN_BPF_DIR) + "/" + object + ".bpf.o:" + entry +
                                 ":" + hook + ":" + nextMap,
                             "-o", p.path});
  if (!built)
    return std::move(built).error();
  auto digest = checkCommand({std::string(BPFCHAIN_BIN_DIR) + "/bpfchain-pkg", "digest", p.path});
  if (!digest)
    return std::move(digest).error();
  p.sha256 = digest->out.substr(0, 64);
  p.url = "file://" + p.path;
  return p;
}

} // namespace bpfchain::testing
