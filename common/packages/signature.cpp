#include "packages/signature.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "packages/digest.h"
#include "packages/file_util.h"
#include "system/base64.h"

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
  auto written = writeFileAtomic(privatePemPath, *privatePem, {.mode = 0600, .exclusive = true});
  OPENSSL_cleanse(privatePem->data(), privatePem->size());
  if (!written)
    return written.error();
  return writeFileAtomic(publicPemPath, *publicPem);
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

} // namespace bpfchain::packages
