# Every dependency comes from Debian's packages (scripts/deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBBPF REQUIRED IMPORTED_TARGET libbpf>=1.1)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(CLI11 2.1 REQUIRED CONFIG) # libcli11-dev, header-only: every command line

if(BPFCHAIN_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
