# Every dependency comes from Debian's packages (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.1)
find_package(Threads REQUIRED)

if(BPFCHAIN_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
