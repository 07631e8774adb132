#include "node-agent/agent_metrics.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <thread>

#include "btf/value.h"
#include "k8s/k8s_metrics.h"

namespace bpfchain::agent {

namespace {

constexpr size_t kRateSamples = 20;
constexpr int kStatsSlots = 16; // BPFCHAIN_STATS_SLOTS in bpf/include/bpfchain/chain.h

bool isPerCpu(__u32 type) {
  return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

// The value at `key`, one byte string per CPU (one for a map that is not per-CPU); a missing
// key reads as zeros.
Result<std::vector<std::vector<uint8_t>>> readValues(int fd, const void* key) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return systemError(errno, "map info");
  bool perCpu = isPerCpu(info.type);
  size_t cpus = perCpu ? static_cast<size_t>(libbpf_num_possible_cpus()) : 1;
  size_t stride = perCpu ? (info.value_size + 7) / 8 * 8 : info.value_size;
  std::vector<uint8_t> buffer(stride * cpus);
  std::vector<std::vector<uint8_t>> values(cpus, std::vector<uint8_t>(info.value_size, 0));
  if (bpf_map_lookup_elem(fd, key, buffer.data()) != 0) {
    if (errno == ENOENT)
      return values;
    return systemError(errno, "lookup");
  }
  for (size_t c = 0; c < cpus; ++c)
    std::memcpy(values[c].data(), buffer.data() + c * stride, info.value_size);
  return values;
}

uint64_t fieldOf(const std::vector<uint8_t>& value, const ValueField& f) {
  uint64_t v = 0;
  if (f.offset + f.size <= value.size())
    std::memcpy(&v, value.data() + f.offset, f.size); // little endian
  return v;
}

// Sum over CPUs of one integer of the value.
Result<std::vector<uint64_t>> readField(int fd, const void* key, const ValueField& f) {
  auto values = readValues(fd, key);
  if (!values)
    return std::move(values).error();
  std::vector<uint64_t> perCpu;
  for (const auto& v : *values)
    perCpu.push_back(fieldOf(v, f));
  return perCpu;
}

std::string verdictLabel(const std::string& hook, int slot) {
  if (slot == 0)
    return "seen";
  if (slot == kStatsSlots - 1)
    return "other";
  int verdict = slot - 2;
  if (hook == "xdp") {
    static const char* names[] = {"aborted", "drop", "pass", "tx", "redirect"};
    if (verdict >= 0 && verdict <= 4)
      return names[verdict];
  } else {
    static const std::map<int, const char*> names = {
        {-1, "unspec"}, {0, "ok"},     {1, "reclassify"}, {2, "shot"},     {3, "pipe"},
        {4, "stolen"},  {5, "queued"}, {6, "repeat"},     {7, "redirect"}, {8, "trap"}};
    if (auto it = names.find(verdict); it != names.end())
      return it->second;
  }
  return std::to_string(verdict);
}

// A pod ADD attaches an already-loaded root: milliseconds (DESIGN.md section 9).
prometheus::Histogram::BucketBoundaries cniBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}

prometheus::ClientMetric metric(std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  return m;
}

} // namespace

double maxRate(const std::deque<uint64_t>& samples) {
  uint64_t most = 0;
  for (size_t i = 1; i < samples.size(); ++i)
    most = std::max(most, samples[i] >= samples[i - 1] ? samples[i] - samples[i - 1] : samples[i]);
  return static_cast<double>(most);
}

