// SHA-256 digests as packages are addressed by: lower-case hex.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "system/result.h"

namespace bpfchain::packages {

// An incremental SHA-256 (OpenSSL EVP), for data that arrives in pieces.
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void update(const void* data, size_t size);
  void update(std::string_view data) { update(data.data(), data.size()); }
  // The lower-case hex digest of everything passed to update(); the hasher is then spent.
  std::string hexDigest();

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The lower-case hex SHA-256 of `data`.
std::string sha256Hex(std::string_view data);

// The lower-case hex SHA-256 of a file's contents.
Result<std::string> sha256File(const std::string& path);

// `text` in lower case when it is 64 hex digits (either case), nullopt otherwise.
std::optional<std::string> parseSha256(std::string_view text);

// Lower-case hex of arbitrary bytes.
std::string toHex(std::string_view bytes);

} // namespace bpfchain::packages
