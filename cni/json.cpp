#include "cni/json.h"

#include <cstdint>

#include "system/escape.h"

namespace bpfchain::cni::json {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::Bool;
  v.bool_ = b;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::String;
  v.text_ = std::move(s);
  return v;
}

Value Value::number(std::string text) {
  Value v;
  v.type_ = Type::Number;
  v.text_ = std::move(text);
  return v;
}

Value Value::array() {
  Value v;
  v.type_ = Type::Array;
  return v;
}

Value Value::object() {
  Value v;
  v.type_ = Type::Object;
  return v;
}

const Value* Value::find(std::string_view key) const {
  for (const auto& member : members_)
    if (member.key == key)
      return &member.value;
  return nullptr;
}

Value* Value::find(std::string_view key) {
  for (auto& member : members_)
    if (member.key == key)
      return &member.value;
  return nullptr;
}

void Value::set(const std::string& key, Value value) {
  if (Value* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  members_.push_back(Member{key, std::move(value)});
}

bool Value::erase(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->key == key) {
      members_.erase(it);
      return true;
    }
  }
  return false;
}

bool operator==(const Value& a, const Value& b) {
  if (a.type_ != b.type_)
    return false;
  switch (a.type_) {
  case Type::Null:
    return true;
  case Type::Bool:
    return a.bool_ == b.bool_;
  case Type::Number:
  case Type::String:
    return a.text_ == b.text_;
  case Type::Array:
    return a.items_ == b.items_;
  case Type::Object:
    return a.members_ == b.members_;
  }
  return false;
}

class Parser {
public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<Value> document() {
    skipSpace();
    if (pos_ == s_.size())
      return fail("empty document");
    Value v;
    if (!value(v, 0))
      return std::move(error_);
    skipSpace();
    if (pos_ != s_.size())
      return fail("unexpected data after the JSON value");
    return v;
  }

private:
  static constexpr int kMaxDepth = 128;

  Error fail(const std::string& what) const {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return Error(0, "line " + std::to_string(line) + ", column " + std::to_string(column) +
                        " (byte " + std::to_string(pos_) + "): " + what);
  }

  bool setError(const std::string& what) {
    error_ = fail(what);
    return false;
  }

  void skipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool value(Value& v, int depth) {
    if (depth > kMaxDepth)
      return setError("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    if (pos_ == s_.size())
      return setError("unexpected end of the document, expected a value");
    v.begin_ = pos_;
    bool ok = false;
    char c = s_[pos_];
    if (c == '{')
      ok = object(v, depth);
    else if (c == '[')
      ok = array(v, depth);
    else if (c == '"') {
      v.type_ = Type::String;
      ok = string(v.text_);
    } else if (c == '-' || (c >= '0' && c <= '9'))
      ok = number(v);
    else if (c == 't')
      ok = literal("true", v, Type::Bool, true);
    else if (c == 'f')
      ok = literal("false", v, Type::Bool, false);
    else if (c == 'n')
      ok = literal("null", v, Type::Null, false);
    else
      return setError(std::string("unexpected character ") + describe(c) + ", expected a value");
    v.end_ = pos_;
    return ok;
  }

  static std::string describe(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f)
      return std::string("'") + c + "'";
    static const char* hex = "0123456789abcdef";
    return std::string("byte 0x") + hex[u >> 4] + hex[u & 0xf];
  }

  bool literal(std::string_view word, Value& v, Type type, bool b) {
    if (s_.substr(pos_, word.size()) != word)
      return setError("invalid literal, expected '" + std::string(word) + "'");
    pos_ += word.size();
    v.type_ = type;
    v.bool_ = b;
    return true;
  }

  bool digits() {
    size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
      ++pos_;
    return pos_ > start;
  }