struct AgentMetrics::Impl : public prometheus::Collectable {
  explicit Impl(Info info) : info_(std::move(info)) {
    registry = std::make_shared<prometheus::Registry>();
    applyDuration = &prometheus::BuildHistogram()
                         .Name("bpfchain_apply_duration_seconds")
                         .Help("Time to apply a chain's new generation to one node, all its "
                               "interfaces (loads, map arguments, relinks).")
                         .Register(*registry);
    errors = &prometheus::BuildCounter()
                  .Name("bpfchain_errors_total")
                  .Help("Failed chain applies, by machine-readable reason.")
                  .Register(*registry);
    chains = &prometheus::BuildGauge()
                  .Name("bpfchain_chains")
                  .Help("Chains in the node's config, by phase.")
                  .Register(*registry);
    cniRequests = &prometheus::BuildCounter()
                       .Name("bpfchain_cni_requests_total")
                       .Help("Requests from the CNI plugin served on the agent socket, by CNI "
                             "command, result and error reason.")
                       .Register(*registry);
    cniDuration = &prometheus::BuildHistogram()
                       .Name("bpfchain_cni_request_duration_seconds")
                       .Help("Time the agent took to serve one CNI plugin request, by command.")
                       .Register(*registry);
    for (const char* command : {"ADD", "DEL", "CHECK", "STATUS", "GC"}) {
      cniRequests->Add({{"command", command}, {"result", "success"}, {"reason", ""}});
      cniDuration->Add({{"command", command}}, cniBuckets());
    }
    requests = k8s::makeRequestMetrics(registry);
    prometheus::BuildGauge()
        .Name("bpfchain_agent_info")
        .Help("The agent's version, kernel and kernel features.")
        .Register(*registry)
        .Add({{"version", info_.version},
              {"kernel", info_.kernel},
              {"tcx", info_.tcx ? "true" : "false"},
              {"xdp_link", info_.xdpLink ? "true" : "false"}})
        .Set(1);
    // Run counts and times are only counted while someone holds this descriptor.
    stats = FD(bpf_enable_stats(BPF_STATS_RUN_TIME));
    sampler = std::thread([this] { sample(); });
  }

  ~Impl() override {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    wake.notify_all();
    sampler.join();
  }

  // max-rate needs history: once a second, record every max-rate monitor's value.
  void sample() {
    std::unique_lock lock(mu);
    while (!stopping) {
      for (const auto& a : attachments)
        for (const auto& p : a.programs)
          for (const auto& m : p.monitors) {
            if (m.decl.aggregator != Aggregator::MaxRate || !m.map)
              continue;
            for (const auto& f : m.fields) {
              auto values = readField(m.map->get(), m.key.data(), f);
              if (!values)
                continue;
              uint64_t sum = 0;
              for (uint64_t v : *values)
                sum += v;
              auto& ring = history[historyKey(a, p, m) + "|" + f.name];
              ring.push_back(sum);
              if (ring.size() > kRateSamples + 1)
                ring.pop_front();
            }
          }
      wake.wait_for(lock, std::chrono::seconds(1), [this] { return stopping; });
    }
  }

  static std::string historyKey(const ExportedAttachment& a, const ExportedProgram& p,
                                const ExportedMonitor& m) {
    return a.interface + "|" + a.hook + "|" + p.chain + "|" + p.program + "|" + m.decl.map + "|" +
           m.decl.key;
  }

