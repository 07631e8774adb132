#include "harness/packet_builder.h"

#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cstdio>
#include <stdexcept>

namespace bpfchain::testing {
namespace {

constexpr std::uint16_t kEthertypeIpv4 = 0x0800;
constexpr std::uint16_t kEthertypeIpv6 = 0x86DD;
constexpr std::uint16_t kEthertypeArp = 0x0806;
constexpr std::uint8_t kProtoIcmp = 1;
constexpr std::uint8_t kProtoIpip = 4;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kProtoIpv6 = 41;
constexpr std::uint8_t kProtoIcmpv6 = 58;
constexpr std::uint8_t kProtoNone = 59;
constexpr std::size_t kEthHeader = 14;
constexpr std::size_t kIpv4Header = 20;
constexpr std::size_t kIpv6Header = 40;

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
  b.at(at) = static_cast<std::uint8_t>(v >> 8);
  b.at(at + 1) = static_cast<std::uint8_t>(v);
}

void put32(Bytes& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

std::array<std::uint8_t, 6> parseMac(const std::string& text) {
  std::array<std::uint8_t, 6> mac{};
  char extra = 0;
  if (std::sscanf(text.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx%c", &mac[0], &mac[1], &mac[2],
                  &mac[3], &mac[4], &mac[5], &extra) != 6)
    throw std::invalid_argument("PacketBuilder: bad MAC address " + text);
  return mac;
}

std::array<std::uint8_t, 4> parseIpv4(const std::string& text) {
  std::array<std::uint8_t, 4> addr{};
  if (::inet_pton(AF_INET, text.c_str(), addr.data()) != 1)
    throw std::invalid_argument("PacketBuilder: bad IPv4 address " + text);
  return addr;
}

std::array<std::uint8_t, 16> parseIpv6(const std::string& text) {
  std::array<std::uint8_t, 16> addr{};
  if (::inet_pton(AF_INET6, text.c_str(), addr.data()) != 1)
    throw std::invalid_argument("PacketBuilder: bad IPv6 address " + text);
  return addr;
}

// The Internet checksum's running sum (RFC 1071) over [begin, end) of b.
std::uint32_t sumWords(const Bytes& b, std::size_t begin, std::size_t end, std::uint32_t sum) {
  for (std::size_t i = begin; i < end; i += 2) {
    std::uint32_t word = static_cast<std::uint32_t>(b[i]) << 8;
    if (i + 1 < end)
      word |= b[i + 1];
    sum += word;
  }
  return sum;
}

std::uint16_t foldChecksum(std::uint32_t sum) {
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum);
}

} // namespace

PacketBuilder::Layer& PacketBuilder::lastLayer(Kind kind, const char* modifier) {
  auto it = std::find_if(layers_.rbegin(), layers_.rend(),
                         [kind](const Layer& layer) { return layer.kind == kind; });
  if (it != layers_.rend())
    return *it;
  throw std::logic_error(std::string("PacketBuilder: ") + modifier + " without its layer");
}

