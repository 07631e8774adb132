// common/packages and bpfchain-pkg: archives (round trip, hostile and corrupt input), digests,
// signatures, file:// and http:// fetching (a real python3 http.server on loopback), the cache.
#include <arpa/inet.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "harness/process.h"
#include "harness/resources.h"
#include "packages/archive.h"
#include "packages/digest.h"
#include "packages/fetch.h"
#include "packages/file_util.h"
#include "packages/manifest.h"
#include "packages/package_cache.h"
#include "packages/signature.h"
#include "system/base64.h"
#include "system/fd.h"

namespace bpfchain::packages {
namespace {

namespace fs = std::filesystem;
using bpfchain::testing::ChildProcess;
using bpfchain::testing::runCommand;
using bpfchain::testing::TempDir;

const std::string kPython = "/usr/bin/python3";

TempDir makeTemp() {
  auto dir = TempDir::create("pkg");
  if (!dir)
    throw std::runtime_error(dir.error().message());
  return std::move(*dir);
}

std::string slurp(const std::string& path) {
  auto data = readFile(path, 1ull << 30);
  EXPECT_TRUE(data.ok()) << data.error().message();
  return data.ok() ? *data : "";
}

void spit(const std::string& path, std::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

const std::string& counterObject() {
  static const std::string data = slurp(COUNTER_OBJECT);
  return data;
}

ArchiveEntry fileEntry(std::string path, std::string data, uint32_t mode = 0644) {
  ArchiveEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
ArchiveEntry dirEntry(std::string path) {
  ArchiveEntry e;
  e.path = std::move(path);
  e.type = EntryType::Directory;
  e.mode = 0755;
  return e;
}
ArchiveEntry linkEntry(EntryType type, std::string path, std::string target) {
  ArchiveEntry e;
  e.path = std::move(path);
  e.type = type;
  e.linkTarget = std::move(target);
  e.mode = 0777;
  return e;
}

void writeTarGz(const std::string& path, const std::vector<ArchiveEntry>& entries,
                LongNames longNames = LongNames::Pax) {
  spit(path, gzipCompress(encodeTar(entries, longNames)));
}

// Every path below `root`, relative, symlinks not followed.
std::set<std::string> listTree(const std::string& root) {
  std::set<std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it)
    out.insert(fs::relative(it->path(), root).string());
  return out;
}

std::string manifestText(const std::string& object = "counter.bpf.o") {
  return "name: counter\nversion: 1.2.3\nprograms:\n"
         "  - object: " +
         object +
         "\n    entry: counter_xdp\n    hook: xdp\n    nextMap: counter_xdp_next\n"
         "  - object: " +
         object + "\n    entry: counter_tc\n    hook: tc-ingress\n    nextMap: counter_tc_next\n";
}

// A valid package at `path`; returns its sha256.
std::string writeCounterPackage(const std::string& path, const std::string& version = "1.2.3") {
  std::string manifest = manifestText();
  manifest.replace(manifest.find("1.2.3"), 5, version);
  auto w = writeArchive(
      path, {fileEntry("manifest.yaml", manifest), fileEntry("counter.bpf.o", counterObject())});
  EXPECT_TRUE(w.ok()) << w.error().message();
  return sha256File(path).value();
}

std::string fileUrl(const std::string& path) {
  return "file://" + path;
}

// ---------------------------------------------------------------------------------------------
// Digests and signatures

TEST(PackageDigest, KnownVectorsAndParsing) {
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir tmp = makeTemp();
  spit(tmp.path() + "/f", "abc");
  EXPECT_EQ(sha256File(tmp.path() + "/f").value(), sha256Hex("abc"));
  EXPECT_FALSE(sha256File(tmp.path() + "/missing").ok());
  EXPECT_EQ(parseSha256("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"),
            sha256Hex("abc"));
  EXPECT_FALSE(parseSha256("abc").has_value());
  EXPECT_FALSE(parseSha256(std::string(63, 'a') + "g").has_value());
}

TEST(PackageSignature, Base64RoundTripAndStrictness) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"})
    EXPECT_EQ(base64Decode(base64Encode(s)).value(), s);
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(base64Decode("Zm9").ok());
  EXPECT_FALSE(base64Decode("Zm9*").ok());
  EXPECT_FALSE(decodeSignature(base64Encode(std::string(63, 'x'))).ok());
}

TEST(PackageSignature, SignVerifyAndWrongKey) {
  TempDir tmp = makeTemp();
  std::string a = tmp.path() + "/a", b = tmp.path() + "/b";
  ASSERT_TRUE(generateKeyPair(a + ".key", a + ".pub").ok());
  ASSERT_TRUE(generateKeyPair(b + ".key", b + ".pub").ok());
  struct stat st {};
  ASSERT_EQ(::stat((a + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // An existing private key is never overwritten.
  EXPECT_FALSE(generateKeyPair(a + ".key", a + ".pub2").ok());

  spit(tmp.path() + "/data", "package bytes");
  auto privA = PrivateKey::load(a + ".key");
  ASSERT_TRUE(privA.ok()) << privA.error().message();
  auto sig = signFile(*privA, tmp.path() + "/data");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(sig->back(), '\n');
  EXPECT_EQ(sig->size(), 89u); // 88 base64 characters and a newline

  std::vector<PublicKey> keys{PublicKey::load(b + ".pub").value(),
                              PublicKey::load(a + ".pub").value()};
  auto signer = verifySignature(keys, "package bytes", *sig);
  ASSERT_TRUE(signer.ok()) << signer.error().message();
  EXPECT_EQ((*signer)->source(), a + ".pub");
  EXPECT_EQ((*signer)->fingerprint(), privA->publicKey().fingerprint());
  EXPECT_FALSE(verifySignature(keys, "package bytez", *sig).ok());
  EXPECT_FALSE(verifySignature({keys[0]}, "package bytes", *sig).ok());
  EXPECT_FALSE(verifySignature(keys, "package bytes", "not a signature").ok());

  // A private key is no public key, and the reverse.
  EXPECT_FALSE(PublicKey::load(a + ".key").ok());
  EXPECT_FALSE(PrivateKey::load(a + ".pub").ok());
}

TEST(PackageSignature, InteroperatesWithOpenSslCommandLine) {
  TempDir tmp = makeTemp();
  std::string key = tmp.path() + "/k.pem", pub = tmp.path() + "/p.pem", data = tmp.path() + "/d";
  auto gen = runCommand({"openssl", "genpkey", "-algorithm", "ed25519", "-out", key});
  if (!gen.ok() || gen->exitCode != 0)
    FAIL() << "the openssl command line (scripts/deps.sh installs it) failed";
  ASSERT_EQ(runCommand({"openssl", "pkey", "-in", key, "-pubout", "-out", pub})->exitCode, 0);
  spit(data, "archive");
  auto raw = runCommand({"openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", data});
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->exitCode, 0) << raw->err;
  auto keys = std::vector<PublicKey>{PublicKey::load(pub).value()};
  EXPECT_TRUE(verifySignature(keys, "archive", encodeSignature(raw->out)).ok());
  // Ed25519 signatures are deterministic: ours are byte for byte OpenSSL's.
  EXPECT_EQ(signFile(PrivateKey::load(key).value(), data).value(), encodeSignature(raw->out));
}

// ---------------------------------------------------------------------------------------------
// Archives

TEST(PackageArchive, RoundTripThroughWriteReadAndExtract) {
  TempDir tmp = makeTemp();
  std::string longDir = std::string(120, 'd');
  std::string longName = longDir + "/" + std::string(130, 'n'); // no ustar split: pax path
  std::string binary;
  for (int i = 0; i < 3000; ++i)
    binary += static_cast<char>(i * 7);
  std::vector<ArchiveEntry> entries = {
      fileEntry("z.bin", binary),
      fileEntry("bin/tool", "#!/bin/sh\n", 0775),
      dirEntry("empty"),
      fileEntry("sub/dir/file.txt", "text"),
      linkEntry(EntryType::Symlink, "sub/link", "dir/file.txt"),
      linkEntry(EntryType::Symlink, "longlink", longName),
      linkEntry(EntryType::Hardlink, "hard2", "./hard"), // resolved to z.bin by the writer
      linkEntry(EntryType::Hardlink, "hard", "z.bin"),
      fileEntry(longName, "long"),
      fileEntry("./dot/file", ""),
  };
  std::string archive = tmp.path() + "/a.tar.gz";
  ASSERT_TRUE(writeArchive(archive, entries).ok());

  auto read = readArchive(archive);
  ASSERT_TRUE(read.ok()) << read.error().error.message();
  std::vector<std::string> paths;
  for (const ArchiveEntry& e : *read) {
    paths.push_back(e.path);
    EXPECT_EQ(e.mtime, 0u);
    EXPECT_EQ(e.uid, 0u);
  }
  // Sorted by path, hard links last (after their targets).
  std::vector<std::string> expected = {"bin/tool", "dot/file",         longName,   "empty/",
                                       "longlink", "sub/dir/file.txt", "sub/link", "z.bin"};
  std::sort(expected.begin(), expected.end(), [](std::string a, std::string b) {
    if (a.back() == '/')
      a.pop_back();
    if (b.back() == '/')
      b.pop_back();
    return a < b;
  });
  expected.emplace_back("hard");
  expected.emplace_back("hard2");
  EXPECT_EQ(paths, expected);
  for (const ArchiveEntry& e : *read) {
    if (e.path == "z.bin") {
      EXPECT_EQ(e.data, binary);
    } else if (e.path == "bin/tool") {
      EXPECT_EQ(e.mode, 0755u);
    } else if (e.path == "longlink") {
      EXPECT_EQ(e.linkTarget, longName);
    }
  }

  std::string target = tmp.path() + "/x";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  auto extracted = extractArchive(archive, target);
  ASSERT_TRUE(extracted.ok()) << extracted.error().error.message();
  EXPECT_EQ(extracted->size(), entries.size());
  EXPECT_EQ(slurp(target + "/z.bin"), binary);
  EXPECT_EQ(slurp(target + "/" + longName), "long");
  EXPECT_EQ(slurp(target + "/sub/link"), "text");
  EXPECT_EQ(fs::read_symlink(target + "/longlink").string(), longName);
  struct stat a {
  }, b{}, tool{}, plain{};
  ASSERT_EQ(::stat((target + "/hard").c_str(), &a), 0);
  ASSERT_EQ(::stat((target + "/z.bin").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ASSERT_EQ(::stat((target + "/hard2").c_str(), &a), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  ASSERT_EQ(::stat((target + "/bin/tool").c_str(), &tool), 0);
  EXPECT_EQ(tool.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((target + "/sub/dir/file.txt").c_str(), &plain), 0);
  EXPECT_EQ(plain.st_mode & 07777, 0644u);
  EXPECT_TRUE(fs::is_directory(target + "/empty"));
}

TEST(PackageArchive, WriteIsDeterministic) {
  TempDir tmp = makeTemp();
  std::vector<ArchiveEntry> entries = {fileEntry("b", "2"), fileEntry("a", "1"),
                                       fileEntry("c/d", "3")};
  entries[0].mtime = 12345;
  entries[0].uid = 1000;
  ASSERT_TRUE(writeArchive(tmp.path() + "/1.tar.gz", entries).ok());
  std::reverse(entries.begin(), entries.end());
  entries[2].mtime = 999;
  ASSERT_TRUE(writeArchive(tmp.path() + "/2.tar.gz", entries).ok());
  EXPECT_EQ(slurp(tmp.path() + "/1.tar.gz"), slurp(tmp.path() + "/2.tar.gz"));
}

TEST(PackageArchive, WriteRefusesWhatExtractionWould) {
  TempDir tmp = makeTemp();
  std::string out = tmp.path() + "/a.tar.gz";
  EXPECT_FALSE(writeArchive(out, {fileEntry("/abs", "")}).ok());
  EXPECT_FALSE(writeArchive(out, {fileEntry("a/../../b", "")}).ok());
  EXPECT_FALSE(writeArchive(out, {fileEntry("a", ""), fileEntry("./a", "")}).ok());
  ArchiveEntry dev = linkEntry(EntryType::CharDevice, "null", "");
  EXPECT_FALSE(writeArchive(out, {dev}).ok());
  EXPECT_FALSE(writeArchive(out, {linkEntry(EntryType::Hardlink, "h", "missing")}).ok());
  EXPECT_FALSE(writeArchive(out, {dirEntry("d"), linkEntry(EntryType::Hardlink, "h", "d")}).ok());
  EXPECT_FALSE(fs::exists(out));
}

TEST(PackageArchive, GnuLongNamesAndPythonTarfileInterop) {
  TempDir tmp = makeTemp();
  std::string longName = std::string(150, 'g') + "/" + std::string(140, 'h');
  std::string longTarget = std::string(200, 't');
  std::string ours = tmp.path() + "/gnu.tar.gz";
  writeTarGz(ours, {fileEntry(longName, "gnu"), linkEntry(EntryType::Symlink, "l", longTarget)},
             LongNames::Gnu);
  auto read = readArchive(ours);
  ASSERT_TRUE(read.ok()) << read.error().error.message();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].path, longName);
  EXPECT_EQ((*read)[0].data, "gnu");
  EXPECT_EQ((*read)[1].linkTarget, longTarget);

  // Python reads both of our formats ...
  std::string pax = tmp.path() + "/pax.tar.gz";
  writeTarGz(pax, {fileEntry(longName, "pax")}, LongNames::Pax);
  for (const std::string& archive : {ours, pax}) {
    auto listed = runCommand({kPython, "-c",
                              "import sys, tarfile\n"
                              "print(tarfile.open(sys.argv[1]).getnames()[0])",
                              archive});
    ASSERT_TRUE(listed.ok());
    EXPECT_EQ(listed->out, longName + "\n") << listed->err;
  }
  // ... and we read Python's.
  for (const char* format : {"GNU_FORMAT", "PAX_FORMAT", "USTAR_FORMAT"}) {
    std::string archive = tmp.path() + "/py-" + format + ".tar.gz";
    std::string name = std::string(format) == "USTAR_FORMAT" ? "short/name" : longName;
    auto made = runCommand({kPython, "-c",
                            "import io, sys, tarfile\n"
                            "t = tarfile.open(sys.argv[1], 'w:gz', format=getattr(tarfile, "
                            "sys.argv[2]))\n"
                            "i = tarfile.TarInfo(sys.argv[3]); d = b'python'; i.size = len(d)\n"
                            "t.addfile(i, io.BytesIO(d)); t.close()",
                            archive, format, name});
    ASSERT_TRUE(made.ok());
    ASSERT_EQ(made->exitCode, 0) << made->err;
    auto entries = readArchive(archive);
    ASSERT_TRUE(entries.ok()) << format << ": " << entries.error().error.message();
    ASSERT_EQ(entries->size(), 1u);
    EXPECT_EQ((*entries)[0].path, name);
    EXPECT_EQ((*entries)[0].data, "python");
  }
}

// One hostile archive: its entries (given the test's temporary directory), and limits.
struct UnsafeCase {
  std::string name;
  std::function<std::vector<ArchiveEntry>(const std::string& tmp)> entries;
  std::string message; // expected in the error
  ArchiveLimits limits{};
};

void PrintTo(const UnsafeCase& c, std::ostream* os) {
  *os << c.name;
}

class PackageArchiveUnsafe : public ::testing::TestWithParam<UnsafeCase> {};

TEST_P(PackageArchiveUnsafe, IsRefusedAndWritesNothingOutside) {
  const UnsafeCase& c = GetParam();
  TempDir tmp = makeTemp();
  std::string target = tmp.path() + "/target", outside = tmp.path() + "/outside";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  spit(outside + "/secret", "secret");
  std::string archive = tmp.path() + "/archive.tar.gz";
  writeTarGz(archive, c.entries(tmp.path()));
  std::string passwd = slurp("/etc/passwd");
  std::set<std::string> before = listTree(tmp.path());

  auto result = extractArchive(archive, target, c.limits);
  ASSERT_FALSE(result.ok()) << c.name << " was extracted";
  EXPECT_EQ(result.error().reason, kArchiveUnsafe) << result.error().error.message();
  EXPECT_NE(result.error().error.message().find(c.message), std::string::npos)
      << result.error().error.message();
  EXPECT_NE(result.error().error.message().find(archive), std::string::npos);

  // Nothing outside the target changed.
  std::set<std::string> after;
  for (const std::string& p : listTree(tmp.path()))
    if (!p.starts_with("target/"))
      after.insert(p);
  EXPECT_EQ(after, before);
  EXPECT_EQ(slurp(outside + "/secret"), "secret");
  struct stat st {};
  ASSERT_EQ(::stat((outside + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(slurp("/etc/passwd"), passwd);
}

ArchiveEntry device(EntryType type, std::string path) {
  ArchiveEntry e = linkEntry(type, std::move(path), "");
  e.devMajor = 1;
  e.devMinor = 3;
  e.mode = 0666;
  return e;
}

std::vector<UnsafeCase> unsafeCases() {
  using V = std::vector<ArchiveEntry>;
  return {
      {"AbsolutePath",
       [](const std::string& tmp) { return V{fileEntry(tmp + "/outside/abs", "x")}; },
       "absolute path"},
      {"DotDot", [](const std::string&) { return V{fileEntry("../x", "x")}; }, "\"..\""},
      {"DotDotInside",
       [](const std::string&) {
         return V{fileEntry("a/b", "ok"), fileEntry("a/../../x", "x")};
       },
       "\"..\""},
      {"SymlinkToEtcPasswd",
       [](const std::string&) {
         return V{linkEntry(EntryType::Symlink, "passwd", "/etc/passwd"),
                  fileEntry("passwd", "pwned")};
       },
       "points outside the package"},
      {"SymlinkOutThenFileThroughIt",
       [](const std::string&) {
         return V{linkEntry(EntryType::Symlink, "out", "../outside"),
                  fileEntry("out/pwned", "pwned")};
       },
       "points outside the package"},
      {"SymlinkChainEscaping",
       // d/l -> s/../../outside looks like "outside" inside the tree, but d/s -> .. (added
       // after it) makes it ../outside: only resolving through the archive's links sees it.
       [](const std::string&) {
         return V{dirEntry("d"), linkEntry(EntryType::Symlink, "d/l", "s/../../outside"),
                  linkEntry(EntryType::Symlink, "d/s", "..")};
       },
       "points outside the package"},
      {"SymlinkChainThroughAnother",
       // Both look inside on their own: a -> up/x/../.. is the root, up -> dir/.. too. But up
       // is a link to the root, so a is the root's parent.
       [](const std::string&) {
         return V{dirEntry("dir"), linkEntry(EntryType::Symlink, "a", "up/x/../.."),
                  linkEntry(EntryType::Symlink, "up", "dir/..")};
       },
       "points outside the package"},
      {"SymlinkLoop",
       [](const std::string&) {
         return V{linkEntry(EntryType::Symlink, "a", "b/x"),
                  linkEntry(EntryType::Symlink, "b", "a/y")};
       },
       "loop"},
      {"HardlinkOut",
       [](const std::string&) {
         return V{linkEntry(EntryType::Hardlink, "h", "../outside/secret")};
       },
       "\"..\""},
      {"HardlinkAbsolute",
       [](const std::string& tmp) {
         return V{linkEntry(EntryType::Hardlink, "h", tmp + "/outside/secret")};
       },
       "absolute path"},
      {"HardlinkToLaterEntry",
       [](const std::string&) {
         return V{linkEntry(EntryType::Hardlink, "h", "f"), fileEntry("f", "x")};
       },
       "not an earlier file"},
      {"HardlinkThroughSymlink",
       [](const std::string&) {
         return V{linkEntry(EntryType::Symlink, "s", "../outside"),
                  linkEntry(EntryType::Hardlink, "h", "s/secret")};
       },
       "not an earlier file"},
      {"CharDevice", [](const std::string&) { return V{device(EntryType::CharDevice, "null")}; },
       "device nodes"},
      {"BlockDevice", [](const std::string&) { return V{device(EntryType::BlockDevice, "sda")}; },
       "device nodes"},
      {"Fifo", [](const std::string&) { return V{device(EntryType::Fifo, "fifo")}; }, "fifos"},
      {"DuplicateFile",
       [](const std::string&) {
         return V{fileEntry("f", "1"), fileEntry("./f", "2")};
       },
       "duplicate"},
      {"TooManyEntries",
       [](const std::string&) {
         V v;
         for (int i = 0; i < 6; ++i)
           v.push_back(fileEntry("f" + std::to_string(i), "x"));
         return v;
       },
       "more than 5 entries", ArchiveLimits{1 << 20, 5}},
      {"FileTooLarge",
       [](const std::string&) { return V{fileEntry("big", std::string(2000, 'b'))}; },
       "more than 1000 bytes", ArchiveLimits{1000, 100}},
      {"FilesTooLargeTogether",
       [](const std::string&) {
         return V{fileEntry("a", std::string(600, 'a')), fileEntry("b", std::string(600, 'b'))};
       },
       "more than 1000 bytes", ArchiveLimits{1000, 100}},
  };
}

INSTANTIATE_TEST_SUITE_P(Hostile, PackageArchiveUnsafe, ::testing::ValuesIn(unsafeCases()),
                         [](const auto& info) { return info.param.name; });

TEST(PackageArchive, InsideSymlinksAndHardlinksAreAccepted) {
  TempDir tmp = makeTemp();
  std::string archive = tmp.path() + "/a.tar.gz", target = tmp.path() + "/t";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  writeTarGz(archive,
             {fileEntry("lib/v1/prog.o", "elf"), linkEntry(EntryType::Symlink, "lib/current", "v1"),
              linkEntry(EntryType::Symlink, "prog.o", "lib/current/prog.o"),
              linkEntry(EntryType::Symlink, "lib/v1/up", "../../lib/./v1/.."),
              linkEntry(EntryType::Hardlink, "copy.o", "./lib/v1/prog.o")});
  auto result = extractArchive(archive, target);
  ASSERT_TRUE(result.ok()) << result.error().error.message();
  EXPECT_EQ(slurp(target + "/prog.o"), "elf");
  EXPECT_EQ(slurp(target + "/copy.o"), "elf");
}

TEST(PackageArchive, DecompressionBombIsCut) {
  TempDir tmp = makeTemp();
  std::string archive = tmp.path() + "/bomb.tar.gz", target = tmp.path() + "/t";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  // A tiny archive whose end-of-archive is followed by 64 MiB of zeros (compresses ~1000:1).
  std::string tar = encodeTar({fileEntry("f", "x")});
  tar.append(64u << 20, '\0');
  spit(archive, gzipCompress(tar));
  EXPECT_LT(fs::file_size(archive), 1u << 20);
  auto result = extractArchive(archive, target, ArchiveLimits{1000, 10});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, kArchiveUnsafe);
  EXPECT_NE(result.error().error.message().find("decompresses to more than"), std::string::npos)
      << result.error().error.message();
}

struct CorruptCase {
  std::string name;
  std::function<std::string()> bytes; // the whole .tar.gz file
  std::string message;
};

void PrintTo(const CorruptCase& c, std::ostream* os) {
  *os << c.name;
}

class PackageArchiveCorrupt : public ::testing::TestWithParam<CorruptCase> {};

TEST_P(PackageArchiveCorrupt, IsArchiveCorrupt) {
  const CorruptCase& c = GetParam();
  TempDir tmp = makeTemp();
  std::string archive = tmp.path() + "/c.tar.gz", target = tmp.path() + "/t";
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  spit(archive, c.bytes());
  auto extracted = extractArchive(archive, target);
  ASSERT_FALSE(extracted.ok());
  EXPECT_EQ(extracted.error().reason, kArchiveCorrupt) << extracted.error().error.message();
  EXPECT_NE(extracted.error().error.message().find(c.message), std::string::npos)
      << extracted.error().error.message();
  auto read = readArchive(archive);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().reason, kArchiveCorrupt);
}

std::string sampleTar() {
  return encodeTar({fileEntry("a", std::string(5000, 'a')), fileEntry("b", "b")});
}

std::vector<CorruptCase> corruptCases() {
  return {
      {"Empty", [] { return std::string(); }, "empty file"},
      {"NotGzip", [] { return std::string("this is not gzip data at all"); }, "not valid gzip"},
      {"UncompressedTar", [] { return sampleTar(); }, "not valid gzip"},
      {"TruncatedGzip",
       [] {
         std::string gz = gzipCompress(sampleTar());
         return gz.substr(0, gz.size() / 2);
       },
       "truncated"},
      {"FlippedByteInGzip",
       [] {
         std::string gz = gzipCompress(sampleTar());
         gz[gz.size() - 6] ^= 0x55; // the CRC-32 of the trailer
         return gz;
       },
       "not valid gzip"},
      {"TrailingGarbage", [] { return gzipCompress(sampleTar()) + "garbage!"; }, "not valid gzip"},
      {"TruncatedTarInData", [] { return gzipCompress(sampleTar().substr(0, 512 + 1000)); },
       "truncated"},
      {"TarWithoutEndMarker",
       [] {
         std::string tar = sampleTar();
         return gzipCompress(tar.substr(0, tar.size() - 1024));
       },
       "end-of-archive"},
      {"BadHeaderChecksum",
       [] {
         std::string tar = sampleTar();
         tar[0] = 'z'; // the first entry's name, without fixing the checksum
         return gzipCompress(tar);
       },
       "checksum"},
      {"BadSizeField",
       [] {
         std::string tar = encodeTar({fileEntry("a", "x")});
         std::memcpy(tar.data() + 124, "99999999999", 11); // '9' is no octal digit
         unsigned sum = 0;
         for (size_t i = 0; i < 512; ++i)
           sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(tar[i]);
         std::snprintf(tar.data() + 148, 8, "%06o", sum);
         return gzipCompress(tar);
       },
       "size field"},
      {"MalformedPaxRecord",
       [] {
         std::string tar = encodeTar({fileEntry(std::string(300, 'p'), "x")});
         // The pax record "NNN path=ppp...\n": make its length a lie.
         std::memcpy(tar.data() + 512, "999", 3);
         return gzipCompress(tar);
       },
       "pax header"},
  };
}

INSTANTIATE_TEST_SUITE_P(Broken, PackageArchiveCorrupt, ::testing::ValuesIn(corruptCases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Manifests

TEST(PackageManifest, ParsesAndNormalizes) {
  auto m = parseManifest(manifestText("./objs/counter.bpf.o") + "maps:\n  - name: x\nextra: 1\n",
                         "manifest.yaml");
  ASSERT_TRUE(m.ok()) << m.error().error.message();
  EXPECT_EQ(m->name, "counter");
  EXPECT_EQ(m->version, "1.2.3");
  ASSERT_EQ(m->programs.size(), 2u);
  EXPECT_EQ(m->programs[0].object, "objs/counter.bpf.o");
  EXPECT_EQ(m->programs[1].hook, "tc-ingress");
  EXPECT_EQ(m->programs[1].nextMap, "counter_tc_next");
  // What bpfchain-pkg writes reads back the same.
  auto again = parseManifest(manifestYaml(*m), "again");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->programs[1].entry, "counter_tc");
}

// Found by fuzz/manifest_fuzz.cpp: a version holding bytes that are not UTF-8 parsed, and
// manifestYaml then wrote a manifest that did not read back.
TEST(PackageManifest, RefusesFieldsThatAreNotPrintableUtf8) {
  // As YAML source: raw bytes that are not UTF-8 (a truncated sequence, an overlong form), and
  // control characters written as YAML escapes.
  for (const std::string& bad : {std::string("\"1.0\x9f\x95\""), std::string("\"1.0\xc0\xaf\""),
                                 std::string("\"1.0\\x01\""), std::string("\"1.0\\x7f\"")}) {
    std::string yaml = manifestText();
    yaml.replace(yaml.find("1.2.3"), 5, bad);
    auto m = parseManifest(yaml, "manifest.yaml");
    ASSERT_FALSE(m.ok()) << "version " << ::testing::PrintToString(bad);
    EXPECT_EQ(m.error().reason, kManifestInvalid);
    EXPECT_NE(m.error().error.message().find("version: must be printable UTF-8 text"),
              std::string::npos)
        << m.error().error.message();
  }
  // Multi-byte UTF-8 is text like any other.
  std::string yaml = manifestText();
  yaml.replace(yaml.find("1.2.3"), 5, "1.2.3-\xc3\xa9t\xc3\xa9");
  auto m = parseManifest(yaml, "manifest.yaml");
  ASSERT_TRUE(m.ok()) << m.error().error.message();
  auto again = parseManifest(manifestYaml(*m), "again");
  ASSERT_TRUE(again.ok()) << again.error().error.message();
  EXPECT_EQ(again->version, m->version);
}

TEST(PackageManifest, ErrorsNameTheField) {
  struct Case {
    std::string yaml;
    std::string field;
  };
  std::string good = manifestText();
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  std::vector<Case> cases = {
      {"name: [unclosed\n", "not valid YAML"},
      {"- a list\n", "must be a YAML mapping"},
      {replace("name: counter\n", ""), "name: missing"},
      {replace("version: 1.2.3", "version: [1]"), "version: must be a string"},
      {replace("programs:\n", "programs: 3\nx:\n"), "programs: must be a list"},
      {"name: a\nversion: b\nprograms: []\n", "programs: must name at least one program"},
      {replace("hook: tc-ingress", "hook: tc"), "programs[1].hook: \"tc\" is not one of"},
      {replace("    entry: counter_tc\n", ""), "programs[1].entry: missing"},
      {replace("    nextMap: counter_xdp_next\n", ""), "programs[0].nextMap: missing"},
      {replace("object: counter.bpf.o", "object: ../counter.bpf.o"), "programs[0].object"},
      {replace("object: counter.bpf.o", "object: /abs.o"), "programs[0].object"},
  };
  for (const Case& c : cases) {
    auto m = parseManifest(c.yaml, "pkg/manifest.yaml");
    ASSERT_FALSE(m.ok()) << c.yaml;
    EXPECT_EQ(m.error().reason, kManifestInvalid);
    EXPECT_NE(m.error().error.message().find(c.field), std::string::npos)
        << m.error().error.message();
    EXPECT_TRUE(m.error().error.message().starts_with("pkg/manifest.yaml: "));
  }
  auto m = parseManifest(good, "manifest.yaml");
  ASSERT_TRUE(m.ok());
  auto missing = checkManifestObjects(*m, {"other.o"}, "manifest.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().error.message().find("programs[0].object: \"counter.bpf.o\""),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Fetching

TEST(PackageFetch, FileUrls) {
  TempDir tmp = makeTemp();
  spit(tmp.path() + "/a b", "contents");
  auto got = fetchToString("file://" + tmp.path() + "/a%20b", {});
  ASSERT_TRUE(got.ok()) << got.error().error.message();
  EXPECT_EQ(*got, "contents");
  EXPECT_EQ(fetchToString("file://localhost" + tmp.path() + "/a%20b", {}).value(), "contents");

  auto missing = fetchToString(fileUrl(tmp.path() + "/missing"), {});
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(missing.error().notFound);
  EXPECT_NE(missing.error().error.message().find(tmp.path() + "/missing"), std::string::npos);

  auto big = fetchToString(fileUrl(tmp.path() + "/a b"), FetchOptions{4, std::chrono::seconds(5)});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().error.message().find("limit of 4 bytes"), std::string::npos);

  EXPECT_FALSE(fetchToString(fileUrl(tmp.path()), {}).ok()); // a directory
  EXPECT_FALSE(fetchToString("file://relative/path", {}).ok());
  auto ftp = fetchToString("ftp://example.com/x", {});
  ASSERT_FALSE(ftp.ok());
  EXPECT_NE(ftp.error().error.message().find("unsupported URL scheme"), std::string::npos);

  std::string out = tmp.path() + "/copy";
  EXPECT_EQ(fetchToFile(fileUrl(tmp.path() + "/a%20b"), out, {}).value(), 8u);
  EXPECT_EQ(slurp(out), "contents");
  EXPECT_FALSE(fetchToFile(fileUrl(tmp.path() + "/a%20b"), out, {}).ok()); // O_EXCL
}

TEST(PackageFetch, SignatureUrl) {
  EXPECT_EQ(signatureUrl("https://h/p/x.tar.gz"), "https://h/p/x.tar.gz.sig");
  EXPECT_EQ(signatureUrl("https://h/x.tar.gz?token=1"), "https://h/x.tar.gz.sig?token=1");
  EXPECT_EQ(signatureUrl("file:///a/x.tar.gz"), "file:///a/x.tar.gz.sig");
}

// ---------------------------------------------------------------------------------------------
// The cache (file://)

class PackageCacheTest : public ::testing::Test {
protected:
  void SetUp() override {
    cacheDir = tmp.path() + "/cache";
    srcDir = tmp.path() + "/src";
    ASSERT_EQ(::mkdir(srcDir.c_str(), 0755), 0);
  }

  PackageCache open(CacheOptions options = {}) {
    auto cache = PackageCache::open(cacheDir, std::move(options));
    if (!cache)
      throw std::runtime_error(cache.error().message());
    return std::move(*cache);
  }

  // The cache holds no package and nothing in progress.
  void expectNothingCached(const PackageCache& cache) {
    EXPECT_TRUE(cache.cachedDigests().empty());
    EXPECT_TRUE(fs::is_empty(cacheDir + "/.tmp"));
  }

  void keypair(const std::string& name) {
    ASSERT_TRUE(
        generateKeyPair(tmp.path() + "/" + name + ".key", tmp.path() + "/" + name + ".pub").ok());
  }
  void sign(const std::string& key, const std::string& file) {
    auto signature = signFile(PrivateKey::load(tmp.path() + "/" + key + ".key").value(), file);
    ASSERT_TRUE(signature.ok());
    spit(file + ".sig", *signature);
  }

  TempDir tmp = makeTemp();
  std::string cacheDir;
  std::string srcDir;
};

TEST_F(PackageCacheTest, GetsVerifiesExtractsAndDescribes) {
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  PackageCache cache = open();
  struct stat st {};
  ASSERT_EQ(::stat(cacheDir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  auto upper = digest;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  auto package = cache.get({fileUrl(archive), upper});
  ASSERT_TRUE(package.ok()) << package.error().reason << ": " << package.error().error.message();
  EXPECT_EQ(package->digest, digest);
  EXPECT_EQ(package->dir, cacheDir + "/" + digest + "/tree");
  EXPECT_TRUE(fs::path(package->dir).is_absolute());
  EXPECT_EQ(package->objects, std::vector<std::string>{"counter.bpf.o"});
  ASSERT_TRUE(package->manifest.has_value());
  EXPECT_EQ(package->manifest->name, "counter");
  EXPECT_EQ(package->manifest->programs.size(), 2u);
  EXPECT_EQ(slurp(package->dir + "/counter.bpf.o"), counterObject());
  EXPECT_EQ(cache.cachedDigests(), std::vector<std::string>{digest});
  EXPECT_TRUE(fs::is_empty(cacheDir + "/.tmp"));
  auto stats = cache.stats();
  EXPECT_EQ(stats.fetches, 1u);
  EXPECT_EQ(stats.cacheHits, 0u);
  EXPECT_EQ(stats.failures, 0u);
}

TEST_F(PackageCacheTest, CacheHitDoesNotTouchTheSource) {
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  {
    PackageCache cache = open();
    ASSERT_TRUE(cache.get({fileUrl(archive), digest}).ok());
    ASSERT_EQ(::unlink(archive.c_str()), 0);
    auto again = cache.get({fileUrl(archive), digest});
    ASSERT_TRUE(again.ok()) << again.error().error.message();
    EXPECT_EQ(again->manifest->name, "counter");
    EXPECT_EQ(cache.stats().fetches, 1u);
    EXPECT_EQ(cache.stats().cacheHits, 1u);
  }
  // A new process (a restarted agent) finds it too; even under another URL.
  PackageCache reopened = open();
  auto hit = reopened.get({"https://unreachable.invalid/counter.tar.gz", digest});
  ASSERT_TRUE(hit.ok()) << hit.error().error.message();
  EXPECT_EQ(reopened.stats().fetches, 0u);
  EXPECT_EQ(reopened.stats().cacheHits, 1u);
}

TEST_F(PackageCacheTest, ChecksumMismatchCachesNothing) {
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  PackageCache cache = open();
  std::string wrong = sha256Hex("something else");
  auto result = cache.get({fileUrl(archive), wrong});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, kChecksumMismatch);
  const std::string& message = result.error().error.message();
  EXPECT_NE(message.find(fileUrl(archive)), std::string::npos) << message;
  EXPECT_NE(message.find(digest), std::string::npos) << message;
  EXPECT_NE(message.find(wrong), std::string::npos) << message;
  expectNothingCached(cache);
  EXPECT_EQ(cache.stats().failures, 1u);

  auto notHex = cache.get({fileUrl(archive), "1234"});
  ASSERT_FALSE(notHex.ok());
  EXPECT_EQ(notHex.error().reason, kChecksumMismatch);
  auto missing = cache.get({fileUrl(srcDir + "/missing.tar.gz"), digest});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason, kPackageFetchFailed);
  EXPECT_NE(missing.error().error.message().find(srcDir + "/missing.tar.gz"), std::string::npos);
  auto scheme = cache.get({"ftp://h/x.tar.gz", digest});
  ASSERT_FALSE(scheme.ok());
  EXPECT_EQ(scheme.error().reason, kPackageFetchFailed);
  expectNothingCached(cache);
}

TEST_F(PackageCacheTest, ArchiveTooLargeToDownload) {
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  CacheOptions options;
  options.maxArchiveBytes = 100;
  PackageCache cache = open(options);
  auto result = cache.get({fileUrl(archive), digest});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, kPackageFetchFailed);
  EXPECT_NE(result.error().error.message().find("limit of 100 bytes"), std::string::npos);
  expectNothingCached(cache);
}

TEST_F(PackageCacheTest, UnsafeAndCorruptArchivesAreRefusedAndNotCached) {
  PackageCache cache = open();
  std::string unsafeArchive = srcDir + "/unsafe.tar.gz";
  writeTarGz(unsafeArchive, {fileEntry("counter.bpf.o", counterObject()),
                             linkEntry(EntryType::Symlink, "evil", "../../../../etc")});
  auto unsafe = cache.get({fileUrl(unsafeArchive), sha256File(unsafeArchive).value()});
  ASSERT_FALSE(unsafe.ok());
  EXPECT_EQ(unsafe.error().reason, kArchiveUnsafe);
  EXPECT_NE(unsafe.error().error.message().find("package " + fileUrl(unsafeArchive)),
            std::string::npos)
      << unsafe.error().error.message();

  std::string corruptArchive = srcDir + "/corrupt.tar.gz";
  spit(corruptArchive, "not gzip");
  auto corrupt = cache.get({fileUrl(corruptArchive), sha256Hex("not gzip")});
  ASSERT_FALSE(corrupt.ok());
  EXPECT_EQ(corrupt.error().reason, kArchiveCorrupt);
  expectNothingCached(cache);
}

TEST_F(PackageCacheTest, ManifestNamingAMissingObjectIsInvalid) {
  std::string archive = srcDir + "/bad.tar.gz";
  ASSERT_TRUE(writeArchive(archive, {fileEntry("manifest.yaml", manifestText("missing.bpf.o")),
                                     fileEntry("counter.bpf.o", counterObject())})
                  .ok());
  PackageCache cache = open();
  auto result = cache.get({fileUrl(archive), sha256File(archive).value()});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, kManifestInvalid);
  const std::string& message = result.error().error.message();
  EXPECT_NE(message.find(fileUrl(archive)), std::string::npos) << message;
  EXPECT_NE(message.find("programs[0].object"), std::string::npos) << message;
  expectNothingCached(cache);

  // A text file is no object either.
  std::string text = srcDir + "/text.tar.gz";
  ASSERT_TRUE(writeArchive(text, {fileEntry("manifest.yaml", manifestText()),
                                  fileEntry("counter.bpf.o", "not an ELF file")})
                  .ok());
  auto notElf = cache.get({fileUrl(text), sha256File(text).value()});
  ASSERT_FALSE(notElf.ok());
  EXPECT_EQ(notElf.error().reason, kManifestInvalid);

  std::string unparsable = srcDir + "/yaml.tar.gz";
  ASSERT_TRUE(writeArchive(unparsable, {fileEntry("manifest.yaml", "programs: [\n"),
                                        fileEntry("counter.bpf.o", counterObject())})
                  .ok());
  auto yaml = cache.get({fileUrl(unparsable), sha256File(unparsable).value()});
  ASSERT_FALSE(yaml.ok());
  EXPECT_EQ(yaml.error().reason, kManifestInvalid);
  expectNothingCached(cache);
}

TEST_F(PackageCacheTest, L3afArtifactWithoutManifest) {
  std::string archive = srcDir + "/l3af.tar.gz";
  ASSERT_TRUE(writeArchive(archive, {fileEntry("ratelimiting/ratelimiting.bpf.o", counterObject()),
                                     fileEntry("ratelimiting/README.md", "docs"),
                                     fileEntry("ratelimiting/extra/tc.o", counterObject()),
                                     fileEntry("ratelimiting/config.json", "{}")})
                  .ok());
  PackageCache cache = open();
  auto package = cache.get({fileUrl(archive), sha256File(archive).value()});
  ASSERT_TRUE(package.ok()) << package.error().error.message();
  EXPECT_FALSE(package->manifest.has_value());
  EXPECT_EQ(package->objects, (std::vector<std::string>{"ratelimiting/extra/tc.o",
                                                        "ratelimiting/ratelimiting.bpf.o"}));

  std::string empty = srcDir + "/empty.tar.gz";
  ASSERT_TRUE(writeArchive(empty, {fileEntry("README", "no objects")}).ok());
  auto nothing = cache.get({fileUrl(empty), sha256File(empty).value()});
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().reason, kManifestInvalid);
}

TEST_F(PackageCacheTest, Signatures) {
  keypair("trusted");
  keypair("other");
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  CacheOptions required;
  required.trustedKeyFiles = {tmp.path() + "/trusted.pub"};
  required.requireSignatures = true;

  {
    // Required, and no .sig.
    PackageCache cache = open(required);
    auto missing = cache.get({fileUrl(archive), digest});
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().reason, kSignatureMissing);
    EXPECT_NE(missing.error().error.message().find(fileUrl(archive) + ".sig"), std::string::npos)
        << missing.error().error.message();
    expectNothingCached(cache);

    // Signed by a key that is not trusted.
    sign("other", archive);
    auto wrong = cache.get({fileUrl(archive), digest});
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.error().reason, kSignatureInvalid);
    EXPECT_NE(wrong.error().error.message().find(fileUrl(archive)), std::string::npos);
    expectNothingCached(cache);

    // Not a signature at all.
    spit(archive + ".sig", "garbage\n");
    auto garbage = cache.get({fileUrl(archive), digest});
    ASSERT_FALSE(garbage.ok());
    EXPECT_EQ(garbage.error().reason, kSignatureInvalid);

    // The trusted key's signature of other bytes.
    std::string other = srcDir + "/other";
    spit(other, "other bytes");
    sign("trusted", other);
    fs::copy_file(other + ".sig", archive + ".sig", fs::copy_options::overwrite_existing);
    auto mismatch = cache.get({fileUrl(archive), digest});
    ASSERT_FALSE(mismatch.ok());
    EXPECT_EQ(mismatch.error().reason, kSignatureInvalid);

    // Good.
    sign("trusted", archive);
    auto good = cache.get({fileUrl(archive), digest});
    ASSERT_TRUE(good.ok()) << good.error().error.message();
    std::string verification = slurp(cacheDir + "/" + digest + "/verification.yaml");
    EXPECT_NE(verification.find("signature: verified"), std::string::npos) << verification;
    EXPECT_NE(verification.find(PublicKey::load(tmp.path() + "/trusted.pub")->fingerprint()),
              std::string::npos);
  }

  // Keys configured but not required: an unsigned package is accepted, a bad .sig is not.
  std::string unsigned_ = srcDir + "/unsigned.tar.gz";
  std::string unsignedDigest = writeCounterPackage(unsigned_, "2.0");
  CacheOptions optional;
  optional.trustedKeyFiles = {tmp.path() + "/trusted.pub"};
  PackageCache cache = open(optional);
  ASSERT_TRUE(cache.get({fileUrl(unsigned_), unsignedDigest}).ok());
  std::string badlySigned = srcDir + "/badly.tar.gz";
  std::string badlyDigest = writeCounterPackage(badlySigned, "3.0");
  sign("other", badlySigned);
  auto bad = cache.get({fileUrl(badlySigned), badlyDigest});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().reason, kSignatureInvalid);
}

TEST_F(PackageCacheTest, OpenFailsOnBadKeysOrRequiredWithoutKeys) {
  CacheOptions missingKey;
  missingKey.trustedKeyFiles = {tmp.path() + "/nope.pub"};
  auto a = PackageCache::open(cacheDir, missingKey);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message().find(tmp.path() + "/nope.pub"), std::string::npos);
  spit(tmp.path() + "/junk.pub", "not a key");
  CacheOptions junk;
  junk.trustedKeyFiles = {tmp.path() + "/junk.pub"};
  EXPECT_FALSE(PackageCache::open(cacheDir, junk).ok());
  CacheOptions noKeys;
  noKeys.requireSignatures = true;
  auto c = PackageCache::open(cacheDir, noKeys);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message().find("no trusted key"), std::string::npos);
}