  // The families Collect() reads from the kernel and the agent's state at scrape time.
  struct ScrapedFamilies {
    prometheus::MetricFamily runs{"bpfchain_root_runs_total",
                                  "Packets the chain's root program ran on (BPF_ENABLE_STATS).",
                                  prometheus::MetricType::Counter,
                                  {}};
    prometheus::MetricFamily runTime{
        "bpfchain_root_run_seconds_total",
        "Kernel time spent in the chain on this hook, every program of it included.",
        prometheus::MetricType::Counter,
        {}};
    prometheus::MetricFamily packets{"bpfchain_program_packets_total",
                                     "Per-program packets from the program's chain.h stats map: "
                                     "seen, and by the verdict that ended the chain there.",
                                     prometheus::MetricType::Counter,
                                     {}};
    prometheus::MetricFamily monitors{"bpfchain_monitor_map_value",
                                      "A monitored map value (monitorMaps), aggregated.",
                                      prometheus::MetricType::Gauge,
                                      {}};
    prometheus::MetricFamily chainInfo{
        "bpfchain_chain_info",
        "1 for each chain in the node's config, with the generation its phase and reason "
        "describe.",
        prometheus::MetricType::Gauge,
        {}};
    prometheus::MetricFamily fetches{"bpfchain_package_fetches_total",
                                     "Package requests: downloads, cache hits, failures.",
                                     prometheus::MetricType::Counter,
                                     {}};
  };

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families = registry->Collect();
    ScrapedFamilies scraped;
    std::lock_guard lock(mu);
    collectChains(scraped.chainInfo);
    for (const auto& a : attachments) {
      collectRoot(a, scraped.runs, scraped.runTime);
      for (const auto& p : a.programs) {
        collectPackets(a, p, scraped.packets);
        for (const auto& mon : p.monitors)
          collectMonitor(a, p, mon, scraped.monitors);
      }
    }
    collectFetches(scraped.fetches);
    for (auto* f : {&scraped.chainInfo, &scraped.runs, &scraped.runTime, &scraped.packets,
                    &scraped.monitors, &scraped.fetches})
      families.push_back(std::move(*f));
    return families;
  }

  void collectChains(prometheus::MetricFamily& chainInfo) const {
    for (const auto& c : chainStates) {
      auto m = metric({{"chain", c.chain},
                       {"generation", std::to_string(c.generation)},
                       {"phase", c.phase},
                       {"reason", c.reason}});
      m.gauge.value = 1;
      chainInfo.metric.push_back(m);
    }
  }

  // The root program's run count and time (BPF_ENABLE_STATS).
  static void collectRoot(const ExportedAttachment& a, prometheus::MetricFamily& runs,
                          prometheus::MetricFamily& runTime) {
    bpf_prog_info info{};
    __u32 len = sizeof(info);
    if (!a.root || bpf_obj_get_info_by_fd(a.root->get(), &info, &len) != 0)
      return;
    auto m = metric({{"interface", a.interface}, {"hook", a.hook}});
    m.counter.value = static_cast<double>(info.run_cnt);
    runs.metric.push_back(m);
    m.counter.value = static_cast<double>(info.run_time_ns) / 1e9;
    runTime.metric.push_back(m);
  }

  static void collectPackets(const ExportedAttachment& a, const ExportedProgram& p,
                             prometheus::MetricFamily& packets) {
    if (!p.stats)
      return;
    for (const auto& [verdict, count] : verdictCounts(p.stats->get(), a.hook)) {
      auto m = metric({{"chain", p.chain},
                       {"program", p.program},
                       {"interface", a.interface},
                       {"hook", a.hook},
                       {"verdict", verdict}});
      m.counter.value = static_cast<double>(count);
      packets.metric.push_back(m);
    }
  }

  void collectMonitor(const ExportedAttachment& a, const ExportedProgram& p,
                      const ExportedMonitor& mon, prometheus::MetricFamily& monitors) const {
    if (!mon.map)
      return;
    for (const auto& f : mon.fields) {
      auto values = readField(mon.map->get(), mon.key.data(), f);
      if (!values)
        continue;
      double sum = 0;
      for (uint64_t v : *values)
        sum += static_cast<double>(v);
      double value = sum;
      if (mon.decl.aggregator == Aggregator::Avg)
        value = sum / static_cast<double>(values->size());
      if (mon.decl.aggregator == Aggregator::MaxRate) {
        auto it = history.find(historyKey(a, p, mon) + "|" + f.name);
        value = it == history.end() ? 0 : maxRate(it->second);
      }
      auto m = metric({{"chain", p.chain},
                       {"program", p.program},
                       {"interface", a.interface},
                       {"hook", a.hook},
                       {"map", mon.decl.map},
                       {"key", mon.decl.key},
                       {"field", f.name},
                       {"aggregator", aggregatorName(mon.decl.aggregator)}});
      m.gauge.value = value;
      monitors.metric.push_back(m);
    }
  }

  void collectFetches(prometheus::MetricFamily& fetches) const {
    if (!packageCounters)
      return;
    PackageCounters c = packageCounters();
    for (auto [result, value] :
         {std::pair{"downloaded", c.fetches}, std::pair{"cached", c.cacheHits},
          std::pair{"failed", c.failures}}) {
      auto m = metric({{"result", result}});
      m.counter.value = static_cast<double>(value);
      fetches.metric.push_back(m);
    }
  }

  Info info_;
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Histogram>* applyDuration;
  prometheus::Family<prometheus::Counter>* errors;
  prometheus::Family<prometheus::Gauge>* chains;
  prometheus::Family<prometheus::Counter>* cniRequests;
  prometheus::Family<prometheus::Histogram>* cniDuration;
  std::shared_ptr<k8s::RequestMetrics> requests;
  FD stats;

  mutable std::mutex mu;
  std::condition_variable wake;
  bool stopping = false;
  std::vector<ExportedAttachment> attachments;
  std::vector<ChainState> chainStates;
  std::map<std::string, std::deque<uint64_t>> history;
  std::function<PackageCounters()> packageCounters;
  std::thread sampler;
};

