// Test packets, built layer by layer in Katran's style:
//
//   Bytes frame = PacketBuilder().eth().vlan(100).ipv4("10.0.0.1", "10.0.0.2").udp(1234, 53)
//                     .payload(32).build();
//
// build() fills in what a real stack would: ethertypes, IPv4 protocol and IPv6 next-header
// chains from the layer that follows, IPv4 total and header lengths, IPv6 payload length, UDP
// length, and the IPv4 header, ICMP, ICMPv6, TCP and UDP checksums. Modifiers (ipv4Options,
// ipv4Fragment, ipv4Ihl) apply to the last ipv4() layer; truncate() cuts the finished frame,
// leaving every length field as it was, like a capture that snapped short. Bad input (an
// unparsable address, a modifier without its layer) is a bug in the test: it throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bpfchain::testing {

using Bytes = std::vector<std::uint8_t>;

class PacketBuilder {
public:
  static constexpr std::uint16_t kTpid8021Q = 0x8100;
  static constexpr std::uint16_t kTpid8021AD = 0x88A8;
  static constexpr std::uint8_t kIpv6HopByHop = 0;
  static constexpr std::uint8_t kIpv6Routing = 43;
  static constexpr std::uint8_t kIpv6Fragment = 44;
  static constexpr std::uint8_t kIpv6Ah = 51;
  static constexpr std::uint8_t kIpv6DestOptions = 60;
  static constexpr std::uint8_t kTcpSyn = 0x02;

  PacketBuilder& eth(const std::string& src = "02:00:00:00:00:01",
                     const std::string& dst = "02:00:00:00:00:02");
  // An 802.1Q (or, with kTpid8021AD, 802.1ad) tag; several stack outermost first.
  PacketBuilder& vlan(std::uint16_t id, std::uint16_t tpid = kTpid8021Q);
  // Sets the ethertype that follows the MACs and tags (build() infers it otherwise): for
  // protocols the builder has no layer for. What comes after it is up to payload().
  PacketBuilder& ethertype(std::uint16_t type);
  // An ARP request from senderIp (the eth() source MAC) asking for targetIp.
  PacketBuilder& arp(const std::string& senderIp, const std::string& targetIp);

  PacketBuilder& ipv4(const std::string& src, const std::string& dst, std::uint8_t ttl = 64);
  // IPv4 options, a multiple of 4 bytes (at most 40); they raise the IHL.
  PacketBuilder& ipv4Options(const Bytes& options);
  // The fragment offset in bytes (a multiple of 8) and the more-fragments flag.
  PacketBuilder& ipv4Fragment(std::uint16_t offsetBytes, bool moreFragments);
  // Writes this IHL instead of the computed one (a malformed header); the bytes stay the same.
  PacketBuilder& ipv4Ihl(std::uint8_t ihl);
  // Overrides the protocol field, which build() infers from the next layer otherwise.
  PacketBuilder& ipv4Protocol(std::uint8_t protocol);

  PacketBuilder& ipv6(const std::string& src, const std::string& dst, std::uint8_t hopLimit = 64);
  // An extension header of `type` (kIpv6HopByHop, kIpv6Routing, kIpv6DestOptions, kIpv6Ah) and
  // `length` bytes in total: a multiple of 8 (of 4 for AH), at least 8. Options are padding.
  PacketBuilder& ipv6Ext(std::uint8_t type, std::size_t length = 8);
  // A fragment header: offset in bytes (a multiple of 8), more-fragments flag.
  PacketBuilder& ipv6Fragment(std::uint16_t offsetBytes, bool moreFragments,
                              std::uint32_t identification = 0x1234);

  PacketBuilder& tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags = kTcpSyn);
  PacketBuilder& udp(std::uint16_t sport, std::uint16_t dport);
  // ICMP over IPv4 (echo request by default).
  PacketBuilder& icmp(std::uint8_t type = 8, std::uint8_t code = 0);
  // ICMPv6 over IPv6 (echo request by default).
  PacketBuilder& icmpv6(std::uint8_t type = 128, std::uint8_t code = 0);

  // n payload bytes 0, 1, 2, ... (mod 256) after what is already there.
  PacketBuilder& payload(std::size_t n);
  PacketBuilder& payload(const Bytes& bytes);

  // Cuts the built frame to its first n bytes (lengths and checksums stay those of the whole).
  PacketBuilder& truncate(std::size_t n);

  Bytes build() const;

private:
  enum class Kind { Eth, Vlan, Ethertype, Arp, Ipv4, Ipv6, Ipv6Ext, Tcp, Udp, Icmp, Icmpv6, Raw };

  struct Layer {
    Kind kind;
    Bytes bytes;             // the header as written, lengths and checksums still zero
    std::uint16_t value = 0; // Vlan: TPID; Ethertype: the type; Ipv6Ext: the header type
    std::optional<std::uint8_t> ipv4Ihl;
    std::optional<std::uint8_t> ipv4Protocol;
  };

  Layer& lastLayer(Kind kind, const char* modifier);

  std::vector<Layer> layers_;
  std::optional<std::size_t> truncateTo_;
};

} // namespace bpfchain::testing
