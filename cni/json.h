// A small, strict JSON (RFC 8259) parser and serializer for the CNI plugin, which must not link
// cpprest. Strict: one value and nothing but whitespace after it, no comments, no trailing
// commas, no duplicate object keys, valid UTF-8 and escapes (no lone surrogates), a nesting limit.
// Lossless where the plugin needs it:
//   - every parsed value remembers its byte span in the document, so a value (prevResult) can
//     be passed on exactly as it arrived;
//   - objects keep their key order and numbers their original text, so a document that is
//     parsed and serialized again (the installer's conflist edit) changes only its layout.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "system/result.h"

namespace bpfchain::cni::json {

enum class Type { Null, Bool, Number, String, Array, Object };

struct Member;

class Value {
public:
  Value() = default; // null
  static Value boolean(bool b);
  static Value string(std::string s);
  // `text` must be a valid JSON number; it is kept verbatim.
  static Value number(std::string text);
  static Value array();
  static Value object();

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::Null; }
  bool isBool() const { return type_ == Type::Bool; }
  bool isNumber() const { return type_ == Type::Number; }
  bool isString() const { return type_ == Type::String; }
  bool isArray() const { return type_ == Type::Array; }
  bool isObject() const { return type_ == Type::Object; }

  bool asBool() const { return bool_; }
  // The decoded string, or a number's text.
  const std::string& text() const { return text_; }
  const std::vector<Value>& items() const { return items_; }
  std::vector<Value>& items() { return items_; }
  const std::vector<Member>& members() const { return members_; }
  std::vector<Member>& members() { return members_; }

  // Object member `key`, or nullptr (also when this is not an object).
  const Value* find(std::string_view key) const;
  Value* find(std::string_view key);
  // Sets member `key` (replacing its value in place, or appending it). Objects only.
  void set(const std::string& key, Value value);
  // Removes member `key`; returns whether it was there.
  bool erase(std::string_view key);

  // Where a parsed value lies in its document: [begin, end). Zero for built values.
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }

  // Deep equality by content (numbers by their text), ignoring spans.
  friend bool operator==(const Value& a, const Value& b);

private:
  friend class Parser;
  Type type_ = Type::Null;
  bool bool_ = false;
  std::string text_;
  std::vector<Value> items_;
  std::vector<Member> members_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

struct Member {
  std::string key;
  Value value;
  friend bool operator==(const Member& a, const Member& b) = default;
};

// Parses a whole document. Errors say what was wrong and where ("line 3, column 7 (byte 41):
// expected ',' or '}' in object").
Result<Value> parse(std::string_view text);

// Compact ("{"a":1}") when indent is 0; else pretty, `indent` spaces per level, as Go's
// json.MarshalIndent lays it out.
std::string serialize(const Value& value, int indent = 0);

// `s` as a JSON string literal, quotes included.
std::string quote(std::string_view s);

} // namespace bpfchain::cni::json
