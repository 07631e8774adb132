// bpfchain-pkg: builds, hashes, signs and verifies bpfchain packages (docs/packages.md).
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <sys/stat.h>
#include <vector>

#include "packages/archive.h"
#include "packages/digest.h"
#include "packages/file_util.h"
#include "packages/manifest.h"
#include "packages/signature.h"
#include "system/log.h"
#include "system/version.h"

namespace {

using namespace bpfchain;
using namespace bpfchain::packages;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr uint64_t kMaxInputBytes = 64ull << 20;

constexpr const char* kUsage = R"(usage: bpfchain-pkg <command> [options]

Builds, hashes, signs and verifies bpfchain packages (.tar.gz with manifest.yaml and BPF objects).

commands:
  build   --name N --version V --program OBJECT:ENTRY:HOOK:NEXTMAP [--program ...]
          [--file EXTRA ...] -o OUT.tar.gz
          writes a deterministic package and prints its sha256
  digest  FILE
          prints the sha256 of FILE
  keygen  --private PRIV.pem --public PUB.pem
          generates an Ed25519 key pair (the private key file gets mode 0600)
  sign    --key PRIV.pem FILE
          writes FILE.sig (base64 Ed25519 signature of FILE's bytes)
  verify  --key PUB.pem [--key ...] FILE [--sha256 HEX]
          checks FILE.sig against the keys (and FILE's sha256); exit 0 when valid, 1 when not

Run 'bpfchain-pkg <command> --help' for a command's details. Exit status: 0 success, 1 failure,
2 usage error.
)";

const std::map<std::string, std::string> kCommandHelp = {
    {"build", R"(usage: bpfchain-pkg build --name N --version V --program OBJECT:ENTRY:HOOK:NEXTMAP
                          [--program ...] [--file EXTRA ...] -o OUT.tar.gz

Writes a package: manifest.yaml and the objects (and extra files) at the archive's root, under
their base names. The archive is deterministic: entries sorted, mtime 0, uid/gid 0, modes
0644 (0755 for executable extra files), so the same inputs give the same sha256, which is
printed on stdout.

  --name N          package name (manifest.yaml name)
  --version V       package version (manifest.yaml version)
  --program SPEC    OBJECT:ENTRY:HOOK:NEXTMAP, repeatable; OBJECT is a BPF ELF object file,
                    ENTRY its program, HOOK xdp | tc-ingress | tc-egress, NEXTMAP the program's
                    1-slot PROG_ARRAY. One object may serve several programs.
  --file EXTRA      an extra file to include (documentation, a license), repeatable
  -o, --output OUT  the archive to write
)"},
    {"digest", R"(usage: bpfchain-pkg digest FILE

Prints the lower-case hex sha256 of FILE (the digest a BpfChain names a package by).
)"},
    {"keygen", R"(usage: bpfchain-pkg keygen --private PRIV.pem --public PUB.pem

Generates an Ed25519 key pair: PRIV.pem (PKCS#8 PEM, mode 0600; an existing file is not
overwritten) and PUB.pem (SubjectPublicKeyInfo PEM, for --trusted-key). Prints the public key's
fingerprint (sha256 of the raw key).
)"},
    {"sign", R"(usage: bpfchain-pkg sign --key PRIV.pem FILE

Writes FILE.sig: one line, the base64 of the 64-byte Ed25519 signature of FILE's bytes. Publish
it next to the package: the agent fetches <url>.sig.
)"},
    {"verify", R"(usage: bpfchain-pkg verify --key PUB.pem [--key ...] FILE [--sha256 HEX]

Checks that FILE.sig is a signature of FILE by one of the keys and, with --sha256, that FILE's
sha256 is HEX. Exit status 0 when it is, 1 when it is not.
)"},
};

struct Args {
  std::map<std::string, std::vector<std::string>> flags;
  std::vector<std::string> positional;
  bool help = false;

  const std::string* one(const std::string& flag) const {
    auto it = flags.find(flag);
    return it == flags.end() || it->second.empty() ? nullptr : &it->second.back();
  }
  std::vector<std::string> all(const std::string& flag) const {
    auto it = flags.find(flag);
    return it == flags.end() ? std::vector<std::string>{} : it->second;
  }
};

struct UsageError {
  std::string message;
};

// --flag VALUE, --flag=VALUE; `aliases` maps short forms ("-o") to flags.
Result<Args, UsageError> parseArgs(int argc, char** argv, int first,
                                   const std::set<std::string>& valueFlags,
                                   const std::map<std::string, std::string>& aliases = {}) {
  Args args;
  bool onlyPositional = false;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (onlyPositional || arg.empty() || arg[0] != '-' || arg == "-") {
      args.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      onlyPositional = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      args.help = true;
      continue;
    }
    std::string name = arg, value;
    bool hasValue = false;
    if (size_t eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    if (auto alias = aliases.find(name); alias != aliases.end())
      name = alias->second;
    if (valueFlags.count(name) == 0)
      return UsageError{"unknown option " + name};
    if (!hasValue) {
      if (i + 1 >= argc)
        return UsageError{name + " needs a value"};
      value = argv[++i];
    }
    args.flags[name].push_back(value);
  }
  return args;
}

int usageError(const std::string& command, const std::string& message) {
  std::cerr << "bpfchain-pkg " << command << ": " << message << "\n"
            << "Run 'bpfchain-pkg " << command << " --help' for usage.\n";
  return kExitUsage;
}

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

int build(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv, 2, {"--name", "--version", "--program", "--file", "--output"},
                          {{"-o", "--output"}});
  if (!parsed)
    return usageError("build", parsed.error().message);
  const Args& args = *parsed;
  if (args.help) {
    std::cout << kCommandHelp.at("build");
    return kExitOk;
  }
  if (!args.positional.empty())
    return usageError("build", "unexpected argument " + args.positional.front());
  for (const char* flag : {"--name", "--version", "--output"})
    if (args.one(flag) == nullptr || args.one(flag)->empty())
      return usageError("build", std::string(flag) + " is required");
  if (args.all("--program").empty())
    return usageError("build", "at least one --program OBJECT:ENTRY:HOOK:NEXTMAP is required");

  Manifest manifest{*args.one("--name"), *args.one("--version"), {}};
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

  for (const std::string& spec : args.all("--program")) {
    // OBJECT may contain ':'; the last three fields never do.
    size_t c3 = spec.rfind(':');
    size_t c2 = c3 == std::string::npos || c3 == 0 ? std::string::npos : spec.rfind(':', c3 - 1);
    size_t c1 = c2 == std::string::npos || c2 == 0 ? std::string::npos : spec.rfind(':', c2 - 1);
    if (c1 == std::string::npos)
      return usageError("build", "--program " + spec + ": expected OBJECT:ENTRY:HOOK:NEXTMAP");
    ManifestProgram p{spec.substr(0, c1), spec.substr(c1 + 1, c2 - c1 - 1),
                      spec.substr(c2 + 1, c3 - c2 - 1), spec.substr(c3 + 1)};
    if (p.object.empty() || p.entry.empty() || p.hook.empty() || p.nextMap.empty())
      return usageError("build", "--program " + spec + ": OBJECT, ENTRY, HOOK and NEXTMAP " +
                                     "must all be given");
    if (!validHook(p.hook))
      return usageError("build", "--program " + spec + ": hook \"" + p.hook +
                                     "\" is not one of xdp, tc-ingress, tc-egress");
    auto name = addFile("--program", p.object, true);
    if (!name)
      return failed("build", name.error().message());
    p.object = *name;
    manifest.programs.push_back(std::move(p));
  }
  for (const std::string& extra : args.all("--file")) {
    auto name = addFile("--file", extra, false);
    if (!name)
      return failed("build", name.error().message());
  }
  ArchiveEntry m;
  m.path = std::string(kManifestFile);
  m.data = manifestYaml(manifest);
  entries.push_back(std::move(m));

  const std::string& out = *args.one("--output");
  if (auto w = writeArchive(out, std::move(entries)); !w)
    return failed("build", w.error().message());
  auto digest = sha256File(out);
  if (!digest)
    return failed("build", digest.error().message());
  std::cout << *digest << "\n";
  return kExitOk;
}

int digest(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv, 2, {});
  if (!parsed)
    return usageError("digest", parsed.error().message);
  if (parsed->help) {
    std::cout << kCommandHelp.at("digest");
    return kExitOk;
  }
  if (parsed->positional.size() != 1)
    return usageError("digest", "expected one FILE");
  auto hex = sha256File(parsed->positional.front());
  if (!hex)
    return failed("digest", hex.error().message());
  std::cout << *hex << "\n";
  return kExitOk;
}

