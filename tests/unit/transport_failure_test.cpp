// The test harness retries a kubectl request that got no answer, and never one that got an
// answer: the two kinds of kubectl stderr, as kubectl writes them.
#include <gtest/gtest.h>

#include "harness/control_plane.h"

namespace bpfchain::testing {
namespace {

TEST(TransportFailure, NoAnswerIsRetried) {
  for (const char* err :
       {"error: unable to recognize \"c.yaml\": Get \"https://127.0.0.1:35843/api?timeout=32s\": "
        "http2: client connection lost\n",
        "The connection to the server 127.0.0.1:35843 was refused - did you specify the right "
        "host or port?\nE1204 dial tcp 127.0.0.1:35843: connect: connection refused\n",
        "Error from server: Get \"https://127.0.0.1:1/apis\": unexpected EOF\n",
        "error: Patch \"https://127.0.0.1:1/apis/x\": EOF\n",
        "Unable to connect to the server: net/http: TLS handshake timeout\n"})
    EXPECT_TRUE(isTransportFailure(err)) << err;
}

TEST(TransportFailure, AnAnswerIsNot) {
  for (const char* err :
       {"Error from server (NotFound): bpfchains.bpfchain.io \"x\" not found\n",
        "The BpfChain \"x\" is invalid: spec.hook: Unsupported value: \"nope\"\n",
        "Error from server (Conflict): Operation cannot be fulfilled on bpfchains.bpfchain.io\n",
        "error: the server doesn't have a resource type \"bpfchain\"\n", ""})
    EXPECT_FALSE(isTransportFailure(err)) << err;
}

} // namespace
} // namespace bpfchain::testing