AgentMetrics::AgentMetrics(Info info) : impl_(std::make_shared<Impl>(std::move(info))) {}

AgentMetrics::~AgentMetrics() = default;

std::vector<std::weak_ptr<prometheus::Collectable>> AgentMetrics::collectables() const {
  return {std::static_pointer_cast<prometheus::Collectable>(impl_)};
}

void AgentMetrics::publish(std::vector<ExportedAttachment> attachments) {
  std::lock_guard lock(impl_->mu);
  impl_->attachments = std::move(attachments);
}

void AgentMetrics::observeApply(const std::string& chain, double seconds) {
  static const prometheus::Histogram::BucketBoundaries buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                               0.5,   1,    2.5,   5,    10};
  impl_->applyDuration->Add({{"chain", chain}}, buckets).Observe(seconds);
}

void AgentMetrics::countError(const std::string& chain, const std::string& reason) {
  impl_->errors->Add({{"chain", chain}, {"reason", reason}}).Increment();
}

void AgentMetrics::setChains(const std::vector<ChainState>& chains) {
  std::map<std::string, int> countsByPhase;
  for (const auto& c : chains)
    ++countsByPhase[c.phase];
  // Every phase the agent reports, always (0 when none), so rate() and alerts see changes.
  for (const char* phase : {"Applying", "Ready", "Idle", "Failed", "Removing"})
    countsByPhase.try_emplace(phase, 0);
  for (const auto& [phase, count] : countsByPhase)
    impl_->chains->Add({{"phase", phase}}).Set(count);
  std::lock_guard lock(impl_->mu);
  impl_->chainStates = chains;
}

void AgentMetrics::observeCni(const std::string& command, const std::string& reason,
                              double seconds) {
  impl_->cniRequests
      ->Add({{"command", command},
             {"result", reason.empty() ? "success" : "error"},
             {"reason", reason}})
      .Increment();
  impl_->cniDuration->Add({{"command", command}}, cniBuckets()).Observe(seconds);
}

std::shared_ptr<k8s::RequestMetrics> AgentMetrics::requestMetrics() const {
  return impl_->requests;
}

void AgentMetrics::setPackageCounters(std::function<PackageCounters()> counters) {
  std::lock_guard lock(impl_->mu);
  impl_->packageCounters = std::move(counters);
}

bool AgentMetrics::isStatsMap(int mapFd) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(mapFd, &info, &len) == 0 &&
         info.type == BPF_MAP_TYPE_PERCPU_ARRAY && info.max_entries == kStatsSlots &&
         info.key_size == 4 && info.value_size == 8;
}

