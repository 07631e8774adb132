#include "dataplane/program_instance.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sys/stat.h>

#include "btf/global_data.h"
#include "dataplane/core_btf.h"
#include "dataplane/libbpf_log.h"
#include "dataplane/map_carry.h"

namespace bpfchain::dataplane {
namespace {

using ObjectPtr = std::unique_ptr<bpf_object, void (*)(bpf_object*)>;

Result<void> makeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return systemError(errno, "mkdir " + dir);
  return {};
}

std::string programNames(bpf_object* obj) {
  std::string names;
  bpf_program* prog;
  bpf_object__for_each_program (prog, obj) {
    names += (names.empty() ? "" : ", ") + std::string(bpf_program__name(prog));
  }
  return names.empty() ? "none" : names;
}

std::string mapNames(bpf_object* obj) {
  std::string names;
  bpf_map* map;
  bpf_object__for_each_map (map, obj) {
    names += (names.empty() ? "" : ", ") + std::string(bpf_map__name(map));
  }
  return names.empty() ? "none" : names;
}

// The pin name of a map: its name with every '.' (which bpffs refuses) made '_'.
std::string mapPinName(std::string name) {
  std::replace(name.begin(), name.end(), '.', '_');
  return name;
}

Result<FD> openPin(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0)
    return systemError(errno, "open pin " + path);
  return FD(fd);
}

Result<FD> duplicate(int fd, const std::string& what) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0)
    return systemError(errno, "dup " + what);
  return FD(copy);
}

using BtfPtr = std::unique_ptr<::btf, void (*)(::btf*)>;

// The shape of a map the running instance pinned, from the kernel; `types` caches the BTF
// objects by id (all maps of one instance share one).
Result<MapShape> runningShape(int fd, std::map<uint32_t, BtfPtr>& types) {
  bpf_map_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return systemError(errno, "bpf_obj_get_info_by_fd");
  MapShape shape{info.type, info.key_size, info.value_size, info.max_entries, info.map_flags, "",
                 ""};
  if (info.btf_id == 0)
    return shape;
  auto found = types.find(info.btf_id);
  if (found == types.end()) {
    // A BTF the kernel cannot give back (freed, or no permission) compares by sizes alone.
    found = types.emplace(info.btf_id, BtfPtr(btf__load_from_kernel_by_id(info.btf_id), btf__free))
                .first;
  }
  if (found->second) {
    shape.keyType = btfLayout(found->second.get(), info.btf_key_type_id);
    shape.valueType = btfLayout(found->second.get(), info.btf_value_type_id);
  }
  return shape;
}

// The section of an internal map (".bss" of "ratelimi.bss"), or "" for other maps.
std::string sectionOf(const bpf_map* map) {
  if (!bpf_map__is_internal(map))
    return "";
  std::string name = bpf_map__name(map);
  auto dot = name.find('.');
  return dot == std::string::npos ? name : name.substr(dot);
}

// The shape of a map of the opened, not yet loaded object. libbpf learns an internal map's
// BTF type (its DATASEC) only when it creates it, so that one is looked up by section.
MapShape wantedShape(bpf_object* obj, const bpf_map* map) {
  const ::btf* types = bpf_object__btf(obj);
  MapShape shape{bpf_map__type(map),
                 bpf_map__key_size(map),
                 bpf_map__value_size(map),
                 bpf_map__max_entries(map),
                 bpf_map__map_flags(map),
                 "",
                 ""};
  uint32_t key = bpf_map__btf_key_type_id(map);
  uint32_t value = bpf_map__btf_value_type_id(map);
  if (types && value == 0 && bpf_map__is_internal(map)) {
    int id = btf__find_by_name_kind(types, sectionOf(map).c_str(), BTF_KIND_DATASEC);
    value = id > 0 ? static_cast<uint32_t>(id) : 0;
  }
  if (shape.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY && shape.maxEntries == 0)
    shape.maxEntries = static_cast<uint32_t>(libbpf_num_possible_cpus()); // libbpf's default
  shape.keyType = btfLayout(types, key);
  shape.valueType = btfLayout(types, value);
  return shape;
}