TEST_F(PackageCacheTest, StricterPolicyVerifiesCachedPackagesAgain) {
  keypair("trusted");
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  {
    PackageCache lax = open();
    ASSERT_TRUE(lax.get({fileUrl(archive), digest}).ok());
  }
  CacheOptions required;
  required.trustedKeyFiles = {tmp.path() + "/trusted.pub"};
  required.requireSignatures = true;
  PackageCache strict = open(required);
  // Cached unchecked: not good enough now; fetched again, and there is no signature.
  auto unsignedGet = strict.get({fileUrl(archive), digest});
  ASSERT_FALSE(unsignedGet.ok());
  EXPECT_EQ(unsignedGet.error().reason, kSignatureMissing);
  EXPECT_EQ(strict.stats().fetches, 1u);
  // The old entry stays until a verified one replaces it.
  sign("trusted", archive);
  auto signedGet = strict.get({fileUrl(archive), digest});
  ASSERT_TRUE(signedGet.ok()) << signedGet.error().error.message();
  EXPECT_EQ(strict.stats().fetches, 2u);
  ASSERT_EQ(::unlink(archive.c_str()), 0);
  ASSERT_TRUE(strict.get({fileUrl(archive), digest}).ok());
  EXPECT_EQ(strict.stats().cacheHits, 1u);
  EXPECT_TRUE(fs::is_empty(cacheDir + "/.tmp"));
}

