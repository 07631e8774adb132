// Calls `changed` whenever a link of the calling thread's network namespace appears, goes, is
// renamed or has its XDP program changed (an rtnetlink RTMGRP_LINK subscription), so that
// chains selecting interfaces by name or /regex/ follow them without waiting for a resync.
// Other link events (carrier, flags, master, statistics) are ignored. `changed` gets the
// namespace's links after the change (name -> ifindex), so that a pass need not list them.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "system/fd.h"
#include "system/result.h"

namespace bpfchain::agent {

// The interfaces of a network namespace: name -> ifindex.
using Interfaces = std::map<std::string, int>;

// The calling thread's namespace's interfaces now (if_nameindex: a dump of every link).
Interfaces listInterfaces();

class LinkMonitor {
public:
  static Result<std::unique_ptr<LinkMonitor>> start(std::function<void(Interfaces links)> changed);
  ~LinkMonitor();
  LinkMonitor(const LinkMonitor&) = delete;
  LinkMonitor& operator=(const LinkMonitor&) = delete;

private:
  LinkMonitor(FD socket, FD stop) : socket_(std::move(socket)), stop_(std::move(stop)) {}
  FD socket_;
  FD stop_;
  std::thread thread_;
};

} // namespace bpfchain::agent