// The sections (".data", ...) holding a variable that `globals` sets.
std::set<std::string> sectionsSetBy(const ::btf* types,
                                    const std::map<std::string, std::string>& globals) {
  std::set<std::string> sections;
  if (!types || globals.empty())
    return sections;
  for (uint32_t id = 1; id < btf__type_cnt(types); ++id) {
    const btf_type* t = btf__type_by_id(types, id);
    if (btf_kind(t) != BTF_KIND_DATASEC)
      continue;
    const btf_var_secinfo* v = btf_var_secinfos(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++v) {
      const btf_type* var = btf__type_by_id(types, v->type);
      if (var && globals.contains(btf__name_by_offset(types, var->name_off)))
        sections.insert(btf__name_by_offset(types, t->name_off));
    }
  }
  return sections;
}

// The running instance's internal map of `section`. libbpf names internal maps after the
// object ("ratelimi.bss"), so a version built into a file of another name pins it under
// another name: look for it by the section in the kernel's name of each pinned map.
Result<FD> openInternalMap(const ProgramInstance& running, const std::string& section) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(running.dir() + "/maps", ec)) {
    auto fd = openPin(entry.path());
    if (!fd)
      continue;
    bpf_map_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(fd->get(), &info, &len) != 0)
      continue;
    std::string name = info.name;
    auto dot = name.find('.');
    if (dot != std::string::npos && name.substr(dot) == section)
      return fd;
  }
  return invalidError("no " + section + " map in " + running.dir());
}

// Makes each map of `obj` that carries (map_carry.h) the running instance's map, before load.
Result<void> carryMaps(bpf_object* obj, const ProgramSpec& spec, const bpf_map* next,
                       CarryFrom carry, std::vector<UncarriedMap>* uncarried) {
  const ProgramInstance& running = *carry.running;
  std::set<std::string> freshMaps(spec.freshMaps.begin(), spec.freshMaps.end());
  for (const auto& name : freshMaps)
    if (!bpf_object__find_map_by_name(obj, name.c_str()))
      return Error(ErrorKind::ProgramInvalid, 0,
                   "freshMaps: map \"" + name + "\": no such map in " + spec.objectPath +
                       " (maps: " + mapNames(obj) + ")");
  std::set<std::string> configured = sectionsSetBy(bpf_object__btf(obj), spec.globalData);
  std::map<uint32_t, BtfPtr> types;
  bpf_map* map;
  bpf_object__for_each_map (map, obj) {
    if (map == next)
      continue;
    // Other program arrays (another entry's next map, a jump table) hold programs of the
    // running version: a clone (the same version) shares them, an upgrade never carries them,
    // and that is not worth a word in status.
    if (!carry.clone && bpf_map__type(map) == BPF_MAP_TYPE_PROG_ARRAY)
      continue;
    std::string name = bpf_map__name(map);
    std::string section = sectionOf(map);
    if (!carry.clone) {
      if (spec.freshState || freshMaps.contains(name) || configurationMap(section) ||
          configured.contains(section))
        continue;
    }
    auto fd = running.openMap(name);
    if (!fd && !section.empty() && !carry.clone)
      fd = openInternalMap(running, section);
    if (!fd) {
      if (carry.clone) // the same object: every map is there
        return std::move(fd).error().context("share maps with " + running.dir());
      continue; // new in this version
    }
    if (!carry.clone) {
      auto have = runningShape(fd->get(), types);
      if (!have)
        return std::move(have).error().context("map " + name + " of " + running.dir());
      if (auto refusal = carryRefusal(*have, wantedShape(obj, map))) {
        if (uncarried)
          uncarried->push_back({name, *refusal});
        continue;
      }
    }
    if (bpf_map__reuse_fd(map, fd->get()) != 0)
      return systemError(errno, "reuse map " + name);
  }
  return {};
}

// The struct a program's first argument points to, by the object's BTF; "" when it has none.
std::string firstArgumentStruct(bpf_object* obj, bpf_program* prog) {
  const struct btf* btf = bpf_object__btf(obj);
  if (!btf)
    return "";
  __s32 func = btf__find_by_name_kind(btf, bpf_program__name(prog), BTF_KIND_FUNC);
  const btf_type* proto =
      func > 0 ? btf__type_by_id(btf, btf__type_by_id(btf, func)->type) : nullptr;
  if (!proto || !btf_is_func_proto(proto) || btf_vlen(proto) < 1)
    return "";
  __s32 arg = btf__resolve_type(btf, btf_params(proto)[0].type);
  const btf_type* pointer = arg > 0 ? btf__type_by_id(btf, arg) : nullptr;
  if (!pointer || !btf_is_ptr(pointer))
    return "";
  __s32 target = btf__resolve_type(btf, pointer->type);
  const btf_type* type = target > 0 ? btf__type_by_id(btf, target) : nullptr;
  if (!type || !btf_is_composite(type))
    return "";
  return btf__name_by_offset(btf, type->name_off);
}

