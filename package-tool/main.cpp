// bpfchain-pkg: builds, hashes, signs and verifies bpfchain packages (docs/packages.md).
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "packages/archive.h"
#include "packages/digest.h"
#include "packages/file_util.h"
#include "packages/manifest.h"
#include "packages/signature.h"
#include "system/command_line.h"
#include "system/log.h"

namespace {

using namespace bpfchain;
using namespace bpfchain::packages;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr uint64_t kMaxInputBytes = 64ull << 20;

constexpr const char* kSynopsis =
    "Builds, hashes, signs and verifies bpfchain packages (.tar.gz with manifest.yaml and BPF\n"
    "objects). Run 'bpfchain-pkg <command> --help' for a command's details. Exit status: 0\n"
    "success, 1 failure (a log line on stderr), 2 usage error.\n";

constexpr const char* kBuildHelp =
    R"(Writes a package: manifest.yaml and the objects (and extra files) at the archive's root,
under their base names. The archive is deterministic: entries sorted, mtime 0, uid/gid 0,
modes 0644 (0755 for executable extra files), so the same inputs give the same sha256, which
is printed on stdout. One object may serve several programs.)";

constexpr const char* kDigestHelp =
    "Prints the lower-case hex sha256 of FILE (the digest a BpfChain names a package by).";

constexpr const char* kKeygenHelp =
    R"(Generates an Ed25519 key pair: PRIV.pem (PKCS#8 PEM, mode 0600; an existing file is not
overwritten) and PUB.pem (SubjectPublicKeyInfo PEM, for --trusted-key). Prints the public
key's fingerprint (sha256 of the raw key).)";

constexpr const char* kSignHelp =
    R"(Writes FILE.sig: one line, the base64 of the 64-byte Ed25519 signature of FILE's bytes.
Publish it next to the package: the agent fetches <url>.sig.)";

constexpr const char* kVerifyHelp =
    R"(Checks that FILE.sig is a signature of FILE by one of the keys and, with --sha256, that
FILE's sha256 is HEX. Exit status 0 when it is, 1 when it is not.)";

// Every command's flags; each command reads its own.
struct Args {
  std::string name, version, output, privateKey, publicKey, sha256, file;
  std::vector<std::string> programs, extraFiles, keys;
};

int failed(const std::string& command, const std::string& message) {
  log::error("command failed", {{"command", command}, {"error", message}});
  return kExitFailed;
}

std::string baseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool isElfData(const std::string& data) {
  return data.size() >= 4 && data.compare(0, 4,
                                          "\x7f"
                                          "ELF") == 0;
}

