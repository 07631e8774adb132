#include "packages/manifest.h"

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include "system/escape.h"

namespace bpfchain::packages {
namespace {

PackageError invalid(const std::string& source, const std::string& what) {
  return packageError(kManifestInvalid, invalidError(source + ": " + what));
}

std::string at(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0)
    return "";
  return " (line " + std::to_string(mark.line + 1) + ")";
}

// A required, non-empty string field of `map`.
Result<std::string, PackageError> stringField(const YAML::Node& map, const std::string& key,
                                              const std::string& field, const std::string& source) {
  YAML::Node node = map[key];
  if (!node || node.IsNull())
    return invalid(source, field + ": missing");
  if (!node.IsScalar())
    return invalid(source, field + ": must be a string" + at(node));
  std::string value = node.Scalar();
  if (value.empty())
    return invalid(source, field + ": must not be empty" + at(node));
  // YAML is Unicode text but yaml-cpp passes any bytes through; a field that is not printable
  // UTF-8 would end up in logs and status, and manifestYaml could not write it back.
  for (size_t i = 0; i < value.size();) {
    size_t n = utf8SequenceLength(value, i);
    auto c = static_cast<unsigned char>(value[i]);
    if (n == 0 || c < 0x20 || c == 0x7f)
      return invalid(source, field + ": must be printable UTF-8 text, byte " + std::to_string(i) +
                                 " is not" + at(node));
    i += n;
  }
  return value;
}

// An object path as the archive stores it: "./" and empty components dropped.
Result<std::string> normalizeObject(const std::string& path) {
  if (path.front() == '/')
    return invalidError("must be a relative path inside the package");
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..")
      return invalidError("must not contain \"..\"");
    if (!part.empty() && part != ".")
      out += (out.empty() ? "" : "/") + part;
    start = end + 1;
  }
  if (out.empty())
    return invalidError("names no file");
  return out;
}

} // namespace

bool validHook(std::string_view hook) {
  return hook == "xdp" || hook == "tc-ingress" || hook == "tc-egress";
}

Result<Manifest, PackageError> parseManifest(std::string_view yaml, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return invalid(source,
                   "not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ")");
  }
  if (!root.IsMap())
    return invalid(source, "must be a YAML mapping with name, version and programs");
  Manifest m;
  auto name = stringField(root, "name", "name", source);
  if (!name)
    return name.error();
  m.name = *name;
  auto version = stringField(root, "version", "version", source);
  if (!version)
    return version.error();
  m.version = *version;
  YAML::Node programs = root["programs"];
  if (!programs || programs.IsNull())
    return invalid(source, "programs: missing");
  if (!programs.IsSequence())
    return invalid(source, "programs: must be a list" + at(programs));
  if (programs.size() == 0)
    return invalid(source, "programs: must name at least one program");
  for (size_t i = 0; i < programs.size(); ++i) {
    std::string field = "programs[" + std::to_string(i) + "]";
    YAML::Node p = programs[i];
    if (!p.IsMap())
      return invalid(source,
                     field + ": must be a mapping with object, entry, hook and nextMap" + at(p));
    ManifestProgram program;
    for (auto [key, out] : {std::pair{"object", &program.object},
                            {"entry", &program.entry},
                            {"hook", &program.hook},
                            {"nextMap", &program.nextMap}}) {
      auto value = stringField(p, key, field + "." + key, source);
      if (!value)
        return value.error();
      *out = *value;
    }
    auto object = normalizeObject(program.object);
    if (!object)
      return invalid(source, field + ".object: \"" + program.object + "\" " +
                                 object.error().message() + at(p["object"]));
    program.object = *object;
    if (!validHook(program.hook))
      return invalid(source, field + ".hook: \"" + program.hook +
                                 "\" is not one of xdp, tc-ingress, tc-egress" + at(p["hook"]));
    m.programs.push_back(std::move(program));
  }
  return m;
}

Result<void, PackageError> checkManifestObjects(const Manifest& manifest,
                                                const std::vector<std::string>& objects,
                                                const std::string& source) {
  for (size_t i = 0; i < manifest.programs.size(); ++i) {
    const std::string& object = manifest.programs[i].object;
    if (std::find(objects.begin(), objects.end(), object) == objects.end())
      return invalid(source, "programs[" + std::to_string(i) + "].object: \"" + object +
                                 "\" is not a BPF ELF object in the package");
  }
  return {};
}

std::string manifestYaml(const Manifest& manifest) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << manifest.name;
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << manifest.version;
  out << YAML::Key << "programs" << YAML::Value << YAML::BeginSeq;
  for (const ManifestProgram& p : manifest.programs) {
    out << YAML::BeginMap;
    out << YAML::Key << "object" << YAML::Value << p.object;
    out << YAML::Key << "entry" << YAML::Value << p.entry;
    out << YAML::Key << "hook" << YAML::Value << p.hook;
    out << YAML::Key << "nextMap" << YAML::Value << p.nextMap;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

} // namespace bpfchain::packages
