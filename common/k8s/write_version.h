// The resourceVersion to send with an update (PUT) of an object the writer also watches. Its own
// last write reaches its watch a little later, so the version the watch shows may be the one
// that write replaced; sending that would meet a conflict for nothing. While the watch still
// shows the version the last write was sent with, the next write goes with the version that
// write made. A write by anyone else since is still refused (a conflict), as it must be.
#pragma once
#include <string>
#include <utility>

namespace bpfchain::k8s {

class WriteVersion {
public:
  // The version to send, given the one the watch shows now.
  std::string toSend(const std::string& seen) const {
    return !sentWhile_.empty() && seen == sentWhile_ ? made_ : seen;
  }
  // A write was accepted: sent while the watch showed `seen`, it made version `made`.
  void written(std::string seen, std::string made) {
    sentWhile_ = std::move(seen);
    made_ = std::move(made);
  }

private:
  std::string sentWhile_;
  std::string made_;
};

} // namespace bpfchain::k8s