TEST_F(PackageCacheTest, DamagedEntryIsFetchedAgain) {
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  PackageCache cache = open();
  ASSERT_TRUE(cache.get({fileUrl(archive), digest}).ok());
  ASSERT_EQ(::unlink((cacheDir + "/" + digest + "/verification.yaml").c_str()), 0);
  auto again = cache.get({fileUrl(archive), digest});
  ASSERT_TRUE(again.ok()) << again.error().error.message();
  EXPECT_EQ(cache.stats().fetches, 2u);
  EXPECT_TRUE(fs::exists(cacheDir + "/" + digest + "/verification.yaml"));
}

TEST_F(PackageCacheTest, ConcurrentGetsOfOneDigestDownloadOnce) {
  // Large enough that the download overlaps the other threads' gets.
  std::string archive = srcDir + "/big.tar.gz";
  std::string noise;
  noise.reserve(8u << 20);
  uint64_t x = 88172645463325252ull;
  while (noise.size() < (8u << 20)) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    noise.append(reinterpret_cast<const char*>(&x), sizeof x);
  }
  ASSERT_TRUE(writeArchive(archive, {fileEntry("manifest.yaml", manifestText()),
                                     fileEntry("counter.bpf.o", counterObject()),
                                     fileEntry("noise.bin", noise)})
                  .ok());
  std::string digest = sha256File(archive).value();
  PackageCache cache = open();
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  std::vector<std::string> dirs(kThreads);
  std::atomic<int> failures{0};
  std::atomic<bool> go{false};
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      while (!go)
        std::this_thread::yield();
      auto package = cache.get({fileUrl(archive), digest});
      if (package.ok())
        dirs[i] = package->dir;
      else
        ++failures;
    });
  go = true;
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures, 0);
  for (const std::string& dir : dirs)
    EXPECT_EQ(dir, cacheDir + "/" + digest + "/tree");
  auto stats = cache.stats();
  EXPECT_EQ(stats.fetches, 1u);
  EXPECT_EQ(stats.cacheHits, static_cast<uint64_t>(kThreads - 1));
  EXPECT_TRUE(fs::is_empty(cacheDir + "/.tmp"));
}