int build(const cli::CommandLine& cl, const Args& args) {
  for (const auto& [flag, value] :
       {std::pair{"--name", &args.name}, {"--version", &args.version}, {"--output", &args.output}})
    if (value->empty())
      return cl.usageError(std::string(flag) + " is required");

  Manifest manifest{args.name, args.version, {}};
  std::map<std::string, std::string> sources; // archive name -> source path
  std::vector<ArchiveEntry> entries;
  auto addFile = [&](const std::string& flag, const std::string& source,
                     bool mustBeElf) -> Result<std::string> {
    std::string name = baseName(source);
    if (name.empty() || name == "." || name == "..")
      return invalidError(flag + " " + source + ": not a file name");
    if (name == kManifestFile)
      return invalidError(flag + " " + source + ": the package's own manifest.yaml is generated");
    if (auto it = sources.find(name); it != sources.end()) {
      if (it->second == source)
        return name;
      return invalidError(flag + " " + source + ": " + it->second + " has the same name " + name);
    }
    struct stat st {};
    if (::stat(source.c_str(), &st) != 0)
      return systemError(errno, flag + " " + source);
    if (!S_ISREG(st.st_mode))
      return invalidError(flag + " " + source + ": not a regular file");
    auto data = readFile(source, kMaxInputBytes);
    if (!data)
      return data.error().context(flag);
    if (mustBeElf && !isElfData(*data))
      return invalidError(flag + " " + source + ": not an ELF object (BPF objects are ELF files)");
    ArchiveEntry e;
    e.path = name;
    e.mode = (st.st_mode & 0111) != 0 && !mustBeElf ? 0755 : 0644;
    e.data = std::move(*data);
    entries.push_back(std::move(e));
    sources.emplace(name, source);
    return name;
  };

  for (const std::string& spec : args.programs) {
    // OBJECT may contain ':'; the last three fields never do.
    size_t c3 = spec.rfind(':');
    size_t c2 = c3 == std::string::npos || c3 == 0 ? std::string::npos : spec.rfind(':', c3 - 1);
    size_t c1 = c2 == std::string::npos || c2 == 0 ? std::string::npos : spec.rfind(':', c2 - 1);
    if (c1 == std::string::npos)
      return cl.usageError("--program " + spec + ": expected OBJECT:ENTRY:HOOK:NEXTMAP");
    ManifestProgram p{spec.substr(0, c1), spec.substr(c1 + 1, c2 - c1 - 1),
                      spec.substr(c2 + 1, c3 - c2 - 1), spec.substr(c3 + 1)};
    if (p.object.empty() || p.entry.empty() || p.hook.empty() || p.nextMap.empty())
      return cl.usageError("--program " + spec + ": OBJECT, ENTRY, HOOK and NEXTMAP " +
                           "must all be given");
    if (!validHook(p.hook))
      return cl.usageError("--program " + spec + ": hook \"" + p.hook +
                           "\" is not one of xdp, tc-ingress, tc-egress");
    auto name = addFile("--program", p.object, true);
    if (!name)
      return failed("build", name.error().message());
    p.object = *name;
    manifest.programs.push_back(std::move(p));
  }
  for (const std::string& extra : args.extraFiles) {
    auto name = addFile("--file", extra, false);
    if (!name)
      return failed("build", name.error().message());
  }
  ArchiveEntry m;
  m.path = std::string(kManifestFile);
  m.data = manifestYaml(manifest);
  entries.push_back(std::move(m));

  const std::string& out = args.output;
  if (auto w = writeArchive(out, std::move(entries)); !w)
    return failed("build", w.error().message());
  auto digest = sha256File(out);
  if (!digest)
    return failed("build", digest.error().message());
  std::cout << *digest << "\n";
  return kExitOk;
}

int digest(const cli::CommandLine& cl, const Args& args) {
  if (args.file.empty())
    return cl.usageError("expected one FILE");
  auto hex = sha256File(args.file);
  if (!hex)
    return failed("digest", hex.error().message());
  std::cout << *hex << "\n";
  return kExitOk;
}

int keygen(const cli::CommandLine& cl, const Args& args) {
  const std::string* priv = &args.privateKey;
  const std::string* pub = &args.publicKey;
  if (*priv == *pub)
    return cl.usageError("--private and --public must be different files");
  if (auto r = generateKeyPair(*priv, *pub); !r)
    return failed("keygen", r.error().message());
  auto key = PublicKey::load(*pub);
  if (!key)
    return failed("keygen", key.error().message());
  std::cout << key->fingerprint() << "\n";
  return kExitOk;
}

int sign(const cli::CommandLine& cl, const Args& args) {
  if (args.file.empty())
    return cl.usageError("expected one FILE");
  const std::string& file = args.file;
  auto key = PrivateKey::load(args.keys.back());
  if (!key)
    return failed("sign", "--key " + key.error().message());
  auto signature = signFile(*key, file);
  if (!signature)
    return failed("sign", signature.error().message());
  std::string sigPath = file + ".sig";
  if (auto w = writeFileAtomic(sigPath, *signature); !w)
    return failed("sign", w.error().message());
  std::cout << sigPath << "\n";
  return kExitOk;
}

