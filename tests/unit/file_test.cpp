#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "system/base64.h"
#include "system/file.h"

namespace bpfchain {
namespace {

class ReadFile : public ::testing::Test {
protected:
  void SetUp() override {
    char pattern[] = "/tmp/bpfchain-file-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const auto& entry : entries())
      std::remove((dir_ + "/" + entry).c_str());
    ::rmdir(dir_.c_str());
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string dir_;
};

TEST_F(ReadFile, ReadsTheWholeFileUpToTheLimit) {
  std::string content(200000, 'x'); // more than one read(2) buffer
  content[123456] = '\0';
  std::ofstream(dir_ + "/f", std::ios::binary) << content;
  auto r = readFile(dir_ + "/f", kNoSizeLimit);
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, content);
  EXPECT_TRUE(readFile(dir_ + "/f", content.size()).ok());
  auto large = readFile(dir_ + "/f", content.size() - 1);
  ASSERT_FALSE(large.ok());
  EXPECT_EQ(large.error().message(), dir_ + "/f: larger than 199999 bytes");
}

TEST_F(ReadFile, AMissingFileIsASystemError) {
  auto r = readFile(dir_ + "/missing", kNoSizeLimit);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ENOENT);
  EXPECT_EQ(r.error().message(), "open " + dir_ + "/missing: No such file or directory");
}

TEST_F(ReadFile, ChunksComeInOrderUntilTheEndOrUntilRefused) {
  std::string content(200000, 'y');
  content[150000] = 'z';
  std::ofstream(dir_ + "/f", std::ios::binary) << content;
  std::string seen;
  int calls = 0;
  ASSERT_TRUE(readFileChunks(dir_ + "/f", [&](std::string_view chunk) {
                ++calls;
                seen.append(chunk);
                return true;
              }).ok());
  EXPECT_EQ(seen, content);
  EXPECT_GT(calls, 1);
  calls = 0;
  ASSERT_TRUE(readFileChunks(dir_ + "/f", [&](std::string_view) {
                ++calls;
                return false;
              }).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(readFileChunks(dir_ + "/missing", [](std::string_view) { return true; }).error().code(),
            ENOENT);
}

using WriteFileAtomic = ReadFile;

TEST_F(WriteFileAtomic, ReplacesTheFileWithExactlyItsModeAndLeavesNoTemporaryFile) {
  std::string f = dir_ + "/f";
  ASSERT_TRUE(writeFileAtomic(f, "old"));
  ::umask(0077);
  auto written = writeFileAtomic(f, "new", {.mode = 0640, .durable = false});
  ::umask(0022);
  ASSERT_TRUE(written) << written.error().message();
  EXPECT_EQ(readFile(f, kNoSizeLimit).value(), "new");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u); // not narrowed by the umask
  EXPECT_EQ(entries(), std::vector<std::string>{"f"});
}

TEST_F(WriteFileAtomic, ExclusiveNeverOverwrites) {
  std::string f = dir_ + "/f";
  ASSERT_TRUE(writeFileAtomic(f, "first", {.mode = 0600, .exclusive = true}));
  auto again = writeFileAtomic(f, "second", {.mode = 0600, .exclusive = true});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), EEXIST);
  EXPECT_EQ(readFile(f, kNoSizeLimit).value(), "first");
  EXPECT_EQ(entries(), std::vector<std::string>{"f"});
}

TEST_F(WriteFileAtomic, AFailedRenameRemovesTheTemporaryFileAndKeepsTheOldContent) {
  ASSERT_EQ(::mkdir((dir_ + "/d").c_str(), 0755), 0);
  ASSERT_TRUE(writeFileAtomic(dir_ + "/d/x", "keep"));
  auto over = writeFileAtomic(dir_ + "/d", "file over a non-empty directory");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message().rfind("rename " + dir_ + "/.d.tmp.", 0), 0u)
      << over.error().message();
  EXPECT_EQ(entries(), std::vector<std::string>{"d"});
  EXPECT_EQ(readFile(dir_ + "/d/x", kNoSizeLimit).value(), "keep");
  std::remove((dir_ + "/d/x").c_str());
}

TEST(Base64, RoundTripsAndIsStrict) {
  std::vector<std::string> samples = {"",     "f",     "fo",     "foo",
                                      "foob", "fooba", "foobar", std::string("\0\xff", 2)};
  for (const std::string& s : samples)
    EXPECT_EQ(base64Decode(base64Encode(s)).value(), s);
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_FALSE(base64Decode("Zg").ok());     // no padding
  EXPECT_FALSE(base64Decode("Zm9v\n").ok()); // white space
  EXPECT_FALSE(base64Decode("Zm-_").ok());   // the URL alphabet
}

} // namespace
} // namespace bpfchain