TEST_F(PackageCacheTest, CollectGarbageKeepsOnlyWhatIsAskedFor) {
  std::string a = srcDir + "/a.tar.gz", b = srcDir + "/b.tar.gz";
  std::string da = writeCounterPackage(a, "1"), db = writeCounterPackage(b, "2");
  PackageCache cache = open();
  ASSERT_TRUE(cache.get({fileUrl(a), da}).ok());
  ASSERT_TRUE(cache.get({fileUrl(b), db}).ok());
  // Not ours: left alone.
  ASSERT_EQ(::mkdir((cacheDir + "/notes").c_str(), 0755), 0);
  // What a dead process left behind in .tmp (pid 2^22 + 1 is above pid_max's default).
  std::string stale = cacheDir + "/.tmp/" + da + ".4194305.0";
  ASSERT_EQ(::mkdir(stale.c_str(), 0755), 0);

  std::string upper = da;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_EQ(cache.collectGarbage({upper}), 1u);
  EXPECT_EQ(cache.cachedDigests(), std::vector<std::string>{da});
  EXPECT_TRUE(fs::exists(cacheDir + "/notes"));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::is_empty(cacheDir + "/.tmp"));
  EXPECT_EQ(cache.collectGarbage({da}), 0u);

  // Collected means gone: the next get downloads it again.
  ASSERT_TRUE(cache.get({fileUrl(b), db}).ok());
  EXPECT_EQ(cache.stats().fetches, 3u);
  EXPECT_EQ(cache.collectGarbage({}), 2u);
  EXPECT_TRUE(cache.cachedDigests().empty());
}

