#include "dataplane/core_btf.h"

#include <linux/bpf.h>

#include <cstring>
#include <elf.h>
#include <map>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>
#include <unordered_set>
#include <vector>

#include "system/fd.h"
#include "system/file.h"

namespace bpfchain::dataplane {
namespace {

// The .BTF.ext header (kernel Documentation/bpf/btf.rst); offsets count from its end.
struct ExtHeader {
  uint16_t magic;
  uint8_t version;
  uint8_t flags;
  uint32_t hdrLen;
  uint32_t funcInfoOff, funcInfoLen, lineInfoOff, lineInfoLen;
  uint32_t coreReloOff, coreReloLen;
};
constexpr uint16_t kBtfMagic = 0xeB9F;

// Calls f on every type id `t` refers to (T: btf_type or const btf_type).
template <typename T, typename F> void forEachRef(T* t, F&& f) {
  switch (btf_kind(t)) {
  case BTF_KIND_PTR:
  case BTF_KIND_TYPEDEF:
  case BTF_KIND_VOLATILE:
  case BTF_KIND_CONST:
  case BTF_KIND_RESTRICT:
  case BTF_KIND_TYPE_TAG:
  case BTF_KIND_FUNC:
  case BTF_KIND_VAR:
  case BTF_KIND_DECL_TAG:
    f(t->type);
    break;
  case BTF_KIND_ARRAY:
    f(btf_array(t)->type);
    f(btf_array(t)->index_type);
    break;
  case BTF_KIND_STRUCT:
  case BTF_KIND_UNION:
    for (uint16_t i = 0; i < btf_vlen(t); ++i)
      f(btf_members(t)[i].type);
    break;
  case BTF_KIND_FUNC_PROTO:
    f(t->type);
    for (uint16_t i = 0; i < btf_vlen(t); ++i)
      f(btf_params(t)[i].type);
    break;
  case BTF_KIND_DATASEC:
    for (uint16_t i = 0; i < btf_vlen(t); ++i)
      f(btf_var_secinfos(t)[i].type);
    break;
  default: // INT, FWD, ENUM, ENUM64, FLOAT: no reference
    break;
  }
}

struct SubsetCache {
  std::mutex mutex;
  std::map<std::set<std::string>, std::string> paths; // "" = use the kernel's BTF
  std::vector<FD> files;
};

SubsetCache& cache() {
  static SubsetCache instance;
  return instance;
}

// The subset for `names` in a memfd, as a path libbpf can open; "" when that fails.
std::string writeSubset(const std::set<std::string>& names, std::vector<FD>& files) {
  BtfOwner kernel(btf__load_vmlinux_btf(), btf__free);
  if (!kernel)
    return "";
  auto subset = coreBtfSubset(kernel.get(), names);
  if (!subset || !*subset)
    return "";
  uint32_t size = 0;
  const auto* raw = static_cast<const char*>(btf__raw_data((*subset)->get(), &size));
  FD file(::memfd_create("bpfchain-core-btf", MFD_CLOEXEC));
  if (!raw || !file)
    return "";
  for (uint32_t done = 0; done < size;) {
    ssize_t n = ::write(file.get(), raw + done, size - done);
    if (n <= 0)
      return "";
    done += static_cast<uint32_t>(n);
  }
  std::string path = "/proc/self/fd/" + std::to_string(file.get());
  // The load must not fail for a file libbpf cannot read back (no /proc here, ...).
  BtfOwner readBack(btf__parse(path.c_str(), nullptr), btf__free);
  if (!readBack || btf__type_cnt(readBack.get()) != btf__type_cnt((*subset)->get()))
    return "";
  files.push_back(std::move(file));
  return path;
}

// The bytes of the section `name` of a little- or big-endian 64-bit ELF image of this host's
// byte order (a BPF object), or nothing.
std::string_view elfSection(std::string_view image, std::string_view name) {
  Elf64_Ehdr header{};
  if (image.size() < sizeof header)
    return {};
  std::memcpy(&header, image.data(), sizeof header);
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_shentsize != sizeof(Elf64_Shdr) || header.e_shoff > image.size() ||
      uint64_t{header.e_shnum} * sizeof(Elf64_Shdr) > image.size() - header.e_shoff ||
      header.e_shstrndx >= header.e_shnum)
    return {};
  auto section = [&](size_t i) {
    Elf64_Shdr s{};
    std::memcpy(&s, image.data() + header.e_shoff + i * sizeof s, sizeof s);
    return s;
  };
  auto bytes = [&](const Elf64_Shdr& s) -> std::string_view {
    if (s.sh_type == SHT_NOBITS || s.sh_offset > image.size() ||
        s.sh_size > image.size() - s.sh_offset)
      return {};
    return image.substr(s.sh_offset, s.sh_size);
  };
  std::string_view names = bytes(section(header.e_shstrndx));
  for (size_t i = 1; i < header.e_shnum; ++i) {
    Elf64_Shdr s = section(i);
    if (s.sh_name >= names.size())
      continue;
    std::string_view sectionName = names.substr(s.sh_name);
    if (sectionName.substr(0, sectionName.find('\0')) == name)
      return bytes(s);
  }
  return {};
}

} // namespace

std::string_view coreEssentialName(std::string_view name) {
  // libbpf's bpf_core_essential_name_len: the last "X___Y", X and Y not underscores.
  for (size_t i = name.size() >= 5 ? name.size() - 5 + 1 : 0; i-- > 0;)
    if (name[i] != '_' && name.substr(i + 1, 3) == "___" && name[i + 4] != '_')
      return name.substr(0, i + 1);
  return name;
}

