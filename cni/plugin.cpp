#include "cni/plugin.h"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <optional>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "agent_socket/agent_socket.h"
#include "cni/json.h"
#include "cni/netlink.h"
#include "system/fd.h"
#include "system/time.h"

namespace bpfchain::cni {
namespace {

namespace v1 = bpfchain::agent::v1;

struct CniError {
  int code;
  std::string msg;
  std::string details;
};

template <typename T> using CniResult = Result<T, CniError>;

std::string supportedList() {
  std::string list = "[";
  for (auto v : kSupportedVersions)
    list += (list.size() > 1 ? ", " : "") + json::quote(v);
  return list + "]";
}

bool supported(std::string_view version) {
  for (auto v : kSupportedVersions)
    if (v == version)
      return true;
  return false;
}

// a.b.c >= 1.1.0, for the versions this plugin accepts.
bool atLeast110(std::string_view version) {
  return version == "1.1.0";
}

// Appends one line per invocation to the configured log file (O_APPEND: concurrent plugin
// processes never interleave within a line).
class Log {
public:
  // `subject` names what the command is about ("container=<id> pod=<ns>/<name>"), or "".
  void open(const std::string& path, std::string command, std::string subject) {
    path_ = path;
    command_ = std::move(command);
    subject_ = std::move(subject);
  }
  void line(const std::string& text) const {
    if (path_.empty())
      return;
    FD fd(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    if (!fd && errno == ENOENT) {
      // The first line on a fresh node: make the log's directory (one level, 0755).
      std::string dir = path_.substr(0, path_.find_last_of('/'));
      if (!dir.empty())
        ::mkdir(dir.c_str(), 0755);
      fd = FD(::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640));
    }
    if (!fd)
      return; // logging must never fail a pod
    std::string record = rfc3339Now(3) + " " + command_ + (subject_.empty() ? "" : " " + subject_) +
                         " " + text + "\n";
    (void)!::write(fd.get(), record.data(), record.size());
  }

private:
  std::string path_;
  std::string command_;
  std::string subject_;
};

std::string errorJson(const std::string& cniVersion, const CniError& error) {
  std::string out = "{\"cniVersion\":" + json::quote(cniVersion) +
                    ",\"code\":" + std::to_string(error.code) +
                    ",\"msg\":" + json::quote(error.msg);
  if (!error.details.empty())
    out += ",\"details\":" + json::quote(error.details);
  return out + "}";
}

// CNI_IFNAME: a Linux interface name (libcni's ValidateInterfaceName).
std::optional<std::string> invalidIfname(const std::string& name) {
  if (name.size() > 15)
    return "is longer than 15 characters";
  if (name == "." || name == "..")
    return "is not a valid interface name";
  for (char c : name)
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n')
      return "contains '/', ':' or whitespace";
  return std::nullopt;
}

struct Context {
  const Invocation& inv;
  std::string command;
  std::string cniVersion = std::string(kSupportedVersions.back()); // for error JSON until parsed
  json::Value doc;
  std::string_view stdinText;
  PluginConfig config;
  const json::Value* prevResult = nullptr;
  Log log;

