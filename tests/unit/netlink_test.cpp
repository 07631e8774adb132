// system/netlink.h: one link's rtnetlink message parsed (without root), and RTM_GETLINK
// against the loopback device, which every network namespace has.
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cerrno>
#include <cstring>
#include <gtest/gtest.h>
#include <net/if.h>
#include <vector>

#include "system/netlink.h"

namespace bpfchain {
namespace {

// An RTM_NEWLINK message built attribute by attribute.
class LinkMessage {
public:
  explicit LinkMessage(int index) : buffer_(NLMSG_LENGTH(sizeof(ifinfomsg))) {
    header()->nlmsg_type = RTM_NEWLINK;
    static_cast<ifinfomsg*>(NLMSG_DATA(header()))->ifi_index = index;
    header()->nlmsg_len = static_cast<uint32_t>(buffer_.size());
  }
  // Starts a nested attribute; end() closes it.
  size_t begin(unsigned short type) { return add(type, nullptr, 0); }
  void end(size_t at) {
    reinterpret_cast<rtattr*>(buffer_.data() + at)->rta_len =
        static_cast<unsigned short>(buffer_.size() - at);
    header()->nlmsg_len = static_cast<uint32_t>(buffer_.size());
  }
  size_t add(unsigned short type, const void* data, size_t size) {
    size_t at = NLMSG_ALIGN(buffer_.size());
    buffer_.resize(at + RTA_SPACE(size));
    auto* attr = reinterpret_cast<rtattr*>(buffer_.data() + at);
    attr->rta_type = type;
    attr->rta_len = static_cast<unsigned short>(RTA_LENGTH(size));
    if (size > 0)
      std::memcpy(RTA_DATA(attr), data, size);
    header()->nlmsg_len = static_cast<uint32_t>(buffer_.size());
    return at;
  }
  nlmsghdr* header() { return reinterpret_cast<nlmsghdr*>(buffer_.data()); }

private:
  std::vector<char> buffer_;
};

TEST(Netlink, ParsesTheLinkAttributesTheReadersUse) {
  LinkMessage m(7);
  m.add(IFLA_IFNAME, "veth1\0", 6);
  uint32_t peer = 9;
  m.add(IFLA_LINK, &peer, sizeof peer);
  int32_t netnsid = 0;
  m.add(IFLA_LINK_NETNSID, &netnsid, sizeof netnsid);
  size_t info = m.begin(IFLA_LINKINFO);
  m.add(IFLA_INFO_KIND, "veth", 4); // not NUL-terminated: the payload's length bounds it
  m.end(info);
  size_t xdp = m.begin(IFLA_XDP);
  uint8_t mode = XDP_ATTACHED_DRV;
  m.add(IFLA_XDP_ATTACHED, &mode, sizeof mode);
  uint32_t id = 42;
  m.add(IFLA_XDP_PROG_ID, &id, sizeof id);
  m.end(xdp);

  auto link = netlink::parseLink(m.header());
  ASSERT_TRUE(link.has_value());
  EXPECT_EQ(link->index, 7);
  EXPECT_EQ(link->name, "veth1");
  EXPECT_EQ(link->kind, "veth");
  EXPECT_EQ(link->peerIndex, 9);
  EXPECT_TRUE(link->peerElsewhere);
  EXPECT_EQ(link->xdpAttached, XDP_ATTACHED_DRV);
  EXPECT_EQ(link->xdpProgId, 42u);
}

TEST(Netlink, AMessageTooShortForALinkIsNone) {
  LinkMessage m(1);
  m.header()->nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg) - 1);
  EXPECT_FALSE(netlink::parseLink(m.header()).has_value());
}

TEST(Netlink, GetsTheLoopbackByNameAndByIndex) {
  auto sock = netlink::openRouteSocket(std::chrono::seconds(1));
  ASSERT_TRUE(sock.ok()) << sock.error().message();
  auto byName = netlink::getLink(sock->get(), 0, "lo");
  ASSERT_TRUE(byName.ok()) << byName.error().message();
  EXPECT_EQ(byName->index, static_cast<int>(if_nametoindex("lo")));
  EXPECT_EQ(byName->xdpProgId, 0u);
  auto byIndex = netlink::getLink(sock->get(), byName->index);
  ASSERT_TRUE(byIndex.ok()) << byIndex.error().message();
  EXPECT_EQ(byIndex->name, "lo");

  auto missing = netlink::getLink(sock->get(), 0x7ffffff0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ENODEV) << missing.error().message();
  auto badName = netlink::getLink(sock->get(), 0, "");
  ASSERT_FALSE(badName.ok());
  EXPECT_EQ(badName.error().code(), EINVAL);
}

} // namespace
} // namespace bpfchain
