// What the API client reports about each request it sends, as client-go's rest client metrics
// (k8s.io/client-go/tools/metrics): the HTTP method, the status code (0 when no response came:
// a transport error, reported as code "<error>" as client-go does) and the time until the
// response's status line arrived (for a watch, the time to establish it). Process-wide, as
// client-go's metrics.Register: every Client of the process reports to the one set here.
// No cpprestsdk here: the binaries include this without the HTTP client.
#pragma once

#include <memory>
#include <string>

namespace bpfchain::k8s {

class RequestMetrics {
public:
  virtual ~RequestMetrics() = default;
  // Thread-safe; called on the requesting thread after each request.
  virtual void observe(const std::string& method, int code, double seconds) = 0;
};

// Installs `metrics` for every Client of the process (null: none). Thread-safe.
void setRequestMetrics(std::shared_ptr<RequestMetrics> metrics);

} // namespace bpfchain::k8s
