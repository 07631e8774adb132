// Which collection a request addresses: group, version, plural name and scope, as the API
// server's discovery documents say. URL paths follow the API conventions:
//   core:   /api/v1[/namespaces/NS]/PLURAL[/NAME[/SUB]]
//   others: /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME[/SUB]]
#pragma once

#include <string>

namespace bpfchain::k8s {

struct Resource {
  std::string group; // "" for the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = false;

  std::string apiVersion() const { return group.empty() ? version : group + "/" + version; }
  // The collection, in namespace `ns` when namespaced and ns is not empty (else across all).
  std::string collectionPath(const std::string& ns) const;
  std::string objectPath(const std::string& ns, const std::string& name,
                         const std::string& subresource = "") const;
};

namespace resources {
extern const Resource kNodes;
extern const Resource kPods;
extern const Resource kNamespaces;
extern const Resource kEvents;
extern const Resource kLeases;
extern const Resource kCustomResourceDefinitions;
} // namespace resources

} // namespace bpfchain::k8s
