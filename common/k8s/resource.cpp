#include "k8s/resource.h"

namespace bpfchain::k8s {

std::string Resource::collectionPath(const std::string& ns) const {
  std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty())
    path += "/namespaces/" + ns;
  return path + "/" + plural;
}

std::string Resource::objectPath(const std::string& ns, const std::string& name,
                                 const std::string& subresource) const {
  std::string path = collectionPath(ns) + "/" + name;
  return subresource.empty() ? path : path + "/" + subresource;
}

namespace resources {
const Resource kNodes{"", "v1", "nodes", "Node", false};
const Resource kPods{"", "v1", "pods", "Pod", true};
const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
const Resource kEvents{"", "v1", "events", "Event", true};
const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
const Resource kCustomResourceDefinitions{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                                          "CustomResourceDefinition", false};
} // namespace resources

} // namespace bpfchain::k8s
