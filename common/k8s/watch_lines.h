// A watch response is a stream of JSON events, one a line; the bytes arrive in chunks whose
// boundaries mean nothing. WatchLines takes the chunks as they come and hands out whole lines.
// Reading whole chunks instead of cpprestsdk's read_line (which schedules a task for every few
// bytes) is what keeps a watch of large objects cheap: an operator watching 1,000 nodes'
// statuses reads megabytes per rollout.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace bpfchain::k8s {

class WatchLines {
public:
  void append(std::string_view bytes) { pending_.append(bytes); }
  // The next complete line without its "\n" (and a "\r" before it), or nullopt until more
  // bytes come. Empty lines are skipped.
  std::optional<std::string> next() {
    while (true) {
      size_t end = pending_.find('\n', start_);
      if (end == std::string::npos) {
        pending_.erase(0, start_); // keep only the unfinished line
        start_ = 0;
        return std::nullopt;
      }
      size_t stop = end > start_ && pending_[end - 1] == '\r' ? end - 1 : end;
      std::string line = pending_.substr(start_, stop - start_);
      start_ = end + 1;
      if (!line.empty())
        return line;
    }
  }
  // Bytes of an unfinished line (what a stream that ends now would lose).
  size_t partial() const { return pending_.size() - start_; }

private:
  std::string pending_;
  size_t start_ = 0; // where the next line starts in pending_
};

} // namespace bpfchain::k8s
