#include <cerrno>
#include <cstdio>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
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
    std::remove((dir_ + "/f").c_str());
    ::rmdir(dir_.c_str());
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