// ---------------------------------------------------------------------------------------------
// http:// against a real server (python3 -m http.server on loopback; no root needed)

uint16_t freePort() {
  FD s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return 0;
  socklen_t len = sizeof addr;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

bool canConnect(uint16_t port) {
  FD s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// Starts the server `argv(port)` describes on a free loopback port and waits until it accepts.
std::unique_ptr<ChildProcess>
startServer(const std::function<std::vector<std::string>(uint16_t)>& argv, const std::string& log,
            uint16_t& port) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port = freePort();
    auto child = ChildProcess::spawn(argv(port), log);
    if (!child)
      return nullptr;
    auto server = std::make_unique<ChildProcess>(std::move(*child));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!canConnect(port) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (canConnect(port))
      return server;
    // The port was taken meanwhile: try another.
  }
  return nullptr;
}

class PackageHttpTest : public PackageCacheTest {
protected:
  void SetUp() override {
    PackageCacheTest::SetUp();
    server = startServer(
        [&](uint16_t p) {
          return std::vector<std::string>{
              kPython,     "-m",          "http.server", "--bind",
              "127.0.0.1", "--directory", srcDir,        std::to_string(p)};
        },
        tmp.path() + "/http.log", port);
    ASSERT_TRUE(server) << "python3 -m http.server did not start: "
                        << slurp(tmp.path() + "/http.log");
  }
  void TearDown() override { server.reset(); }