// Everything up to the load, on an opened object; returns the entry program and next map.
Result<std::pair<bpf_program*, bpf_map*>> prepare(bpf_object* obj, const ProgramSpec& spec,
                                                  Hook hook, CarryFrom carry,
                                                  std::vector<UncarriedMap>* uncarried) {
  bpf_program* entry = bpf_object__find_program_by_name(obj, spec.entry.c_str());
  if (!entry)
    return Error(ErrorKind::ProgramInvalid, 0,
                 "entry \"" + spec.entry + "\": no such program in " + spec.objectPath +
                     " (programs: " + programNames(obj) + ")");
  ProgramDeclaration declared{.section = bpf_program__section_name(entry),
                              .firstArgument = firstArgumentStruct(obj, entry)};
  enum bpf_prog_type sectionType;
  enum bpf_attach_type attachType;
  if (libbpf_prog_type_by_name(declared.section.c_str(), &sectionType, &attachType) == 0)
    declared.sectionType = sectionType;
  if (auto mismatch = hookMismatch(hook, declared))
    return Error(ErrorKind::ProgramInvalid, 0,
                 "entry \"" + spec.entry + "\" in " + spec.objectPath + ": " + *mismatch);
  bpf_program* prog;
  bpf_object__for_each_program (prog, obj) {
    bpf_program__set_autoload(prog, prog == entry);
  }
  bpf_program__set_type(entry, programType(hook));
  bpf_program__set_expected_attach_type(entry, hook == Hook::Xdp ? BPF_XDP
                                                                 : static_cast<bpf_attach_type>(0));

  bpf_map* next = bpf_object__find_map_by_name(obj, spec.nextMap.c_str());
  if (!next)
    return Error(ErrorKind::ProgramInvalid, 0,
                 "nextMap \"" + spec.nextMap + "\": no such map in " + spec.objectPath +
                     " (maps: " + mapNames(obj) + ")");
  if (bpf_map__type(next) != BPF_MAP_TYPE_PROG_ARRAY || bpf_map__max_entries(next) < 1)
    return Error(ErrorKind::ProgramInvalid, 0,
                 "nextMap \"" + spec.nextMap +
                     "\": not a BPF_MAP_TYPE_PROG_ARRAY with at least one slot");

  if (auto r = btf::setGlobalData(obj, spec.globalData, "globalData"); !r)
    return std::move(r).error().withKind(ErrorKind::GlobalDataInvalid);

  if (carry.running) {
    if (auto r = carryMaps(obj, spec, next, carry, uncarried); !r)
      return std::move(r).error();
  }
  return std::make_pair(entry, next);
}

} // namespace

Result<uint32_t> programIdOf(int fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
    return systemError(errno, "bpf_obj_get_info_by_fd");
  return info.id;
}

Result<void> removePinTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (ec)
    return Error(ec.value(), "remove " + dir + ": " + ec.message());
  return {};
}

Result<ProgramInstance> ProgramInstance::load(const ProgramSpec& spec, Hook hook,
                                              const std::string& dir, CarryFrom carry,
                                              std::vector<UncarriedMap>* uncarried) {
  return loadFrom(nullptr, 0, spec, hook, dir, carry, uncarried);
}

Result<ProgramInstance> ProgramInstance::loadImage(const void* image, size_t size,
                                                   const ProgramSpec& spec, Hook hook,
                                                   const std::string& dir) {
  return loadFrom(image, size, spec, hook, dir, {}, nullptr);
}

