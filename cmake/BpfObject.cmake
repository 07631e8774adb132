# bpfchain_bpf_object(<name> <source.bpf.c>)
#
# Compiles one BPF program (clang -target bpf, CO-RE against vmlinux.h) into
# ${BPFCHAIN_BPF_OUTPUT_DIR}/<name>.bpf.o and generates its libbpf skeleton <name>.skel.h.
# Creates the INTERFACE target bpfchain::bpf_<name>: link it to include "<name>.skel.h".
# Headers under bpf/include and the source's own directory are dependencies of the object.

find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(BPF_LLVM_STRIP NAMES llvm-strip llvm-strip-14)

set(BPFCHAIN_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH
    "Kernel BTF that vmlinux.h is generated from")
set(BPFCHAIN_VMLINUX_H "" CACHE FILEPATH
    "Use this vmlinux.h instead of generating one from BPFCHAIN_VMLINUX_BTF")

set(BPFCHAIN_BPF_OUTPUT_DIR ${CMAKE_BINARY_DIR}/bpf)
set(_bpf_vmlinux_dir ${CMAKE_BINARY_DIR}/bpf/vmlinux)
if(BPFCHAIN_VMLINUX_H)
  set(_bpf_vmlinux_h ${BPFCHAIN_VMLINUX_H})
  get_filename_component(_bpf_vmlinux_dir ${BPFCHAIN_VMLINUX_H} DIRECTORY)
else()
  # Generated at configure time: the running kernel's BTF does not change during a build.
  set(_bpf_vmlinux_h ${_bpf_vmlinux_dir}/vmlinux.h)
  if(NOT EXISTS ${_bpf_vmlinux_h} OR ${BPFCHAIN_VMLINUX_BTF} IS_NEWER_THAN ${_bpf_vmlinux_h})
    file(MAKE_DIRECTORY ${_bpf_vmlinux_dir})
    execute_process(
      COMMAND ${BPFTOOL} btf dump file ${BPFCHAIN_VMLINUX_BTF} format c
      OUTPUT_FILE ${_bpf_vmlinux_h}.tmp
      RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR "bpftool could not dump ${BPFCHAIN_VMLINUX_BTF}; "
                          "set BPFCHAIN_VMLINUX_H to a vmlinux.h")
    endif()
    file(RENAME ${_bpf_vmlinux_h}.tmp ${_bpf_vmlinux_h})
  endif()
endif()

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|amd64")
  set(_bpf_arch x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(_bpf_arch arm64)
else()
  set(_bpf_arch ${CMAKE_SYSTEM_PROCESSOR})
endif()

function(bpfchain_bpf_object name source)
  get_filename_component(_src ${source} ABSOLUTE)
  get_filename_component(_src_dir ${_src} DIRECTORY)
  set(_obj ${BPFCHAIN_BPF_OUTPUT_DIR}/${name}.bpf.o)
  set(_skel_dir ${BPFCHAIN_BPF_OUTPUT_DIR}/skel)
  set(_skel ${_skel_dir}/${name}.skel.h)
  file(GLOB_RECURSE _headers CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/bpf/include/*.h ${_src_dir}/*.h)

  set(_strip_cmd)
  if(BPF_LLVM_STRIP)
    # DWARF is only for humans; BTF, which libbpf needs, survives -g stripping.
    set(_strip_cmd COMMAND ${BPF_LLVM_STRIP} -g ${_obj})
  endif()
  add_custom_command(
    OUTPUT ${_obj}
    # No checkout path in the object's BTF line info (it says ./bpf/counter.bpf.c): the object,
    # and every source that embeds its skeleton, is then the same in every clone, for ccache and
    # check-tidy's cache.
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${_bpf_arch}
            -fdebug-prefix-map=${CMAKE_SOURCE_DIR}/= -fdebug-compilation-dir=.
            -Wall -Werror -I${_bpf_vmlinux_dir} -I${CMAKE_SOURCE_DIR}/bpf/include -I${_src_dir}
            -c ${_src} -o ${_obj}
    ${_strip_cmd}
    DEPENDS ${_src} ${_headers} ${_bpf_vmlinux_h}
    COMMENT "BPF ${name}: ${source}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${_skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${_skel_dir}
    COMMAND ${BPFTOOL} gen skeleton ${_obj} name ${name} > ${_skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${_skel}.tmp ${_skel}
    DEPENDS ${_obj}
    COMMENT "BPF ${name}: skeleton"
    VERBATIM)
  add_custom_target(bpf_${name}_gen DEPENDS ${_obj} ${_skel})

  add_library(bpf_${name} INTERFACE)
  add_library(bpfchain::bpf_${name} ALIAS bpf_${name})
  add_dependencies(bpf_${name} bpf_${name}_gen)
  target_include_directories(bpf_${name} INTERFACE ${_skel_dir} ${CMAKE_SOURCE_DIR}/bpf/include)
  target_link_libraries(bpf_${name} INTERFACE PkgConfig::LIBBPF)
  set_target_properties(bpf_${name} PROPERTIES BPF_OBJECT ${_obj})
endfunction()
