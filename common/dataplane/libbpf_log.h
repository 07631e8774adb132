// libbpf reports through one process-wide print callback; this routes it. While a
// LibbpfLogCapture is alive, what libbpf prints on that thread (the verifier's log among it)
// is collected instead of printed, so that a failed load can carry the log in its error.
// Otherwise each print is a log line (system/log.h) at its level, source=libbpf.
#pragma once

#include <string>

namespace bpfchain::dataplane {

class LibbpfLogCapture {
public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  const std::string& text() const { return text_; }
  // The last lines of the verifier log libbpf printed, or of everything when it printed none.
  std::string verifierLogTail(size_t maxLines = 12) const;

private:
  std::string text_;
  std::string* previous_; // the capture this one nests in
};

} // namespace bpfchain::dataplane
