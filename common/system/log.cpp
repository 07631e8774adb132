#include "system/log.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "system/escape.h"
#include "system/file.h"
#include "system/time.h"

namespace bpfchain::log {
namespace {

std::atomic<Level> currentLevel{Level::Info};
std::atomic<Format> currentFormat{Format::Text};
std::atomic<int> currentFd{2};
std::mutex writeMu;

constexpr const char* kHex = "0123456789abcdef";

// Text: control characters and bytes that are not UTF-8 escaped, everything else as it is.
// Returns whether anything needs the value quoted.
bool appendTextEscaped(std::string& out, std::string_view text, bool quoteSpecials) {
  bool needsQuotes = false;
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      if (size_t n = utf8SequenceLength(text, i); n > 0) {
        out.append(text, i, n);
        i += n;
      } else {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
        needsQuotes = true;
        ++i;
      }
      continue;
    }
    ++i;
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else if (quoteSpecials && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
      needsQuotes |= c == ' ' || c == '=';
      continue;
    }
    needsQuotes = true;
  }
  return needsQuotes;
}

void appendTextValue(std::string& out, std::string_view value) {
  std::string escaped;
  bool quote = appendTextEscaped(escaped, value, true) || value.empty();
  if (quote)
    out += '"';
  out += escaped;
  if (quote)
    out += '"';
}

// By Level: the JSON name and the text column.
struct LevelNames {
  const char* name;
  const char* column;
};
constexpr LevelNames kLevels[] = {
    {"error", "ERROR"}, {"warning", "WARNING"}, {"info", "INFO"}, {"debug", "DEBUG"}};

} // namespace

Field::Field(std::string_view k, double v) : key(k), raw(std::isfinite(v)) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6g", v);
  value = text;
}

const char* levelName(Level level) {
  return kLevels[static_cast<size_t>(level)].name;
}

std::optional<Level> parseLevel(std::string_view text) {
  for (Level l : {Level::Error, Level::Warning, Level::Info, Level::Debug})
    if (text == levelName(l))
      return l;
  return std::nullopt;
}

std::optional<Format> parseFormat(std::string_view text) {
  if (text == "text")
    return Format::Text;
  if (text == "json")
    return Format::Json;
  return std::nullopt;
}

std::string formatLine(const Record& record, Format format) {
  std::string out;
  std::string ts = rfc3339(record.time, 3);
  if (format == Format::Json) {
    out += "{\"ts\":\"" + ts + "\",\"level\":\"" + levelName(record.level) + "\",\"msg\":";
    appendJsonString(out, record.message);
    for (const Field& f : record.fields) {
      out += ',';
      appendJsonString(out, f.key);
      out += ':';
      if (f.raw)
        out += f.value;
      else
        appendJsonString(out, f.value);
    }
    out += "}\n";
    return out;
  }
  out += ts;
  out += ' ';
  out += kLevels[static_cast<size_t>(record.level)].column;
  out += ' ';
  appendTextEscaped(out, record.message, false);
  for (const Field& f : record.fields) {
    out += ' ';
    out += f.key;
    out += '=';
    appendTextValue(out, f.value);
  }
  out += '\n';
  return out;
}

void configure(const Options& options) {
  currentLevel = options.level;
  currentFormat = options.format;
  currentFd = options.fd;
}

Options options() {
  return {currentLevel.load(), currentFormat.load(), currentFd.load()};
}

bool enabled(Level level) {
  return level <= currentLevel.load(std::memory_order_relaxed);
}

void write(Level level, std::string_view message, std::span<const Field> fields) {
  if (!enabled(level))
    return;
  std::string line =
      formatLine({std::chrono::system_clock::now(), level, message, fields}, currentFormat.load());
  std::lock_guard lock(writeMu);
  (void)writeAll(currentFd.load(), line, "the log"); // nowhere to say it failed
}

} // namespace bpfchain::log
