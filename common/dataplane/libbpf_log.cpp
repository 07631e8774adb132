#include "dataplane/libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <string>

#include "system/log.h"

namespace bpfchain::dataplane {
namespace {

thread_local std::string* currentText = nullptr;

std::string formatted(const char* format, va_list args) {
  va_list copy;
  va_copy(copy, args);
  int size = std::vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (size <= 0)
    return {};
  std::string out(static_cast<size_t>(size), '\0');
  std::vsnprintf(out.data(), out.size() + 1, format, args);
  return out;
}

// While a capture is active (a load whose verifier log goes into an error), everything goes
// into it; otherwise libbpf's lines are log lines at its level.
int print(libbpf_print_level level, const char* format, va_list args) {
  if (currentText) {
    *currentText += formatted(format, args);
    return 0;
  }
  log::Level as = level == LIBBPF_WARN   ? log::Level::Warning
                  : level == LIBBPF_INFO ? log::Level::Info
                                         : log::Level::Debug;
  if (!log::enabled(as))
    return 0;
  std::string text = formatted(format, args);
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  log::write(as, text, {{"source", "libbpf"}});
  return 0;
}

void installPrinter() {
  static const bool installed = [] {
    libbpf_set_print(print);
    return true;
  }();
  (void)installed;
}

} // namespace

LibbpfLogCapture::LibbpfLogCapture() : previous_(currentText) {
  installPrinter();
  currentText = &text_;
}

LibbpfLogCapture::~LibbpfLogCapture() {
  currentText = previous_;
}

std::string LibbpfLogCapture::verifierLogTail(size_t maxLines) const {
  std::string_view log = text_;
  auto begin = log.find("-- BEGIN PROG LOAD LOG --");
  if (begin != std::string_view::npos) {
    log.remove_prefix(log.find('\n', begin) + 1);
    log = log.substr(0, log.find("-- END PROG LOAD LOG --"));
  }
  while (!log.empty() && log.back() == '\n')
    log.remove_suffix(1);
  size_t at = log.size();
  for (size_t lines = 0; at > 0 && lines < maxLines; ++lines) {
    at = log.rfind('\n', at - 1);
    if (at == std::string_view::npos) {
      at = 0;
      break;
    }
  }
  if (at > 0)
    ++at;
  return std::string(log.substr(at));
}

} // namespace bpfchain::dataplane