int keygen(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv, 2, {"--private", "--public"});
  if (!parsed)
    return usageError("keygen", parsed.error().message);
  if (parsed->help) {
    std::cout << kCommandHelp.at("keygen");
    return kExitOk;
  }
  if (!parsed->positional.empty())
    return usageError("keygen", "unexpected argument " + parsed->positional.front());
  const std::string* priv = parsed->one("--private");
  const std::string* pub = parsed->one("--public");
  if (priv == nullptr || pub == nullptr)
    return usageError("keygen", "--private and --public are required");
  if (*priv == *pub)
    return usageError("keygen", "--private and --public must be different files");
  if (auto r = generateKeyPair(*priv, *pub); !r)
    return failed("keygen", r.error().message());
  auto key = PublicKey::load(*pub);
  if (!key)
    return failed("keygen", key.error().message());
  std::cout << key->fingerprint() << "\n";
  return kExitOk;
}

int sign(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv, 2, {"--key"});
  if (!parsed)
    return usageError("sign", parsed.error().message);
  if (parsed->help) {
    std::cout << kCommandHelp.at("sign");
    return kExitOk;
  }
  if (parsed->one("--key") == nullptr)
    return usageError("sign", "--key PRIV.pem is required");
  if (parsed->positional.size() != 1)
    return usageError("sign", "expected one FILE");
  const std::string& file = parsed->positional.front();
  auto key = PrivateKey::load(*parsed->one("--key"));
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