int verify(const cli::CommandLine& cl, const Args& args) {
  if (args.file.empty())
    return cl.usageError("expected one FILE");
  std::optional<std::string> expected;
  if (!args.sha256.empty()) {
    expected = parseSha256(args.sha256);
    if (!expected)
      return cl.usageError("--sha256 " + args.sha256 + ": not 64 hex digits");
  }
  std::vector<PublicKey> keys;
  for (const std::string& path : args.keys) {
    auto key = PublicKey::load(path);
    if (!key)
      return failed("verify", "--key " + key.error().message());
    keys.push_back(std::move(*key));
  }
  const std::string& file = args.file;
  auto mapped = MappedFile::open(file);
  if (!mapped)
    return failed("verify", mapped.error().message());
  if (expected) {
    std::string actual = sha256Hex(mapped->data());
    if (actual != *expected)
      return failed("verify", file + ": sha256 is " + actual + ", expected " + *expected);
  }
  std::string sigPath = file + ".sig";
  auto sig = readFile(sigPath, 4096);
  if (!sig)
    return failed("verify", file + ": no signature: " + sig.error().message());
  auto signer = verifySignature(keys, mapped->data(), *sig);
  if (!signer)
    return failed("verify",
                  file + ": signature " + sigPath + " is not valid: " + signer.error().message());
  std::cout << file << ": signature OK (key " << (*signer)->source() << ", fingerprint "
            << (*signer)->fingerprint() << ")" << (expected ? ", sha256 OK" : "") << "\n";
  return kExitOk;
}

} // namespace

int main(int argc, char** argv) {
  cli::CommandLine cl("bpfchain-pkg", kSynopsis);
  CLI::App& app = cl.app();
  app.require_subcommand(1);
  Args args;
  CLI::App* buildApp =
      app.add_subcommand("build", "writes a deterministic package and prints its sha256");
  buildApp->footer(kBuildHelp);
  buildApp->add_option("--name", args.name, "package name (manifest.yaml name)")
      ->type_name("N")
      ->required();
  buildApp->add_option("--version", args.version, "package version (manifest.yaml version)")
      ->type_name("V")
      ->required();
  buildApp
      ->add_option("--program", args.programs,
                   "repeatable; OBJECT is a BPF ELF object file, ENTRY its program, HOOK xdp | "
                   "tc-ingress | tc-egress, NEXTMAP the program's 1-slot PROG_ARRAY")
      ->type_name("OBJECT:ENTRY:HOOK:NEXTMAP")
      ->required();
  buildApp->add_option("--file", args.extraFiles, "an extra file (documentation, a license)")
      ->type_name("EXTRA");
  buildApp->add_option("-o,--output", args.output, "the archive to write")
      ->type_name("OUT.tar.gz")
      ->required();

  CLI::App* digestApp = app.add_subcommand("digest", "prints the sha256 of FILE");
  digestApp->footer(kDigestHelp);
  digestApp->add_option("FILE", args.file, "the file");

  CLI::App* keygenApp = app.add_subcommand("keygen", "generates an Ed25519 key pair");
  keygenApp->footer(kKeygenHelp);
  keygenApp->add_option("--private", args.privateKey, "the private key to write (mode 0600)")
      ->type_name("PRIV.pem")
      ->required();
  keygenApp->add_option("--public", args.publicKey, "the public key to write")
      ->type_name("PUB.pem")
      ->required();

  CLI::App* signApp =
      app.add_subcommand("sign", "writes FILE.sig (base64 Ed25519 signature of FILE's bytes)");
  signApp->footer(kSignHelp);
  signApp->add_option("--key", args.keys, "the private key")->type_name("PRIV.pem")->required();
  signApp->add_option("FILE", args.file, "the file to sign");

  CLI::App* verifyApp = app.add_subcommand(
      "verify", "checks FILE.sig against the keys (and FILE's sha256); exit 0 when valid");
  verifyApp->footer(kVerifyHelp);
  verifyApp->add_option("--key", args.keys, "a public key, repeatable")
      ->type_name("PUB.pem")
      ->required();
  verifyApp->add_option("--sha256", args.sha256, "FILE's expected sha256")->type_name("HEX");
  verifyApp->add_option("FILE", args.file, "the package");
  cl.logFlags();
  if (auto exit = cl.parse(argc, argv))
    return *exit;

  if (buildApp->parsed())
    return build(cl, args);
  if (digestApp->parsed())
    return digest(cl, args);
  if (keygenApp->parsed())
    return keygen(cl, args);
  if (signApp->parsed())
    return sign(cl, args);
  return verify(cl, args);
}