  std::string url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port) + "/" + path;
  }

  uint16_t port = 0;
  std::unique_ptr<ChildProcess> server;
};

TEST_F(PackageHttpTest, FetchesOverHttp) {
  std::string digest = writeCounterPackage(srcDir + "/counter.tar.gz");
  PackageCache cache = open();
  auto package = cache.get({url("counter.tar.gz"), digest});
  ASSERT_TRUE(package.ok()) << package.error().reason << ": " << package.error().error.message();
  EXPECT_EQ(package->manifest->name, "counter");
  EXPECT_EQ(slurp(package->dir + "/counter.bpf.o"), counterObject());
}

TEST_F(PackageHttpTest, NotFoundNamesTheStatus) {
  PackageCache cache = open();
  auto result = cache.get({url("missing.tar.gz"), sha256Hex("x")});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().reason, kPackageFetchFailed);
  const std::string& message = result.error().error.message();
  EXPECT_NE(message.find(url("missing.tar.gz")), std::string::npos) << message;
  EXPECT_NE(message.find("HTTP 404"), std::string::npos) << message;
  expectNothingCached(cache);

  auto raw = fetchToString(url("missing.tar.gz"), {});
  ASSERT_FALSE(raw.ok());
  EXPECT_TRUE(raw.error().notFound);
  EXPECT_EQ(raw.error().httpStatus, 404);
}