int verify(int argc, char** argv) {
  auto parsed = parseArgs(argc, argv, 2, {"--key", "--sha256"});
  if (!parsed)
    return usageError("verify", parsed.error().message);
  if (parsed->help) {
    std::cout << kCommandHelp.at("verify");
    return kExitOk;
  }
  if (parsed->all("--key").empty())
    return usageError("verify", "at least one --key PUB.pem is required");
  if (parsed->positional.size() != 1)
    return usageError("verify", "expected one FILE");
  std::optional<std::string> expected;
  if (const std::string* hex = parsed->one("--sha256")) {
    expected = parseSha256(*hex);
    if (!expected)
      return usageError("verify", "--sha256 " + *hex + ": not 64 hex digits");
  }
  std::vector<PublicKey> keys;
  for (const std::string& path : parsed->all("--key")) {
    auto key = PublicKey::load(path);
    if (!key)
      return failed("verify", "--key " + key.error().message());
    keys.push_back(std::move(*key));
  }
  const std::string& file = parsed->positional.front();
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
  if (answerVersion(argc, argv, "bpfchain-pkg"))
    return 0;
  if (auto logging = log::configureFromArgs(argc, argv); !logging) {
    std::cerr << "bpfchain-pkg: " << logging.error().message() << "\n" << kUsage;
    return kExitUsage;
  }
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsage << "\nflags of every command (failures are log lines on stderr):\n"
              << log::kFlagsUsage;
    return kExitOk;
  }
  if (command == "build")
    return build(argc, argv);
  if (command == "digest")
    return digest(argc, argv);
  if (command == "keygen")
    return keygen(argc, argv);
  if (command == "sign")
    return sign(argc, argv);
  if (command == "verify")
    return verify(argc, argv);
  std::cerr << "bpfchain-pkg: unknown command " << command << "\n" << kUsage;
  return kExitUsage;
}