  bool number(Value& v) {
    size_t start = pos_;
    if (s_[pos_] == '-')
      ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
      if (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
        return setError("invalid number: leading zero");
    } else if (!digits()) {
      return setError("invalid number: expected a digit");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digits())
        return setError("invalid number: expected a digit after '.'");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'))
        ++pos_;
      if (!digits())
        return setError("invalid number: expected a digit in the exponent");
    }
    v.type_ = Type::Number;
    v.text_ = std::string(s_.substr(start, pos_ - start));
    return true;
  }

  static void appendUtf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool hex4(uint32_t& out) {
    if (s_.size() - pos_ < 4)
      return setError("invalid \\u escape: expected 4 hex digits");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9')
        out |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        out |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        out |= static_cast<uint32_t>(c - 'A' + 10);
      else
        return setError("invalid \\u escape: expected 4 hex digits");
    }
    return true;
  }

  // One UTF-8 sequence starting at pos_ (a byte >= 0x80), validated and copied.
  bool utf8(std::string& out) {
    size_t length = utf8SequenceLength(s_, pos_);
    if (length == 0)
      return setError("invalid UTF-8 in string");
    out.append(s_.substr(pos_, length));
    pos_ += length;
    return true;
  }

  bool string(std::string& out) {
    ++pos_; // '"'
    for (;;) {
      if (pos_ >= s_.size())
        return setError("unterminated string");
      char c = s_[pos_];
      auto u = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (u < 0x20)
        return setError("control character " + describe(c) + " in string (must be escaped)");
      if (u >= 0x80) {
        if (!utf8(out))
          return false;
        continue;
      }
      if (c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size())
        return setError("unterminated string");
      char e = s_[pos_++];
      switch (e) {
      case '"':
      case '\\':
      case '/':
        out += e;
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (!hex4(cp))
          return false;
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return setError("invalid \\u escape: lone low surrogate");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t low = 0;
          if (s_.substr(pos_, 2) != "\\u")
            return setError("invalid \\u escape: high surrogate without a low one");
          pos_ += 2;
          if (!hex4(low))
            return false;
          if (low < 0xdc00 || low > 0xdfff)
            return setError("invalid \\u escape: high surrogate without a low one");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        --pos_;
        return setError("invalid escape \\" + std::string(1, e) + " in string");
      }
    }
  }

  bool array(Value& v, int depth) {
    v.type_ = Type::Array;
    ++pos_; // '['
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      Value& item = v.items_.emplace_back();
      if (!value(item, depth + 1))
        return false;
      skipSpace();
      if (pos_ >= s_.size())
        return setError("unexpected end of the document in array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return setError("expected ',' or ']' in array");
    }
  }

  bool object(Value& v, int depth) {
    v.type_ = Type::Object;
    ++pos_; // '{'
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"')
        return setError("expected a string key in object");
      size_t keyPos = pos_;
      std::string key;
      if (!string(key))
        return false;
      if (v.find(key) != nullptr) {
        pos_ = keyPos;
        return setError("duplicate key \"" + key + "\" in object");
      }
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != ':')
        return setError("expected ':' after object key");
      ++pos_;
      skipSpace();
      Member& member = v.members_.emplace_back();
      member.key = std::move(key);
      if (!value(member.value, depth + 1))
        return false;
      skipSpace();
      if (pos_ >= s_.size())
        return setError("unexpected end of the document in object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      return setError("expected ',' or '}' in object");
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  Error error_;
};

Result<Value> parse(std::string_view text) {
  return Parser(text).document();
}

std::string quote(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

namespace {

void write(std::string& out, const Value& v, int indent, int level) {
  auto newline = [&](int depth) {
    if (indent > 0) {
      out += '\n';
      out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
    }
  };
  switch (v.type()) {
  case Type::Null:
    out += "null";
    return;
  case Type::Bool:
    out += v.asBool() ? "true" : "false";
    return;
  case Type::Number:
    out += v.text();
    return;
  case Type::String:
    out += quote(v.text());
    return;
  case Type::Array: {
    if (v.items().empty()) {
      out += "[]";
      return;
    }
    out += '[';
    bool first = true;
    for (const auto& item : v.items()) {
      if (!first)
        out += ',';
      first = false;
      newline(level + 1);
      write(out, item, indent, level + 1);
    }
    newline(level);
    out += ']';
    return;
  }
  case Type::Object: {
    if (v.members().empty()) {
      out += "{}";
      return;
    }
    out += '{';
    bool first = true;
    for (const auto& member : v.members()) {
      if (!first)
        out += ',';
      first = false;
      newline(level + 1);
      out += quote(member.key);
      out += indent > 0 ? ": " : ":";
      write(out, member.value, indent, level + 1);
    }
    newline(level);
    out += '}';
    return;
  }
  }
}

} // namespace

std::string serialize(const Value& value, int indent) {
  std::string out;
  write(out, value, indent, 0);
  return out;
}

} // namespace bpfchain::cni::json
