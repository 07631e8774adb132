#include <gtest/gtest.h>
#include <vector>

#include "k8s/watch_lines.h"

using bpfchain::k8s::WatchLines;

namespace {

std::vector<std::string> drain(WatchLines& lines) {
  std::vector<std::string> out;
  while (auto line = lines.next())
    out.push_back(*line);
  return out;
}

} // namespace

TEST(WatchLines, ALineSplitAcrossChunksComesOutWhole) {
  WatchLines lines;
  lines.append(R"({"type":"ADD)");
  EXPECT_TRUE(drain(lines).empty());
  EXPECT_EQ(lines.partial(), 12u);
  lines.append("ED\"}\n{\"type\":");
  EXPECT_EQ(drain(lines), std::vector<std::string>{R"({"type":"ADDED"})"});
  lines.append("\"DELETED\"}\n");
  EXPECT_EQ(drain(lines), std::vector<std::string>{R"({"type":"DELETED"})"});
  EXPECT_EQ(lines.partial(), 0u);
}

TEST(WatchLines, ManyLinesInOneChunkComeOutInOrder) {
  WatchLines lines;
  lines.append("a\nb\r\n\nc\nd");
  EXPECT_EQ(drain(lines), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(lines.partial(), 1u);
  lines.append("\n");
  EXPECT_EQ(drain(lines), std::vector<std::string>{"d"});
}

TEST(WatchLines, OneByteAtATime) {
  WatchLines lines;
  std::string stream = "{\"x\":1}\n{\"y\":2}\n";
  std::vector<std::string> out;
  for (char c : stream) {
    lines.append(std::string_view(&c, 1));
    for (auto& l : drain(lines))
      out.push_back(l);
  }
  EXPECT_EQ(out, (std::vector<std::string>{"{\"x\":1}", "{\"y\":2}"}));
}