  std::string env(std::string_view key) const {
    auto it = inv.env.find(key);
    return it == inv.env.end() ? std::string() : it->second;
  }
};

CniResult<void> requireEnv(const Context& ctx, std::initializer_list<std::string_view> keys) {
  std::string missing;
  for (auto key : keys)
    if (ctx.env(key).empty())
      missing += (missing.empty() ? "" : ", ") + std::string(key);
  if (!missing.empty())
    return CniError{kInvalidEnvironment,
                    "required environment variables missing: " + missing +
                        " (CNI_COMMAND=" + ctx.command + ")",
                    ""};
  if (auto id = ctx.env("CNI_CONTAINERID"); !id.empty())
    if (auto why = agent::invalidContainerId(id))
      return CniError{kInvalidEnvironment, "CNI_CONTAINERID \"" + id + "\" " + *why, ""};
  if (auto ifname = ctx.env("CNI_IFNAME"); !ifname.empty())
    if (auto why = invalidIfname(ifname))
      return CniError{kInvalidEnvironment, "CNI_IFNAME \"" + ifname + "\" " + *why, ""};
  return {};
}

// bpfchain-cni's own keys of the network configuration: socketPath, logFile, failurePolicy,
// timeoutMs.
CniResult<void> parseOptions(const json::Value& doc, PluginConfig& config) {
  auto stringKey = [&doc](std::string_view key, std::string& out) -> CniResult<void> {
    const json::Value* v = doc.find(key);
    if (v == nullptr)
      return {};
    if (!v->isString() || v->text().empty() || v->text()[0] != '/')
      return CniError{kInvalidNetworkConfig, std::string(key) + " must be an absolute path", ""};
    out = v->text();
    return {};
  };
  if (auto r = stringKey("socketPath", config.socketPath); !r)
    return r;
  if (auto r = stringKey("logFile", config.logFile); !r)
    return r;
  if (const json::Value* policy = doc.find("failurePolicy")) {
    if (policy->isString() && policy->text() == "fail")
      config.failurePolicy = FailurePolicy::Fail;
    else if (policy->isString() && policy->text() == "ignore")
      config.failurePolicy = FailurePolicy::Ignore;
    else
      return CniError{kInvalidNetworkConfig, "failurePolicy must be \"fail\" or \"ignore\"",
                      "got " + serialize(*policy)};
  }
  if (const json::Value* timeout = doc.find("timeoutMs")) {
    long ms = 0;
    const std::string& text = timeout->text();
    bool integer = timeout->isNumber() && !text.empty() && text.size() <= 7 &&
                   text.find_first_not_of("0123456789") == std::string::npos;
    if (integer)
      ms = std::stol(text);
    if (!integer || ms < 1 || ms > 600000)
      return CniError{kInvalidNetworkConfig,
                      "timeoutMs must be an integer number of milliseconds from 1 to 600000",
                      "got " + serialize(*timeout)};
    config.timeout = std::chrono::milliseconds(ms);
  }
  return {};
}

CniResult<void> parseConfig(Context& ctx) {
  auto doc = json::parse(ctx.inv.stdinText);
  if (!doc)
    return CniError{kDecodingFailure,
                    "cannot decode the network configuration: " + doc.error().message(), ""};
  ctx.doc = std::move(*doc);
  if (!ctx.doc.isObject())
    return CniError{kInvalidNetworkConfig, "the network configuration is not a JSON object", ""};

  const json::Value* version = ctx.doc.find("cniVersion");
  if (version == nullptr || !version->isString() || version->text().empty())
    return CniError{kInvalidNetworkConfig, "the network configuration has no cniVersion string",
                    ""};
  ctx.config.cniVersion = version->text();
  if (!supported(ctx.config.cniVersion))
    return CniError{kIncompatibleVersion, "incompatible CNI versions",
                    "config is " + json::quote(ctx.config.cniVersion) + ", plugin supports " +
                        supportedList()};
  ctx.cniVersion = ctx.config.cniVersion;
  if (const json::Value* name = ctx.doc.find("name"); name != nullptr && name->isString())
    ctx.config.name = name->text();

  if (auto options = parseOptions(ctx.doc, ctx.config); !options)
    return options;
  if (const json::Value* prev = ctx.doc.find("prevResult"); prev != nullptr && !prev->isNull()) {
    if (!prev->isObject())
      return CniError{kInvalidNetworkConfig, "prevResult is not a JSON object", ""};
    ctx.prevResult = prev;
  }
  return {};
}

// The prevResult exactly as the runtime sent it: nothing this plugin does changes a result.
std::string prevResultText(const Context& ctx) {
  return std::string(ctx.inv.stdinText.substr(ctx.prevResult->begin(),
                                              ctx.prevResult->end() - ctx.prevResult->begin()));
}

struct HostInterface {
  std::string name;
  int index = 0;
};

// The veth (or netkit) devices here among prevResult's interfaces without a sandbox; `listed`
// gets the names of all of those interfaces.
std::vector<HostInterface> prevResultCandidates(const Context& ctx, int sock,
                                                std::vector<std::string>& listed) {
  std::vector<HostInterface> candidates;
  if (ctx.prevResult == nullptr)
    return candidates;
  const json::Value* interfaces = ctx.prevResult->find("interfaces");
  if (interfaces == nullptr || !interfaces->isArray())
    return candidates;
  for (const auto& entry : interfaces->items()) {
    const json::Value* name = entry.find("name");
    const json::Value* sandbox = entry.find("sandbox");
    if (name == nullptr || !name->isString() || name->text().empty())
      continue;
    if (sandbox != nullptr && !(sandbox->isString() && sandbox->text().empty()) &&
        !sandbox->isNull())
      continue;
    listed.push_back(name->text());
    auto link = linkByName(sock, name->text());
    if (link && isPairDevice(*link))
      candidates.push_back({link->name, link->index});
  }
  return candidates;
}

// The pod interface's host-side peer. First from prevResult: its interfaces without a sandbox
// that are veth (or netkit) devices here; when that is not exactly one, from the pod's side:
// the peer index of CNI_IFNAME inside CNI_NETNS, checked against the device it names here.
CniResult<HostInterface> findHostInterface(const Context& ctx) {
  std::string ifname = ctx.env("CNI_IFNAME");
  std::string netns = ctx.env("CNI_NETNS");
  auto here = routeSocket();
  if (!here)
    return CniError{kInternal, "cannot open a netlink socket: " + here.error().message(), ""};

  std::vector<std::string> listed;
  std::vector<HostInterface> candidates = prevResultCandidates(ctx, here->get(), listed);
  if (candidates.size() == 1)
    return candidates.front();

  std::string why;
  if (netns.empty()) {
    why = "CNI_NETNS is not set";
  } else if (auto inside = routeSocket(netns); !inside) {
    why = inside.error().message();
  } else if (auto pod = linkByName(inside->get(), ifname); !pod) {
    why = "interface " + ifname + " in " + netns + ": " + pod.error().message();
  } else if (!isPairDevice(*pod) || pod->peerIndex <= 0) {
    why = ifname + " in " + netns + " is a " + (pod->kind.empty() ? "device" : pod->kind) +
          ", not a veth";
  } else if (auto peer = linkByIndex(here->get(), pod->peerIndex); !peer) {
    why = "peer of " + ifname + ": " + peer.error().message();
  } else if (!isPairDevice(*peer) || peer->peerIndex != pod->index || !peer->peerElsewhere) {
    why = "interface index " + std::to_string(pod->peerIndex) + " here (" + peer->name +
          ") is not the peer of " + ifname;
  } else {
    return HostInterface{peer->name, peer->index};
  }
  std::string prev = "prevResult lists ";
  if (listed.empty()) {
    prev += "no host-side interface";
  } else {
    prev += std::to_string(candidates.size()) + " host-side veth among [";
    for (size_t i = 0; i < listed.size(); ++i)
      prev += (i == 0 ? "" : ", ") + listed[i];
    prev += "]";
  }
  return CniError{kNoHostInterface,
                  "cannot find the host-side interface of " + ifname + ": " + prev + ", and " + why,
                  ""};
}

struct PodRef {
  std::string ns;
  std::string name;
  std::string describe() const {
    return "pod=" + (ns.empty() && name.empty() ? std::string("-") : ns + "/" + name);
  }
};

PodRef podOf(const Context& ctx) {
  auto args = parseCniArgs(ctx.env("CNI_ARGS"));
  PodRef pod;
  if (auto it = args.find("K8S_POD_NAMESPACE"); it != args.end())
    pod.ns = it->second;
  if (auto it = args.find("K8S_POD_NAME"); it != args.end())
    pod.name = it->second;
  return pod;
}

// What an agent call came to.
struct AgentAnswer {
  std::optional<v1::Response> response; // set when the agent answered
  std::string unavailable;              // why not, when it did not
  std::string took;                     // " agentMs=<round trip>", for the log line
};

AgentAnswer callAgent(const Context& ctx, const v1::Request& request) {
  auto start = std::chrono::steady_clock::now();
  auto response = agent::AgentClient::call(ctx.config.socketPath, request, ctx.config.timeout);
  char took[48];
  std::snprintf(
      took, sizeof took, " agentMs=%.2f",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  if (!response)
    return {std::nullopt, response.error().message(), took};
  // An agent that is starting (adopting its chains), or that cannot tell which chains select
  // the pod (its labels unknown: the API server unreachable), says so; it counts as
  // unavailable, so the failure policy decides.
  if (!response->ok() && response->reason() == "NotReady")
    return {std::nullopt, "the agent is not ready: " + response->message(), took};
  if (!response->ok() && response->reason() == "PodUnknown")
    return {std::nullopt, "the agent " + response->message(), took};
  return {std::move(*response), "", took};
}

CniError refused(const std::string& what, const v1::Response& response) {
  return CniError{
      kAgentRefused,
      "bpfchain agent refused to " + what + ": " +
          (response.message().empty() ? std::string("no reason given") : response.message()),
      response.reason()};
}

CniError unreachable(const Context& ctx, const std::string& why) {
  return CniError{kTryAgainLater,
                  "bpfchain agent unavailable at " + ctx.config.socketPath + ": " + why,
                  "failurePolicy is fail"};
}

std::string describeChains(const v1::Response& response) {
  std::string out;
  for (const auto& chain : response.chains())
    out += (out.empty() ? "" : ",") + chain.chain() + "/" + chain.hook() + "@" +
           std::to_string(chain.generation());
  return out.empty() ? "none" : out;
}

CniResult<std::string> cmdAdd(Context& ctx) {
  if (ctx.prevResult == nullptr)
    return CniError{kInvalidNetworkConfig,
                    "bpfchain-cni is a chained plugin: the configuration has no prevResult",
                    "list it after the plugin that creates the pod's interface"};
  auto host = findHostInterface(ctx);
  if (!host)
    return std::move(host).error();
  PodRef pod = podOf(ctx);
  v1::Request request;
  auto* attach = request.mutable_attach_pod();
  attach->set_pod_namespace(pod.ns);
  attach->set_pod_name(pod.name);
  attach->set_container_id(ctx.env("CNI_CONTAINERID"));
  attach->set_netns_path(ctx.env("CNI_NETNS"));
  attach->set_pod_ifname(ctx.env("CNI_IFNAME"));
  attach->set_host_ifname(host->name);
  attach->set_host_ifindex(host->index);
  attach->set_network(ctx.config.name);
  std::string subject = "host=" + host->name + "(" + std::to_string(host->index) + ")";

  AgentAnswer answer = callAgent(ctx, request);
  if (!answer.response) {
    if (ctx.config.failurePolicy == FailurePolicy::Ignore) {
      ctx.log.line(subject + " result=ignored failurePolicy=ignore reason=" +
                   json::quote("agent unavailable: " + answer.unavailable));
      return prevResultText(ctx);
    }
    return unreachable(ctx, answer.unavailable);
  }
  if (!answer.response->ok())
    return refused("attach " + host->name, *answer.response);
  ctx.log.line(subject + " result=ok chains=" + describeChains(*answer.response) + answer.took);
  return prevResultText(ctx);
}

CniResult<std::string> cmdDel(Context& ctx) {
  PodRef pod = podOf(ctx);
  v1::Request request;
  auto* detach = request.mutable_detach_pod();
  detach->set_container_id(ctx.env("CNI_CONTAINERID"));
  detach->set_pod_namespace(pod.ns);
  detach->set_pod_name(pod.name);
  detach->set_pod_ifname(ctx.env("CNI_IFNAME"));
  detach->set_network(ctx.config.name);
  AgentAnswer answer = callAgent(ctx, request);
  if (!answer.response) {
    // DEL is best effort and must succeed when there is nothing (reachable) to undo: the agent
    // drops attachments of interfaces that are gone, and GC removes the rest.
    ctx.log.line("result=ok reason=" +
                 json::quote("agent unavailable, nothing detached: " + answer.unavailable));
    return std::string();
  }
  if (!answer.response->ok())
    return refused("detach", *answer.response);
  ctx.log.line("result=ok");
  return std::string();
}

CniResult<std::string> cmdCheck(Context& ctx) {
  if (ctx.prevResult == nullptr)
    return CniError{kInvalidNetworkConfig, "CHECK needs a prevResult (the final ADD result)", ""};
  auto host = findHostInterface(ctx);
  if (!host)
    return std::move(host).error();
  PodRef pod = podOf(ctx);
  v1::Request request;
  auto* check = request.mutable_check_pod();
  check->set_container_id(ctx.env("CNI_CONTAINERID"));
  check->set_pod_namespace(pod.ns);
  check->set_pod_name(pod.name);
  check->set_host_ifname(host->name);
  check->set_pod_ifname(ctx.env("CNI_IFNAME"));
  check->set_network(ctx.config.name);
  std::string subject = "host=" + host->name;
  AgentAnswer answer = callAgent(ctx, request);
  if (!answer.response) {
    if (ctx.config.failurePolicy == FailurePolicy::Ignore) {
      ctx.log.line(subject + " result=ignored failurePolicy=ignore reason=" +
                   json::quote("agent unavailable: " + answer.unavailable));
      return std::string();
    }
    return unreachable(ctx, answer.unavailable);
  }
  if (!answer.response->ok())
    return refused("confirm the chains on " + host->name, *answer.response);
  ctx.log.line(subject + " result=ok chains=" + describeChains(*answer.response) + answer.took);
  return std::string();
}

CniResult<std::string> cmdStatus(Context& ctx) {
  if (!atLeast110(ctx.config.cniVersion))
    return CniError{kIncompatibleVersion,
                    "config version " + json::quote(ctx.config.cniVersion) +
                        " does not allow STATUS (1.1.0 or later)",
                    ""};
  v1::Request request;
  request.mutable_status();
  AgentAnswer answer = callAgent(ctx, request);
  std::string problem;
  if (!answer.response)
    problem = "bpfchain agent unavailable at " + ctx.config.socketPath + ": " + answer.unavailable;
  else if (!answer.response->ok())
    problem = "bpfchain agent reports an error: " + answer.response->message();
  else if (!answer.response->status().ready())
    problem = "bpfchain agent on " + answer.response->status().node_name() + " is not ready";
  if (problem.empty()) {
    ctx.log.line("result=ok agent=" + answer.response->status().agent_version());
    return std::string();
  }
  if (ctx.config.failurePolicy == FailurePolicy::Ignore) {
    ctx.log.line("result=ignored failurePolicy=ignore reason=" + json::quote(problem));
    return std::string();
  }
  return CniError{kPluginNotAvailable, "plugin not available: " + problem, ""};
}

CniResult<std::string> cmdGc(Context& ctx) {
  if (!atLeast110(ctx.config.cniVersion))
    return CniError{kIncompatibleVersion,
                    "config version " + json::quote(ctx.config.cniVersion) +
                        " does not allow GC (1.1.0 or later)",
                    ""};
  // The spec's 1.1.0 text named the key cni.dev/attachments; later text and libcni use
  // cni.dev/valid-attachments (libcni sends both).
  const json::Value* list = ctx.doc.find("cni.dev/valid-attachments");
  if (list == nullptr)
    list = ctx.doc.find("cni.dev/attachments");
  if (list == nullptr) {
    // Without the list nothing can be told stale: removing everything would be a guess.
    ctx.log.line("result=ok reason=\"no cni.dev/valid-attachments: nothing to collect\"");
    return std::string();
  }
  if (!list->isArray() && !list->isNull())
    return CniError{kInvalidNetworkConfig, "cni.dev/valid-attachments is not an array", ""};
  std::set<std::pair<std::string, std::string>> valid; // container id, ifname
  for (const auto& attachment : list->items()) {
    const json::Value* id = attachment.find("containerID");
    const json::Value* ifname = attachment.find("ifname");
    if (id == nullptr || !id->isString() || id->text().empty())
      return CniError{kInvalidNetworkConfig,
                      "cni.dev/valid-attachments: an entry has no containerID string", ""};
    if (ifname == nullptr || !ifname->isString() || ifname->text().empty())
      return CniError{kInvalidNetworkConfig,
                      "cni.dev/valid-attachments: the entry of container " + id->text() +
                          " has no ifname string",
                      ""};
    valid.emplace(id->text(), ifname->text());
  }
  v1::Request request;
  auto* gc = request.mutable_gc(); // an empty list is a request too
  gc->set_network(ctx.config.name);
  std::set<std::string> ids;
  for (const auto& [id, ifname] : valid) {
    auto* a = gc->add_valid_attachments();
    a->set_container_id(id);
    a->set_pod_ifname(ifname);
    if (ids.insert(id).second)
      gc->add_valid_container_ids(id);
  }
  AgentAnswer answer = callAgent(ctx, request);
  if (!answer.response) {
    if (ctx.config.failurePolicy == FailurePolicy::Ignore) {
      ctx.log.line("result=ignored failurePolicy=ignore reason=" +
                   json::quote("agent unavailable: " + answer.unavailable));
      return std::string();
    }
    return unreachable(ctx, answer.unavailable);
  }
  if (!answer.response->ok())
    return refused("collect garbage", *answer.response);
  std::string removed;
  for (const auto& id : answer.response->removed_container_ids())
    removed += (removed.empty() ? "" : ",") + id;
  ctx.log.line("result=ok valid=" + std::to_string(valid.size()) +
               " removed=" + (removed.empty() ? "none" : removed));
  return std::string();
}

Outcome versionOutcome(const Invocation& inv) {
  std::string version(kSupportedVersions.back());
  bool blank = inv.stdinText.find_first_not_of(" \t\r\n") == std::string::npos;
  if (!blank) {
    auto doc = json::parse(inv.stdinText);
    if (!doc)
      return Outcome{1, errorJson(version, CniError{kDecodingFailure,
                                                    "cannot decode the VERSION request: " +
                                                        doc.error().message(),
                                                    ""})};
    if (const json::Value* v = doc->find("cniVersion");
        v != nullptr && v->isString() && supported(v->text()))
      version = v->text();
  }
  std::string out = "{\"cniVersion\":" + json::quote(version) + ",\"supportedVersions\":[";
  for (size_t i = 0; i < kSupportedVersions.size(); ++i)
    out += (i == 0 ? "" : ",") + json::quote(kSupportedVersions[i]);
  return Outcome{0, out + "]}"};
}

} // namespace

std::map<std::string, std::string, std::less<>> parseCniArgs(std::string_view args) {
  std::map<std::string, std::string, std::less<>> out;
  while (!args.empty()) {
    size_t end = args.find(';');
    std::string_view pair = args.substr(0, end);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos && eq > 0)
      out.emplace(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
    if (end == std::string_view::npos)
      break;
    args.remove_prefix(end + 1);
  }
  return out;
}

Outcome run(const Invocation& invocation) {
  Context ctx{invocation, {}};
  ctx.command = ctx.env("CNI_COMMAND");
  auto failed = [&](const CniError& error) {
    ctx.log.line("result=error code=" + std::to_string(error.code) +
                 " msg=" + json::quote(error.msg));
    return Outcome{1, errorJson(ctx.cniVersion, error)};
  };
  if (ctx.command == "VERSION")
    return versionOutcome(invocation);

  CniResult<void> env;
  if (ctx.command.empty())
    env = CniError{kInvalidEnvironment, "required environment variables missing: CNI_COMMAND", ""};
  else if (ctx.command == "ADD" || ctx.command == "CHECK")
    env = requireEnv(ctx, {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"});
  else if (ctx.command == "DEL")
    env = requireEnv(ctx, {"CNI_CONTAINERID", "CNI_IFNAME"});
  else if (ctx.command != "STATUS" && ctx.command != "GC")
    env = CniError{kInvalidEnvironment, "unknown CNI_COMMAND \"" + ctx.command + "\"",
                   "supported: ADD, DEL, CHECK, VERSION, STATUS, GC"};

  // The configuration is read first so that even an environment error is logged and carries
  // the configuration's cniVersion; it is reported first, as libcni's skel does.
  auto parsed = parseConfig(ctx);
  std::string subject;
  if (auto id = ctx.env("CNI_CONTAINERID"); !id.empty())
    subject = "container=" + id + " " + podOf(ctx).describe();
  ctx.log.open(ctx.config.logFile, ctx.command.empty() ? "-" : ctx.command, subject);
  if (!env)
    return failed(env.error());
  if (!parsed)
    return failed(parsed.error());

  CniResult<std::string> result = CniError{kInternal, "unreachable", ""};
  if (ctx.command == "ADD")
    result = cmdAdd(ctx);
  else if (ctx.command == "DEL")
    result = cmdDel(ctx);
  else if (ctx.command == "CHECK")
    result = cmdCheck(ctx);
  else if (ctx.command == "STATUS")
    result = cmdStatus(ctx);
  else
    result = cmdGc(ctx);
  if (!result)
    return failed(result.error());
  return Outcome{0, std::move(*result)};
}

} // namespace bpfchain::cni
