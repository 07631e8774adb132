// A plain HTTP/1.1 GET over a TCP socket, for tests that read /metrics, /healthz and /readyz.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "system/result.h"

namespace bpfchain::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

Result<HttpResponse> httpGet(const std::string& host, uint16_t port, const std::string& path,
                             int timeoutMs = 5000);

// The value of the first sample of `metric` whose labels include every `label="value"` in
// `labels` (e.g. {"chain=\"edge\"", "map=\"x\""}), parsed from Prometheus text; nullopt if none.
std::optional<double> metricValue(const std::string& text, const std::string& metric,
                                  const std::vector<std::string>& labels = {});

} // namespace bpfchain::testing