TEST_F(PackageHttpTest, SignatureIsFetchedFromUrlDotSig) {
  keypair("trusted");
  std::string archive = srcDir + "/counter.tar.gz";
  std::string digest = writeCounterPackage(archive);
  CacheOptions required;
  required.trustedKeyFiles = {tmp.path() + "/trusted.pub"};
  required.requireSignatures = true;
  PackageCache cache = open(required);
  auto missing = cache.get({url("counter.tar.gz"), digest});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().reason, kSignatureMissing);
  EXPECT_NE(missing.error().error.message().find(url("counter.tar.gz.sig")), std::string::npos)
      << missing.error().error.message();
  sign("trusted", archive);
  auto good = cache.get({url("counter.tar.gz"), digest});
  ASSERT_TRUE(good.ok()) << good.error().reason << ": " << good.error().error.message();
  EXPECT_NE(slurp(tmp.path() + "/http.log").find("GET /counter.tar.gz.sig"), std::string::npos);
}

TEST_F(PackageHttpTest, FollowsRedirectsAndEnforcesTheSizeLimit) {
  ASSERT_EQ(::mkdir((srcDir + "/dir").c_str(), 0755), 0);
  spit(srcDir + "/dir/listed.txt", "x");
  // http.server redirects a directory without its slash (301) to its listing.
  auto listing = fetchToString(url("dir"), {});
  ASSERT_TRUE(listing.ok()) << listing.error().error.message();
  EXPECT_NE(listing->find("listed.txt"), std::string::npos);

  spit(srcDir + "/big", std::string(100000, 'b'));
  auto big = fetchToString(url("big"), FetchOptions{1000, std::chrono::seconds(10)});
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().error.message().find("limit of 1000 bytes"), std::string::npos)
      << big.error().error.message();
}

TEST(PackageHttp, HttpsCertificatesAreVerified) {
  TempDir tmp = makeTemp();
  std::string cert = tmp.path() + "/cert.pem", key = tmp.path() + "/key.pem";
  auto made = runCommand({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                          "/CN=127.0.0.1", "-keyout", key, "-out", cert});
  if (!made.ok() || made->exitCode != 0)
    FAIL() << "the openssl command line (scripts/deps.sh installs it) failed";
  spit(tmp.path() + "/x", "secret");
  uint16_t port = 0;
  auto server = startServer(
      [&](uint16_t p) {
        return std::vector<std::string>{
            kPython,
            "-c",
            "import functools, http.server, ssl, sys\n"
            "h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[4])\n"
            "s = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), h)\n"
            "c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); c.load_cert_chain(sys.argv[2], "
            "sys.argv[3])\n"
            "s.socket = c.wrap_socket(s.socket, server_side=True)\n"
            "s.serve_forever()",
            std::to_string(p),
            cert,
            key,
            tmp.path()};
      },
      tmp.path() + "/https.log", port);
  ASSERT_TRUE(server) << slurp(tmp.path() + "/https.log");
  // A self-signed certificate no CA vouches for: refused.
  auto result = fetchToString("https://127.0.0.1:" + std::to_string(port) + "/x",
                              FetchOptions{1000, std::chrono::seconds(10)});
  ASSERT_FALSE(result.ok()) << "fetched over TLS without verifying the certificate";
  EXPECT_FALSE(result.error().notFound);
  EXPECT_EQ(result.error().httpStatus, 0);
}

TEST(PackageHttp, ServerThatNeverAnswersTimesOut) {
  // A listening socket nobody accepts on: the connection is made, no response ever comes.
  FD listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.tar.gz";
  auto start = std::chrono::steady_clock::now();
  auto result = fetchToString(url, FetchOptions{1000, std::chrono::seconds(1)});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().error.message().find("timed out"), std::string::npos)
      << result.error().error.message();
  EXPECT_NE(result.error().error.message().find(url), std::string::npos);
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST(PackageHttp, BodyThatStallsTimesOut) {
  // Headers, three bytes of a promised thousand, then nothing: the deadline covers the body.
  FD listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 8), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::thread server([&] {
    FD conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    timeval limit{10, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    char buf[4096];
    (void)!::read(conn.get(), buf, sizeof buf);
    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc";
    (void)!::write(conn.get(), response.data(), response.size());
    // Hold the connection until the client gives up.
    (void)!::read(conn.get(), buf, sizeof buf);
  });
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x.tar.gz";
  auto start = std::chrono::steady_clock::now();
  auto result = fetchToString(url, FetchOptions{100000, std::chrono::seconds(1)});
  auto elapsed = std::chrono::steady_clock::now() - start;
  ::shutdown(listener.get(), SHUT_RDWR);
  server.join();
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().error.message().find("timed out"), std::string::npos)
      << result.error().error.message();
  EXPECT_LT(elapsed, std::chrono::seconds(4));
}