std::vector<std::pair<std::string, uint64_t>> AgentMetrics::verdictCounts(int statsFd,
                                                                          const std::string& hook) {
  std::vector<std::pair<std::string, uint64_t>> counts;
  for (int slot = 0; slot < kStatsSlots; ++slot) {
    __u32 key = slot;
    auto values = readField(statsFd, &key, ValueField{"", 0, 8});
    if (!values)
      continue;
    uint64_t sum = 0;
    for (uint64_t v : *values)
      sum += v;
    if (sum == 0 && slot != 0)
      continue; // verdicts the program never gave
    counts.emplace_back(verdictLabel(hook, slot), sum);
  }
  return counts;
}

Result<std::vector<ValueField>> AgentMetrics::valueFields(int mapFd) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(mapFd, &info, &len) != 0)
    return systemError(errno, "map info");
  auto plain = [&]() -> Result<std::vector<ValueField>> {
    if (info.value_size == 1 || info.value_size == 2 || info.value_size == 4 ||
        info.value_size == 8)
      return std::vector<ValueField>{{"", 0, info.value_size}};
    return invalidError("a value of " + std::to_string(info.value_size) +
                        " bytes without BTF is not a number");
  };
  if (info.btf_id == 0 || info.btf_value_type_id == 0)
    return plain();
  std::unique_ptr<struct btf, decltype(&btf__free)> types(btf__load_from_kernel_by_id(info.btf_id),
                                                          btf__free);
  if (!types)
    return systemError(errno, "load the map's BTF");
  __s32 id = btf__resolve_type(types.get(), info.btf_value_type_id);
  const btf_type* t = id < 0 ? nullptr : btf__type_by_id(types.get(), id);
  if (t && btf_is_int(t))
    return plain();
  if (!t || !btf_is_struct(t))
    return invalidError("value type " + btf::typeName(types.get(), info.btf_value_type_id) +
                        " is neither an integer nor a struct of integers");
  std::vector<ValueField> fields;
  const btf_member* m = btf_members(t);
  for (int i = 0; i < btf_vlen(t); ++i, ++m) {
    __s32 mid = btf__resolve_type(types.get(), m->type);
    const btf_type* mt = mid < 0 ? nullptr : btf__type_by_id(types.get(), mid);
    uint32_t bits = btf_member_bit_offset(t, i);
    if (!mt || !btf_is_int(mt) || btf_member_bitfield_size(t, i) != 0 || bits % 8 != 0)
      continue; // only whole integer members are numbers to export
    fields.push_back({btf__name_by_offset(types.get(), m->name_off), bits / 8, mt->size});
  }
  if (fields.empty())
    return invalidError("value type " + btf::typeName(types.get(), info.btf_value_type_id) +
                        " has no integer member");
  return fields;
}

Result<std::vector<uint8_t>> AgentMetrics::encodeKey(int mapFd, const std::string& text) {
  bpf_map_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(mapFd, &info, &len) != 0)
    return systemError(errno, "map info");
  if (info.btf_id == 0 || info.btf_key_type_id == 0) {
    // Without BTF only a plain number for a 4- or 8-byte key can be understood.
    char* end = nullptr;
    unsigned long long v = std::strtoull(text.c_str(), &end, 0);
    if (end == text.c_str() || *end != '\0' || (info.key_size != 4 && info.key_size != 8))
      return invalidError("key \"" + text + "\": the map has no BTF key type");
    std::vector<uint8_t> key(info.key_size);
    std::memcpy(key.data(), &v, info.key_size);
    return key;
  }
  std::unique_ptr<struct btf, decltype(&btf__free)> types(btf__load_from_kernel_by_id(info.btf_id),
                                                          btf__free);
  if (!types)
    return systemError(errno, "load the map's BTF");
  auto key = btf::parseArgValue(text, "key");
  if (!key)
    return std::move(key).error();
  return btf::encodeValue(types.get(), info.btf_key_type_id, *key, "key");
}

} // namespace bpfchain::agent