Result<ProgramInstance> ProgramInstance::loadFrom(const void* image, size_t size,
                                                  const ProgramSpec& spec, Hook hook,
                                                  const std::string& dir, CarryFrom carry,
                                                  std::vector<UncarriedMap>* uncarried) {
  auto fail = [&](Error e) -> Result<ProgramInstance> {
    (void)removePinTree(dir);
    return e;
  };
  if (auto r = makeDir(dir); !r)
    return std::move(r).error();
  if (auto r = makeDir(dir + "/maps"); !r)
    return fail(std::move(r).error());

  LibbpfLogCapture log;
  std::string pinRoot = dir + "/maps";
  // A file's CO-RE relocations go against the kernel types they can see (core_btf.h), not
  // against the whole kernel BTF that libbpf would read and parse for this one load.
  std::string coreBtf = image ? "" : coreBtfPathFor(spec.objectPath);
  LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pinRoot.c_str(),
              .btf_custom_path = coreBtf.empty() ? nullptr : coreBtf.c_str());
  ObjectPtr obj(image ? bpf_object__open_mem(image, size, &opts)
                      : bpf_object__open_file(spec.objectPath.c_str(), &opts),
                bpf_object__close);
  if (!obj) {
    int err = errno;
    return fail(Error(ErrorKind::ProgramInvalid, err,
                      "open " + spec.objectPath + ": not a loadable BPF object (" +
                          std::string(std::strerror(err)) + ")"));
  }
  auto prepared = prepare(obj.get(), spec, hook, carry, uncarried);
  if (!prepared)
    return fail(std::move(prepared).error());
  auto [entry, next] = *prepared;

  if (bpf_object__load(obj.get()) != 0) {
    int err = errno;
    return fail(Error(ErrorKind::VerifierRejected, err,
                      "load " + spec.entry + " from " + spec.objectPath + ": " +
                          std::strerror(err) + "; verifier: " + log.verifierLogTail()));
  }

  bpf_map* map;
  bpf_object__for_each_map (map, obj.get()) {
    if (bpf_map__is_pinned(map))
      continue;
    std::string path = pinRoot + "/" + mapPinName(bpf_map__name(map));
    if (bpf_map__pin(map, path.c_str()) != 0)
      return fail(systemError(errno, "pin map " + path));
  }
  if (bpf_obj_pin(bpf_map__fd(next), (dir + "/next").c_str()) != 0)
    return fail(systemError(errno, "pin " + dir + "/next"));
  if (bpf_program__pin(entry, (dir + "/prog").c_str()) != 0)
    return fail(systemError(errno, "pin " + dir + "/prog"));

  auto progFd = duplicate(bpf_program__fd(entry), "program fd");
  if (!progFd)
    return fail(std::move(progFd).error());
  auto nextFd = duplicate(bpf_map__fd(next), "next map fd");
  if (!nextFd)
    return fail(std::move(nextFd).error());
  auto id = programIdOf(progFd->get());
  if (!id)
    return fail(std::move(id).error());
  return Result<ProgramInstance>(ProgramInstance(dir, std::move(*progFd), std::move(*nextFd), *id));
}

Result<ProgramInstance> ProgramInstance::adopt(const std::string& dir) {
  auto prog = openPin(dir + "/prog");
  if (!prog)
    return std::move(prog).error();
  auto next = openPin(dir + "/next");
  if (!next)
    return std::move(next).error();
  auto id = programIdOf(prog->get());
  if (!id)
    return std::move(id).error();
  return ProgramInstance(dir, std::move(*prog), std::move(*next), *id);
}

Result<void> ProgramInstance::setNext(int programFd) const {
  uint32_t key = 0;
  uint32_t value = static_cast<uint32_t>(programFd);
  if (bpf_map_update_elem(next_.get(), &key, &value, BPF_ANY) != 0)
    return systemError(errno, "link " + dir_ + " to the next program");
  return {};
}

Result<void> ProgramInstance::clearNext() const {
  uint32_t key = 0;
  if (bpf_map_delete_elem(next_.get(), &key) != 0 && errno != ENOENT)
    return systemError(errno, "clear the next program of " + dir_);
  return {};
}

Result<uint32_t> ProgramInstance::nextProgramId() const {
  uint32_t key = 0;
  uint32_t id = 0;
  // A PROG_ARRAY read from user space yields the program's id, not a descriptor.
  if (bpf_map_lookup_elem(next_.get(), &key, &id) != 0) {
    if (errno == ENOENT)
      return 0u;
    return systemError(errno, "read the next program of " + dir_);
  }
  return id;
}

Result<FD> ProgramInstance::openMap(const std::string& name) const {
  return openPin(dir_ + "/maps/" + mapPinName(name));
}

Result<void> ProgramInstance::unpin() {
  return removePinTree(dir_);
}

} // namespace bpfchain::dataplane