PacketBuilder& PacketBuilder::eth(const std::string& src, const std::string& dst) {
  Layer layer{Kind::Eth, Bytes(kEthHeader, 0)};
  auto srcMac = parseMac(src);
  auto dstMac = parseMac(dst);
  std::copy(dstMac.begin(), dstMac.end(), layer.bytes.begin());
  std::copy(srcMac.begin(), srcMac.end(), layer.bytes.begin() + 6);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::vlan(std::uint16_t id, std::uint16_t tpid) {
  Layer layer{Kind::Vlan, Bytes(4, 0), tpid};
  put16(layer.bytes, 0, id & 0x0fff);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::ethertype(std::uint16_t type) {
  layers_.push_back(Layer{Kind::Ethertype, {}, type});
  return *this;
}

PacketBuilder& PacketBuilder::arp(const std::string& senderIp, const std::string& targetIp) {
  Layer layer{Kind::Arp, Bytes(28, 0)};
  put16(layer.bytes, 0, 1); // Ethernet
  put16(layer.bytes, 2, kEthertypeIpv4);
  layer.bytes[4] = 6;
  layer.bytes[5] = 4;
  put16(layer.bytes, 6, 1); // request
  // The sender's MAC is the frame's source MAC.
  auto eth = std::find_if(layers_.rbegin(), layers_.rend(),
                          [](const Layer& l) { return l.kind == Kind::Eth; });
  if (eth != layers_.rend())
    std::copy(eth->bytes.begin() + 6, eth->bytes.begin() + 12, layer.bytes.begin() + 8);
  auto sender = parseIpv4(senderIp);
  auto target = parseIpv4(targetIp);
  std::copy(sender.begin(), sender.end(), layer.bytes.begin() + 14);
  std::copy(target.begin(), target.end(), layer.bytes.begin() + 24);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::ipv4(const std::string& src, const std::string& dst,
                                   std::uint8_t ttl) {
  Layer layer{Kind::Ipv4, Bytes(kIpv4Header, 0)};
  put16(layer.bytes, 4, 0x1234); // identification
  layer.bytes[8] = ttl;
  auto s = parseIpv4(src);
  auto d = parseIpv4(dst);
  std::copy(s.begin(), s.end(), layer.bytes.begin() + 12);
  std::copy(d.begin(), d.end(), layer.bytes.begin() + 16);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Options(const Bytes& options) {
  Layer& layer = lastLayer(Kind::Ipv4, "ipv4Options");
  if (options.size() % 4 != 0 || layer.bytes.size() + options.size() > 60)
    throw std::invalid_argument("PacketBuilder: IPv4 options must be 4-byte words, 40 at most");
  layer.bytes.insert(layer.bytes.end(), options.begin(), options.end());
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Fragment(std::uint16_t offsetBytes, bool moreFragments) {
  Layer& layer = lastLayer(Kind::Ipv4, "ipv4Fragment");
  if (offsetBytes % 8 != 0)
    throw std::invalid_argument("PacketBuilder: fragment offsets are multiples of 8");
  put16(layer.bytes, 6,
        static_cast<std::uint16_t>((moreFragments ? 0x2000 : 0) | ((offsetBytes / 8) & 0x1fff)));
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Ihl(std::uint8_t ihl) {
  lastLayer(Kind::Ipv4, "ipv4Ihl").ipv4Ihl = ihl;
  return *this;
}

PacketBuilder& PacketBuilder::ipv4Protocol(std::uint8_t protocol) {
  lastLayer(Kind::Ipv4, "ipv4Protocol").ipv4Protocol = protocol;
  return *this;
}

PacketBuilder& PacketBuilder::ipv6(const std::string& src, const std::string& dst,
                                   std::uint8_t hopLimit) {
  Layer layer{Kind::Ipv6, Bytes(kIpv6Header, 0)};
  layer.bytes[0] = 0x60;
  layer.bytes[7] = hopLimit;
  auto s = parseIpv6(src);
  auto d = parseIpv6(dst);
  std::copy(s.begin(), s.end(), layer.bytes.begin() + 8);
  std::copy(d.begin(), d.end(), layer.bytes.begin() + 24);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::ipv6Ext(std::uint8_t type, std::size_t length) {
  if (type == kIpv6Fragment)
    throw std::invalid_argument("PacketBuilder: use ipv6Fragment for fragment headers");
  Layer layer{Kind::Ipv6Ext, Bytes(length, 0), type};
  if (type == kIpv6Ah) {
    if (length < 12 || length % 4 != 0 || length > 1028)
      throw std::invalid_argument("PacketBuilder: bad AH length");
    layer.bytes[1] = static_cast<std::uint8_t>(length / 4 - 2);
  } else {
    if (length < 8 || length % 8 != 0 || length > 2048)
      throw std::invalid_argument("PacketBuilder: bad extension header length");
    layer.bytes[1] = static_cast<std::uint8_t>(length / 8 - 1);
    if (type == kIpv6HopByHop || type == kIpv6DestOptions) {
      // One PadN option covering the 6 bytes after the header's first two (and more).
      layer.bytes[2] = 1;
      layer.bytes[3] = static_cast<std::uint8_t>(length - 4);
    }
    // A routing header stays type 0 with no segments left, as the receiver sees it: the stack
    // skips it, and checksums use the IPv6 header's destination (tcpdump, which takes the
    // routing header's last address instead, calls them wrong).
  }
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::ipv6Fragment(std::uint16_t offsetBytes, bool moreFragments,
                                           std::uint32_t identification) {
  if (offsetBytes % 8 != 0)
    throw std::invalid_argument("PacketBuilder: fragment offsets are multiples of 8");
  Layer layer{Kind::Ipv6Ext, Bytes(8, 0), kIpv6Fragment};
  put16(layer.bytes, 2,
        static_cast<std::uint16_t>((offsetBytes / 8) << 3 | (moreFragments ? 1 : 0)));
  put32(layer.bytes, 4, identification);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::tcp(std::uint16_t sport, std::uint16_t dport, std::uint8_t flags) {
  Layer layer{Kind::Tcp, Bytes(20, 0)};
  put16(layer.bytes, 0, sport);
  put16(layer.bytes, 2, dport);
  put32(layer.bytes, 4, 1); // sequence number
  layer.bytes[12] = 5 << 4; // data offset: no options
  layer.bytes[13] = flags;
  put16(layer.bytes, 14, 65535); // window
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::udp(std::uint16_t sport, std::uint16_t dport) {
  Layer layer{Kind::Udp, Bytes(8, 0)};
  put16(layer.bytes, 0, sport);
  put16(layer.bytes, 2, dport);
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::icmp(std::uint8_t type, std::uint8_t code) {
  Layer layer{Kind::Icmp, Bytes(8, 0)};
  layer.bytes[0] = type;
  layer.bytes[1] = code;
  put16(layer.bytes, 4, 1); // identifier
  put16(layer.bytes, 6, 1); // sequence
  layers_.push_back(std::move(layer));
  return *this;
}

PacketBuilder& PacketBuilder::icmpv6(std::uint8_t type, std::uint8_t code) {
  icmp(type, code);
  layers_.back().kind = Kind::Icmpv6;
  return *this;
}

PacketBuilder& PacketBuilder::payload(std::size_t n) {
  Bytes bytes(n);
  for (std::size_t i = 0; i < n; ++i)
    bytes[i] = static_cast<std::uint8_t>(i);
  return payload(bytes);
}

PacketBuilder& PacketBuilder::payload(const Bytes& bytes) {
  layers_.push_back(Layer{Kind::Raw, bytes});
  return *this;
}

PacketBuilder& PacketBuilder::truncate(std::size_t n) {
  truncateTo_ = n;
  return *this;
}

Bytes PacketBuilder::build() const {
  // The link-layer type and IP protocol numbers that announce a layer to the one before it.
  auto linkTypeOf = [](const Layer& l) -> std::optional<std::uint16_t> {
    switch (l.kind) {
    case Kind::Vlan:
    case Kind::Ethertype:
      return l.value;
    case Kind::Arp:
      return kEthertypeArp;
    case Kind::Ipv4:
      return kEthertypeIpv4;
    case Kind::Ipv6:
      return kEthertypeIpv6;
    default:
      return std::nullopt;
    }
  };
  auto protoOf = [](const Layer* l) -> std::uint8_t {
    if (l == nullptr)
      return kProtoNone;
    switch (l->kind) {
    case Kind::Ipv4:
      return kProtoIpip;
    case Kind::Ipv6:
      return kProtoIpv6;
    case Kind::Ipv6Ext:
      return static_cast<std::uint8_t>(l->value);
    case Kind::Tcp:
      return kProtoTcp;
    case Kind::Udp:
      return kProtoUdp;
    case Kind::Icmp:
      return kProtoIcmp;
    case Kind::Icmpv6:
      return kProtoIcmpv6;
    default:
      return kProtoNone;
    }
  };

  // Lay the headers out, with the type fields that depend on the next layer.
  Bytes frame;
  std::vector<std::size_t> offsets;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Layer layer = layers_[i];
    const Layer* next = nullptr;
    for (std::size_t j = i + 1; j < layers_.size() && next == nullptr; ++j) {
      if (layers_[j].kind != Kind::Ethertype || layer.kind == Kind::Eth || layer.kind == Kind::Vlan)
        next = &layers_[j];
    }
    switch (layer.kind) {
    case Kind::Eth:
      if (next != nullptr && linkTypeOf(*next))
        put16(layer.bytes, 12, *linkTypeOf(*next));
      break;
    case Kind::Vlan:
      if (next != nullptr && linkTypeOf(*next))
        put16(layer.bytes, 2, *linkTypeOf(*next));
      break;
    case Kind::Ipv4:
      layer.bytes[0] = static_cast<std::uint8_t>(
          0x40 | (layer.ipv4Ihl ? *layer.ipv4Ihl & 0x0f : layer.bytes.size() / 4));
      layer.bytes[9] = layer.ipv4Protocol ? *layer.ipv4Protocol : protoOf(next);
      break;
    case Kind::Ipv6:
      layer.bytes[6] = protoOf(next);
      break;
    case Kind::Ipv6Ext:
      layer.bytes[0] = protoOf(next);
      break;
    default:
      break;
    }
    offsets.push_back(frame.size());
    frame.insert(frame.end(), layer.bytes.begin(), layer.bytes.end());
  }

  // Lengths and checksums, innermost first: a checksum covers the lengths inside it.
  for (std::size_t i = layers_.size(); i-- > 0;) {
    const std::size_t at = offsets[i];
    const std::size_t rest = frame.size() - at;
    // The innermost IP header before this layer, for pseudo-headers.
    std::optional<std::size_t> ip;
    for (std::size_t j = i; j-- > 0;) {
      if (layers_[j].kind == Kind::Ipv4 || layers_[j].kind == Kind::Ipv6) {
        ip = j;
        break;
      }
    }
    auto pseudoSum = [&](std::uint8_t proto) -> std::uint32_t {
      if (!ip)
        return 0;
      const std::size_t ipAt = offsets[*ip];
      std::uint32_t sum = proto + static_cast<std::uint32_t>(rest & 0xffff) +
                          static_cast<std::uint32_t>(rest >> 16);
      if (layers_[*ip].kind == Kind::Ipv4)
        return sumWords(frame, ipAt + 12, ipAt + 20, sum);
      return sumWords(frame, ipAt + 8, ipAt + 40, sum);
    };
    switch (layers_[i].kind) {
    case Kind::Ipv4: {
      put16(frame, at + 2, static_cast<std::uint16_t>(rest));
      const std::size_t hlen = layers_[i].bytes.size();
      put16(frame, at + 10, foldChecksum(sumWords(frame, at, at + hlen, 0)));
      break;
    }
    case Kind::Ipv6:
      put16(frame, at + 4, static_cast<std::uint16_t>(rest - kIpv6Header));
      break;
    case Kind::Udp: {
      put16(frame, at + 4, static_cast<std::uint16_t>(rest));
      std::uint16_t sum = foldChecksum(sumWords(frame, at, frame.size(), pseudoSum(kProtoUdp)));
      put16(frame, at + 6, sum == 0 ? 0xffff : sum); // 0 means "no checksum" in UDP
      break;
    }
    case Kind::Tcp:
      put16(frame, at + 16, foldChecksum(sumWords(frame, at, frame.size(), pseudoSum(kProtoTcp))));
      break;
    case Kind::Icmp:
      put16(frame, at + 2, foldChecksum(sumWords(frame, at, frame.size(), 0)));
      break;
    case Kind::Icmpv6:
      put16(frame, at + 2,
            foldChecksum(sumWords(frame, at, frame.size(), pseudoSum(kProtoIcmpv6))));
      break;
    default:
      break;
    }
  }

  if (truncateTo_ && *truncateTo_ < frame.size())
    frame.resize(*truncateTo_);
  return frame;
}

} // namespace bpfchain::testing
