#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <gtest/gtest.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "system/escape.h"
#include "system/file.h"
#include "system/log.h"

namespace bpfchain {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::system_clock::time_point;

const TimePoint kTime(1234567890123456us); // 2009-02-13T23:31:30.123456Z

std::string line(log::Format format, log::Level level, std::string_view message,
                 std::initializer_list<log::Field> fields) {
  return log::formatLine({kTime, level, message, {fields.begin(), fields.size()}}, format);
}

TEST(Log, TextHasTimeLevelMessageAndFields) {
  EXPECT_EQ(line(log::Format::Text, log::Level::Info, "applied chain",
                 {{"chain", "edge"}, {"generation", int64_t{3}}, {"seconds", 0.25}}),
            "2009-02-13T23:31:30.123Z INFO applied chain chain=edge generation=3 seconds=0.25\n");
  EXPECT_EQ(line(log::Format::Text, log::Level::Warning, "w", {{"ok", false}}),
            "2009-02-13T23:31:30.123Z WARNING w ok=false\n");
  EXPECT_EQ(line(log::Format::Text, log::Level::Error, "e", {}),
            "2009-02-13T23:31:30.123Z ERROR e\n");
  EXPECT_EQ(line(log::Format::Text, log::Level::Debug, "d", {}),
            "2009-02-13T23:31:30.123Z DEBUG d\n");
}

TEST(Log, TextQuotesValuesThatNeedIt) {
  EXPECT_EQ(line(log::Format::Text, log::Level::Info, "m",
                 {{"a", "two words"},
                  {"b", ""},
                  {"c", "k=v"},
                  {"d", "say \"hi\" \\ bye"},
                  {"e", "line\nbreak"},
                  {"f", "ünïcode"},
                  {"g", std::string("bad\xff")},
                  {"h", "/plain/path:80"}}),
            "2009-02-13T23:31:30.123Z INFO m a=\"two words\" b=\"\" c=\"k=v\" "
            "d=\"say \\\"hi\\\" \\\\ bye\" e=\"line\\nbreak\" f=ünïcode g=\"bad\\xff\" "
            "h=/plain/path:80\n");
}

TEST(Log, TextKeepsOneCallOnOneLine) {
  EXPECT_EQ(line(log::Format::Text, log::Level::Error, "verifier:\nR1 invalid\r\x01", {}),
            "2009-02-13T23:31:30.123Z ERROR verifier:\\nR1 invalid\\r\\u0001\n");
}

TEST(Log, JsonIsOneObjectPerLineWithTypedValues) {
  EXPECT_EQ(line(log::Format::Json, log::Level::Warning, "chain failed",
                 {{"chain", "edge"},
                  {"generation", 7},
                  {"retry", true},
                  {"seconds", 1.5},
                  {"reason", "VerifierRejected"}}),
            R"({"ts":"2009-02-13T23:31:30.123Z","level":"warning","msg":"chain failed",)"
            R"("chain":"edge","generation":7,"retry":true,"seconds":1.5,)"
            R"("reason":"VerifierRejected"})"
            "\n");
}

TEST(Log, JsonEscapesAndNeverWritesInvalidUtf8) {
  EXPECT_EQ(line(log::Format::Json, log::Level::Info, "a \"b\"\n\\",
                 {{"v", std::string("x\xc3(\x01\ty")}, {"ok", "ü"}, {"nan", std::nan("")}}),
            R"({"ts":"2009-02-13T23:31:30.123Z","level":"info","msg":"a \"b\"\n\\",)"
            "\"v\":\"x\xef\xbf\xbd(\\u0001\\ty\",\"ok\":\"\xc3\xbc\",\"nan\":\"nan\"}\n");
}

