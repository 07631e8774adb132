#include "packages/signature.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "packages/digest.h"
#include "packages/file_util.h"

namespace bpfchain::packages {
namespace {

constexpr uint64_t kMaxPemBytes = uint64_t{64} << 10;

// "what: <OpenSSL's reason>", and the thread's OpenSSL error queue emptied.
Error opensslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  std::string text = "unknown OpenSSL error";
  if (code != 0) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof buf);
    text = buf;
  }
  ERR_clear_error();
  return invalidError(what + ": " + text);
}

// Never prompt on a terminal for an encrypted key's passphrase.
int noPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
  return 0;
}

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* key) {
  return {key, EVP_PKEY_free};
}

Result<std::string> pemOf(EVP_PKEY* key, bool isPrivate) {
  Bio bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!bio)
    return opensslError("BIO_new");
  int ok = isPrivate
               ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
               : PEM_write_bio_PUBKEY(bio.get(), key);
  if (ok != 1)
    return opensslError("encode key as PEM");
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, static_cast<size_t>(size));
  if (isPrivate)
    OPENSSL_cleanse(data, static_cast<size_t>(size));
  return out;
}

} // namespace

Result<PublicKey> PublicKey::load(const std::string& pemPath) {
  auto pem = readFile(pemPath, kMaxPemBytes);
  if (!pem)
    return pem.error();
  return fromPem(*pem, pemPath);
}

Result<PublicKey> PublicKey::fromPem(std::string_view pem, const std::string& source) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio)
    return opensslError(source);
  EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, noPassphrase, nullptr);
  if (raw == nullptr)
    return opensslError(source + ": not a PEM public key");
  auto key = own(raw);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_ED25519)
    return invalidError(source + ": not an Ed25519 public key");
  unsigned char bytes[32];
  size_t length = sizeof bytes;
  if (EVP_PKEY_get_raw_public_key(raw, bytes, &length) != 1)
    return opensslError(source);
  PublicKey out;
  out.key_ = std::move(key);
  out.fingerprint_ = sha256Hex(std::string_view(reinterpret_cast<char*>(bytes), length));
  out.source_ = source;
  return out;
}

bool PublicKey::verify(std::string_view data, std::string_view signature) const {
  if (signature.size() != kSignatureBytes)
    return false;
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                             data.size()) == 1;
  ERR_clear_error();
  return ok;
}

Result<PrivateKey> PrivateKey::load(const std::string& pemPath) {
  auto pem = readFile(pemPath, kMaxPemBytes);
  if (!pem)
    return pem.error();
  auto key = fromPem(*pem, pemPath);
  OPENSSL_cleanse(pem->data(), pem->size());
  return key;
}

Result<PrivateKey> PrivateKey::fromPem(std::string_view pem, const std::string& source) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (!bio)
    return opensslError(source);
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, nullptr);
  if (raw == nullptr)
    return opensslError(source + ": not an unencrypted PEM private key");
  auto key = own(raw);
  if (EVP_PKEY_get_base_id(raw) != EVP_PKEY_ED25519)
    return invalidError(source + ": not an Ed25519 private key");
  PrivateKey out;
  out.key_ = std::move(key);
  out.source_ = source;
  return out;
}

Result<std::string> PrivateKey::sign(std::string_view data) const {
  MdCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1)
    return opensslError("sign with " + source_);
  std::string signature(kSignatureBytes, '\0');
  size_t length = signature.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1)
    return opensslError("sign with " + source_);
  signature.resize(length);
  return signature;
}

PublicKey PrivateKey::publicKey() const {
  // The public half of a key we hold always encodes; failure would be a bug.
  auto pem = pemOf(key_.get(), false);
  auto key = PublicKey::fromPem(pem.value(), source_);
  return std::move(key).value();
}

Result<void> generateKeyPair(const std::string& privatePemPath, const std::string& publicPemPath) {
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (raw == nullptr)
    return opensslError("generate an Ed25519 key");
  auto key = own(raw);
  auto privatePem = pemOf(raw, true);
  if (!privatePem)
    return privatePem.error();
  auto publicPem = pemOf(raw, false);
  if (!publicPem)
    return publicPem.error();
  auto written = writeFileAtomic(privatePemPath, *privatePem, 0600, true);
  OPENSSL_cleanse(privatePem->data(), privatePem->size());
  if (!written)
    return written.error();
  return writeFileAtomic(publicPemPath, *publicPem, 0644);
}

std::string encodeSignature(std::string_view rawSignature) {
  return base64Encode(rawSignature) + "\n";
}

Result<std::string> decodeSignature(std::string_view text) {
  while (!text.empty() &&
         (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
    text.remove_suffix(1);
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n'))
    text.remove_prefix(1);
  auto raw = base64Decode(text);
  if (!raw)
    return raw.error().context("not a signature");
  if (raw->size() != kSignatureBytes)
    return invalidError("not a signature: " + std::to_string(raw->size()) + " bytes, an Ed25519 " +
                        "signature has " + std::to_string(kSignatureBytes));
  return raw;
}

Result<std::string> signFile(const PrivateKey& key, const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file)
    return file.error();
  auto signature = key.sign(file->data());
  if (!signature)
    return signature.error();
  return encodeSignature(*signature);
}

Result<const PublicKey*> verifySignature(const std::vector<PublicKey>& keys, std::string_view data,
                                         std::string_view signatureText) {
  auto signature = decodeSignature(signatureText);
  if (!signature)
    return signature.error();
  for (const PublicKey& key : keys)
    if (key.verify(data, *signature))
      return &key;
  if (keys.empty())
    return invalidError("no trusted key to verify the signature with");
  return invalidError("no trusted key (of " + std::to_string(keys.size()) +
                      ") verifies the signature");
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}

std::string base64Encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2)
      v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return invalidError("base64: length " + std::to_string(text.size()) +
                        " is not a multiple of 4");
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z')
      return c - 'A';
    if (c >= 'a' && c <= 'z')
      return c - 'a' + 26;
    if (c >= '0' && c <= '9')
      return c - '0' + 52;
    if (c == '+')
      return 62;
    if (c == '/')
      return 63;
    return -1;
  };
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=')
      pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (int j = 0; j < 4; ++j) {
      int d = j >= 4 - pad ? 0 : value(text[i + j]);
      if (d < 0)
        return invalidError("base64: invalid character at offset " + std::to_string(i + j));
      v = (v << 6) | uint32_t(d);
    }
    out += char((v >> 16) & 0xff);
    if (pad < 2)
      out += char((v >> 8) & 0xff);
    if (pad < 1)
      out += char(v & 0xff);
  }
  return out;
}

} // namespace bpfchain::packages
