// Ed25519 package signatures (OpenSSL EVP_PKEY_ED25519).
//
// A package at <url> is signed by <url>.sig: one line, the base64 of the 64-byte raw Ed25519
// signature of the archive's bytes. Keys are PEM files: the private key PKCS#8
// ("BEGIN PRIVATE KEY"), the public key SubjectPublicKeyInfo ("BEGIN PUBLIC KEY"), as
// `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "system/result.h"

struct evp_pkey_st;

namespace bpfchain::packages {

inline constexpr size_t kSignatureBytes = 64;

class PublicKey {
public:
  static Result<PublicKey> load(const std::string& pemPath);
  // `source` names the key in messages (a path).
  static Result<PublicKey> fromPem(std::string_view pem, const std::string& source);

  // Whether `signature` (64 raw bytes) is this key's signature of `data`.
  bool verify(std::string_view data, std::string_view signature) const;

  // The lower-case hex SHA-256 of the 32-byte raw public key: how the cache records a signer.
  const std::string& fingerprint() const { return fingerprint_; }
  const std::string& source() const { return source_; }

private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string fingerprint_;
  std::string source_;
};

class PrivateKey {
public:
  static Result<PrivateKey> load(const std::string& pemPath);
  static Result<PrivateKey> fromPem(std::string_view pem, const std::string& source);

  // The 64-byte raw signature of `data`.
  Result<std::string> sign(std::string_view data) const;
  PublicKey publicKey() const;

private:
  std::shared_ptr<evp_pkey_st> key_;
  std::string source_;
};

// Generates a key pair and writes the private key (mode 0600; an existing file is an error)
// and the public key (mode 0644).
Result<void> generateKeyPair(const std::string& privatePemPath, const std::string& publicPemPath);

// The .sig file text for a raw signature: base64 and a newline.
std::string encodeSignature(std::string_view rawSignature);
// The raw 64-byte signature in a .sig file's text (surrounding white space is ignored).
Result<std::string> decodeSignature(std::string_view text);

// Signs the file's bytes; returns the .sig text.
Result<std::string> signFile(const PrivateKey& key, const std::string& path);

// The first of `keys` that verifies `signatureText` (a .sig file's text) for `data`; an error
// when the text is no signature or no key verifies it.
Result<const PublicKey*> verifySignature(const std::vector<PublicKey>& keys, std::string_view data,
                                         std::string_view signatureText);

} // namespace bpfchain::packages
