// The one logger of every bpfchain binary (the CNI plugin's per-call log file is its own).
//
// A line is a time (RFC 3339 UTC, milliseconds), a level, a message and key=value fields:
//   text: 2026-12-04T21:05:24.123Z INFO applied chain chain=edge generation=3 interface=eth0
//   json: {"ts":"2026-12-04T21:05:24.123Z","level":"info","msg":"applied chain","chain":"edge",...}
// Text quotes a value that is empty or holds a space, '=', '"', a control character or bytes
// that are not UTF-8 (escaped as in JSON, invalid bytes as \xNN); the message is never quoted
// but its control characters are escaped, so one call is always one line. JSON replaces invalid
// UTF-8 with U+FFFD and keeps numbers and booleans unquoted. Field keys are the caller's
// literals (plain identifiers, never ts/level/msg).
//
// Thread-safe: each line is formatted first, then written whole under a lock with write(2)
// (stderr unless Options::fd says otherwise), so lines of concurrent threads never interleave.
// Lines below the configured level cost one atomic load.
#pragma once

#include <chrono>
#include <concepts>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bpfchain::log {

enum class Level { Error, Warning, Info, Debug };
enum class Format { Text, Json };

struct Options {
  Level level = Level::Info;
  Format format = Format::Text;
  int fd = 2; // where lines go
};

// One key=value of a line. The key must outlive the call (a literal).
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), raw(true) {}
  template <std::integral T>
  requires(!std::same_as<T, bool> && !std::same_as<T, char>) Field(std::string_view k, T v)
      : key(k), value(std::to_string(v)), raw(true) {}
  Field(std::string_view k, double v);

  std::string_view key;
  std::string value;
  bool raw = false; // a number or boolean: unquoted in JSON
};

struct Record {
  std::chrono::system_clock::time_point time;
  Level level = Level::Info;
  std::string_view message;
  std::span<const Field> fields;
};

// The line for `record`, with its trailing newline.
std::string formatLine(const Record& record, Format format);

const char* levelName(Level level); // "error", "warning", "info", "debug"
std::optional<Level> parseLevel(std::string_view text);
std::optional<Format> parseFormat(std::string_view text);

void configure(const Options& options);
Options options();
bool enabled(Level level);

void write(Level level, std::string_view message, std::span<const Field> fields);
inline void write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  write(level, message, std::span<const Field>(fields.begin(), fields.size()));
}
inline void error(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::Error, message, fields);
}
inline void warning(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::Warning, message, fields);
}
inline void info(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::Info, message, fields);
}
inline void debug(std::string_view message, std::initializer_list<Field> fields = {}) {
  write(Level::Debug, message, fields);
}

} // namespace bpfchain::log