TEST(PackageHttp, ConnectionRefused) {
  uint16_t port = freePort(); // bound and closed: nothing listens there
  auto result = fetchToString("http://127.0.0.1:" + std::to_string(port) + "/x", {});
  ASSERT_FALSE(result.ok());
  EXPECT_FALSE(result.error().notFound);
  EXPECT_EQ(result.error().httpStatus, 0);
}

// ---------------------------------------------------------------------------------------------
// bpfchain-pkg

struct CliRun {
  int exit;
  std::string out;
  std::string err;
};

CliRun pkg(std::vector<std::string> args) {
  args.insert(args.begin(), BPFCHAIN_PKG);
  auto r = runCommand(args);
  EXPECT_TRUE(r.ok());
  return r.ok() ? CliRun{r->exitCode, r->out, r->err} : CliRun{-1, "", ""};
}

TEST(PackageTool, BuildDigestSignVerify) {
  TempDir tmp = makeTemp();
  std::string out = tmp.path() + "/counter.tar.gz";
  std::string readme = tmp.path() + "/README";
  spit(readme, "read me");
  std::vector<std::string> build = {
      "build",
      "--name",
      "counter",
      "--version",
      "1.0.0",
      "--program",
      std::string(COUNTER_OBJECT) + ":counter_xdp:xdp:counter_xdp_next",
      "--program",
      std::string(COUNTER_OBJECT) + ":counter_tc:tc-egress:counter_tc_next",
      "--file",
      readme,
      "-o",
      out};
  CliRun built = pkg(build);
  ASSERT_EQ(built.exit, 0) << built.err;
  std::string digest = sha256File(out).value();
  EXPECT_EQ(built.out, digest + "\n");
  // Deterministic: the same inputs, the same bytes.
  build.back() = tmp.path() + "/again.tar.gz";
  ASSERT_EQ(pkg(build).exit, 0);
  EXPECT_EQ(sha256File(tmp.path() + "/again.tar.gz").value(), digest);
  CliRun digested = pkg({"digest", out});
  EXPECT_EQ(digested.exit, 0);
  EXPECT_EQ(digested.out, digest + "\n");

  // What it builds is what the cache accepts.
  auto cache = PackageCache::open(tmp.path() + "/cache");
  ASSERT_TRUE(cache.ok());
  auto package = cache->get({fileUrl(out), digest});
  ASSERT_TRUE(package.ok()) << package.error().error.message();
  ASSERT_TRUE(package->manifest.has_value());
  EXPECT_EQ(package->manifest->version, "1.0.0");
  EXPECT_EQ(package->manifest->programs[1].hook, "tc-egress");
  EXPECT_EQ(package->objects, std::vector<std::string>{"counter.bpf.o"});
  EXPECT_EQ(slurp(package->dir + "/README"), "read me");

  std::string key = tmp.path() + "/k.pem", pub = tmp.path() + "/p.pem";
  CliRun keygen = pkg({"keygen", "--private", key, "--public", pub});
  ASSERT_EQ(keygen.exit, 0) << keygen.err;
  EXPECT_EQ(keygen.out, PublicKey::load(pub).value().fingerprint() + "\n");
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(pkg({"keygen", "--private", key, "--public", pub}).exit, 1); // never overwritten

  CliRun unsignedVerify = pkg({"verify", "--key", pub, out});
  EXPECT_EQ(unsignedVerify.exit, 1);
  EXPECT_NE(unsignedVerify.err.find(out + ".sig"), std::string::npos) << unsignedVerify.err;
  CliRun signedRun = pkg({"sign", "--key", key, out});
  ASSERT_EQ(signedRun.exit, 0) << signedRun.err;
  EXPECT_TRUE(fs::exists(out + ".sig"));
  CliRun ok = pkg({"verify", "--key", pub, out, "--sha256", digest});
  EXPECT_EQ(ok.exit, 0) << ok.err;
  EXPECT_NE(ok.out.find("signature OK"), std::string::npos);

  std::string otherKey = tmp.path() + "/o.pem", otherPub = tmp.path() + "/o.pub";
  ASSERT_EQ(pkg({"keygen", "--private", otherKey, "--public", otherPub}).exit, 0);
  CliRun wrongKey = pkg({"verify", "--key", otherPub, out});
  EXPECT_EQ(wrongKey.exit, 1);
  EXPECT_NE(wrongKey.err.find("not valid"), std::string::npos) << wrongKey.err;
  EXPECT_EQ(pkg({"verify", "--key", otherPub, "--key", pub, out}).exit, 0);
  CliRun wrongDigest = pkg({"verify", "--key", pub, out, "--sha256", sha256Hex("x")});
  EXPECT_EQ(wrongDigest.exit, 1);
  EXPECT_NE(wrongDigest.err.find("sha256"), std::string::npos);

  // The cache agrees with the tool.
  CacheOptions required;
  required.trustedKeyFiles = {pub};
  required.requireSignatures = true;
  auto strict = PackageCache::open(tmp.path() + "/strict", required);
  ASSERT_TRUE(strict.ok());
  EXPECT_TRUE(strict->get({fileUrl(out), digest}).ok());
}

TEST(PackageTool, UsageErrorsExitTwoAndNameTheFlag) {
  TempDir tmp = makeTemp();
  std::string out = tmp.path() + "/o.tar.gz";
  struct Case {
    std::vector<std::string> args;
    int exit;
    std::string message;
  };
  std::string obj = COUNTER_OBJECT;
  std::vector<Case> cases = {
      {{}, 2, "usage"},
      {{"frobnicate"}, 2, "unknown command frobnicate"},
      {{"build", "--version", "1", "--program", obj + ":e:xdp:n", "-o", out}, 2, "--name"},
      {{"build", "--name", "n", "--version", "1", "-o", out}, 2, "--program"},
      {{"build", "--name", "n", "--version", "1", "--program", obj + ":e:xdp", "-o", out},
       2,
       "OBJECT:ENTRY:HOOK:NEXTMAP"},
      {{"build", "--name", "n", "--version", "1", "--program", obj + ":e:sk_skb:n", "-o", out},
       2,
       "sk_skb"},
      {{"build", "--name", "n", "--version", "1", "--program", "/nonexistent.o:e:xdp:n", "-o", out},
       1,
       "/nonexistent.o"},
      {{"build", "--name", "n", "--version", "1", "--program", out + ".txt:e:xdp:n", "-o", out},
       1,
       out + ".txt"},
      {{"build", "--bogus"}, 2, "unknown option --bogus"},
      {{"digest"}, 2, "expected one FILE"},
      {{"digest", tmp.path() + "/missing"}, 1, tmp.path() + "/missing"},
      {{"sign", tmp.path() + "/x"}, 2, "--key"},
      {{"verify", "--key"}, 2, "--key needs a value"},
      {{"verify", "--key", tmp.path() + "/nokey.pem", out}, 1, tmp.path() + "/nokey.pem"},
      {{"keygen", "--private", tmp.path() + "/k"}, 2, "--public"},
  };
  spit(out + ".txt", "not elf");
  for (const Case& c : cases) {
    CliRun r = pkg(c.args);
    EXPECT_EQ(r.exit, c.exit) << testing::describeCommand(c.args) << "\n" << r.err;
    EXPECT_NE(r.err.find(c.message), std::string::npos) << testing::describeCommand(c.args) << "\n"
                                                        << r.err;
  }
  CliRun help = pkg({"--help"});
  EXPECT_EQ(help.exit, 0);
  EXPECT_NE(help.out.find("keygen"), std::string::npos);
  CliRun buildHelp = pkg({"build", "--help"});
  EXPECT_EQ(buildHelp.exit, 0);
  EXPECT_NE(buildHelp.out.find("OBJECT:ENTRY:HOOK:NEXTMAP"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
}

} // namespace
} // namespace bpfchain::packages
