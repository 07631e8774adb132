#include "dataplane/program_spec.h"

#include <memory>
#include <openssl/evp.h>

#include "system/file.h"

namespace bpfchain::dataplane {
namespace {

std::string hex(const unsigned char* bytes, unsigned size) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

} // namespace

Result<std::string> reloadDigest(const ProgramSpec& spec) {
  auto object = readFile(spec.objectPath, kNoSizeLimit);
  if (!object)
    return std::move(object).error();

  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  // Length-prefixed fields, so that no two different specs hash the same bytes.
  auto add = [&](const std::string& field) {
    uint64_t size = field.size();
    EVP_DigestUpdate(ctx.get(), &size, sizeof size);
    EVP_DigestUpdate(ctx.get(), field.data(), field.size());
  };
  add(*object);
  add(spec.entry);
  add(spec.nextMap);
  for (const auto& [name, value] : spec.globalData) {
    add(name);
    add(value);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &size);
  return hex(digest, size);
}

} // namespace bpfchain::dataplane