Result<std::optional<std::set<std::string>>> coreRootNames(const ::btf* local, const void* ext,
                                                           size_t extSize) {
  std::set<std::string> names;
  ExtHeader header{};
  std::memcpy(&header, ext, std::min(extSize, sizeof header));
  if (extSize < 8 || header.magic != kBtfMagic || header.hdrLen > extSize)
    return invalidError(".BTF.ext: bad header");
  if (header.hdrLen < sizeof header || header.coreReloLen == 0)
    return std::optional(names);
  const auto* bytes = static_cast<const unsigned char*>(ext);
  size_t begin = size_t{header.hdrLen} + header.coreReloOff;
  size_t end = begin + header.coreReloLen;
  if (end > extSize || header.coreReloLen < 4)
    return invalidError(".BTF.ext: CO-RE relocations out of bounds");
  auto u32 = [&](size_t at) {
    uint32_t v = 0;
    std::memcpy(&v, bytes + at, sizeof v);
    return v;
  };
  uint32_t recordSize = u32(begin);
  if (recordSize < sizeof(bpf_core_relo))
    return invalidError(".BTF.ext: CO-RE relocation records too small");
  for (size_t at = begin + 4; at < end;) {
    if (end - at < 8)
      return invalidError(".BTF.ext: truncated CO-RE relocation section");
    uint64_t count = u32(at + 4);
    at += 8;
    if (count * recordSize > end - at)
      return invalidError(".BTF.ext: truncated CO-RE relocation records");
    for (uint64_t i = 0; i < count; ++i, at += recordSize) {
      bpf_core_relo relo{};
      std::memcpy(&relo, bytes + at, sizeof relo);
      if (relo.kind == BPF_CORE_TYPE_ID_TARGET)
        return std::optional<std::set<std::string>>();
      if (relo.kind == BPF_CORE_TYPE_ID_LOCAL)
        continue; // resolved in the object's own BTF
      const btf_type* t = btf__type_by_id(local, relo.type_id);
      const char* name = t ? btf__name_by_offset(local, t->name_off) : nullptr;
      if (!name || !*name)
        return std::optional<std::set<std::string>>();
      names.emplace(coreEssentialName(name));
    }
  }
  return std::optional(names);
}

Result<std::optional<std::set<std::string>>> coreRootNamesOfObject(std::string_view image) {
  auto types = elfSection(image, ".BTF");
  auto ext = elfSection(image, ".BTF.ext");
  if (types.empty() || ext.empty())
    return std::optional(std::set<std::string>()); // no BTF, or no relocations
  BtfOwner local(btf__new(types.data(), types.size()), btf__free);
  if (!local)
    return invalidError(".BTF: not valid BTF");
  return coreRootNames(local.get(), ext.data(), ext.size());
}

Result<std::optional<BtfOwner>> coreBtfSubset(const ::btf* kernel,
                                              const std::set<std::string>& names) {
  uint32_t count = btf__type_cnt(kernel);
  std::vector<bool> in(count, false);
  std::vector<uint32_t> todo;
  std::unordered_set<std::string_view> wanted(names.begin(), names.end()), found;
  for (uint32_t id = 1; id < count; ++id) {
    uint32_t nameOff = btf__type_by_id(kernel, id)->name_off;
    if (nameOff == 0)
      continue; // anonymous: most of the kernel's types
    auto essential = coreEssentialName(btf__name_by_offset(kernel, nameOff));
    if (wanted.contains(essential)) {
      found.insert(essential);
      in[id] = true;
      todo.push_back(id);
    }
  }
  if (found.size() != names.size())
    return std::optional<BtfOwner>();
  while (!todo.empty()) {
    const btf_type* t = btf__type_by_id(kernel, todo.back());
    todo.pop_back();
    forEachRef(t, [&](uint32_t ref) {
      if (ref != 0 && ref < count && !in[ref]) {
        in[ref] = true;
        todo.push_back(ref);
      }
    });
  }
  BtfOwner subset(btf__new_empty(), btf__free);
  if (!subset)
    return systemError(errno, "btf__new_empty");
  std::vector<uint32_t> newId(count, 0);
  for (uint32_t id = 1; id < count; ++id) {
    if (!in[id])
      continue;
    int added = btf__add_type(subset.get(), kernel, btf__type_by_id(kernel, id));
    if (added < 0)
      return systemError(-added, "btf__add_type");
    newId[id] = static_cast<uint32_t>(added);
  }
  // The copies still refer to the kernel's ids. libbpf hands out const pointers into the BTF
  // it builds for us; that buffer is ours and writable.
  for (uint32_t id = 1; id < count; ++id)
    if (in[id])
      forEachRef(const_cast<btf_type*>(btf__type_by_id(subset.get(), newId[id])),
                 [&](uint32_t& ref) { ref = ref < count ? newId[ref] : 0; });
  return std::optional(std::move(subset));
}

std::string coreBtfPathFor(const std::string& objectPath) {
  auto object = readFile(objectPath, kNoSizeLimit);
  if (!object)
    return ""; // the load says why
  auto names = coreRootNamesOfObject(*object);
  if (!names || !*names || (*names)->empty())
    return "";
  SubsetCache& c = cache();
  std::lock_guard lock(c.mutex);
  auto it = c.paths.find(**names);
  if (it == c.paths.end())
    it = c.paths.emplace(**names, writeSubset(**names, c.files)).first;
  return it->second;
}

} // namespace bpfchain::dataplane