TEST(Log, LevelsAndFormatsParse) {
  EXPECT_EQ(log::parseLevel("debug"), log::Level::Debug);
  EXPECT_EQ(log::parseLevel("warning"), log::Level::Warning);
  EXPECT_EQ(log::parseLevel("INFO"), std::nullopt);
  EXPECT_EQ(log::parseFormat("json"), log::Format::Json);
  EXPECT_EQ(log::parseFormat("yaml"), std::nullopt);
}

// Restores the process's logger after a test that points it elsewhere.
class LogTo : public ::testing::Test {
protected:
  void SetUp() override {
    saved_ = log::options();
    char name[] = "/tmp/log_test.XXXXXX";
    fd_ = ::mkstemp(name);
    ASSERT_GE(fd_, 0);
    path_ = name;
  }
  void TearDown() override {
    log::configure(saved_);
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  std::string written() const { return readFile(path_, kNoSizeLimit).value(); }

  log::Options saved_;
  int fd_ = -1;
  std::string path_;
};

TEST_F(LogTo, LinesBelowTheLevelAreNotWritten) {
  log::configure({log::Level::Warning, log::Format::Text, fd_});
  log::debug("not this");
  log::info("nor this");
  log::warning("this", {{"chain", "edge"}});
  log::error("and this");
  EXPECT_FALSE(log::enabled(log::Level::Info));
  std::string out = written();
  EXPECT_EQ(out.find("this chain=edge\n"), out.find(" WARNING ") + 9) << out;
  EXPECT_NE(out.find(" ERROR and this\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("nor"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 2) << out;

  log::configure({log::Level::Debug, log::Format::Json, fd_});
  log::debug("now this");
  EXPECT_NE(written().find(R"("level":"debug","msg":"now this"})"), std::string::npos);
}

TEST_F(LogTo, ConcurrentLinesStayWhole) {
  log::configure({log::Level::Info, log::Format::Text, fd_});
  const std::string payload(300, 'x');
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i)
        log::info(payload, {{"thread", t}, {"i", i}});
    });
  for (auto& t : threads)
    t.join();
  std::string out = written();
  size_t lines = 0;
  for (size_t at = 0; at < out.size(); ++lines) {
    size_t end = out.find('\n', at);
    ASSERT_NE(end, std::string::npos);
    std::string_view l(out.data() + at, end - at);
    EXPECT_EQ(l.substr(24, 6), " INFO ") << l;
    EXPECT_EQ(l.substr(30, 300), payload);
    EXPECT_EQ(l.substr(330, 8), " thread=") << l;
    at = end + 1;
  }
  EXPECT_EQ(lines, 2000u);
}

TEST(Quote, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(quote("plain"), "\"plain\"");
  EXPECT_EQ(quote(std::string("a\"b\\c\n\x7f\0d", 9)), "\"a\\\"b\\\\c\\x0a\\x7f\\x00d\"");
  EXPECT_EQ(quote("\xc3\xbc"), "\"\xc3\xbc\""); // other bytes as they are
}

TEST(Utf8, WellFormedSequencesOnly) {
  EXPECT_EQ(utf8SequenceLength("a", 0), 1u);
  EXPECT_EQ(utf8SequenceLength("\xc3\xbc", 0), 2u);
  EXPECT_EQ(utf8SequenceLength("\xe2\x82\xac", 0), 3u);
  EXPECT_EQ(utf8SequenceLength("\xf0\x9f\x98\x80", 0), 4u);
  EXPECT_EQ(utf8SequenceLength("\xc0\xaf", 0), 0u);         // overlong
  EXPECT_EQ(utf8SequenceLength("\xed\xa0\x80", 0), 0u);     // a surrogate
  EXPECT_EQ(utf8SequenceLength("\xf4\x90\x80\x80", 0), 0u); // past U+10FFFF
  EXPECT_EQ(utf8SequenceLength("\xe2\x82", 0), 0u);         // cut short
  EXPECT_EQ(utf8SequenceLength("\x80", 0), 0u);
}

} // namespace
} // namespace bpfchain
