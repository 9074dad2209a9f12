# Debian packages, built with CPack from a configured build directory:
#   cpack -G DEB --config build/<preset>/CPackConfig.cmake -B packages/
# gives three packages (one per install component):
#   libannals-dev  static libraries, headers, CMake package (find_package(annals))
#   annals         the `annals` command-line tool
#   annals-bank    the `bank` example program
# The Depends of the programs come from dpkg-shlibdeps (the shared libraries
# they link); those of libannals-dev name the -dev packages a consumer links.
set(CPACK_PACKAGE_NAME annals)
set(CPACK_PACKAGE_VENDOR "Annals")
set(CPACK_PACKAGE_CONTACT "Annals maintainers <annals@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL dev tools bank)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# gzip: quick to build, which the package test does on every run.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libannals-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What annalsConfig.cmake finds with find_dependency, and simdjson, which the
# static annals::core links.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
    "libsqlite3-dev, libsqlitecpp-dev, nlohmann-json3-dev (>= 3.10), libssl-dev, libsimdjson-dev")
# <annals/testing/store_conformance.hpp>, the conformance kit, needs GoogleTest.
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "libgtest-dev")
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME annals)
set(CPACK_DEBIAN_BANK_PACKAGE_NAME annals-bank)

include(CPack)
cpack_add_component(dev DISPLAY_NAME "Annals development files"
  DESCRIPTION "Static libraries, headers and the CMake package of Annals, event sourcing for C++20 on SQLite.")
cpack_add_component(tools DISPLAY_NAME "annals tool"
  DESCRIPTION "The annals command line: inspect, verify, export, import and serve Annals event stores.")
cpack_add_component(bank DISPLAY_NAME "Annals bank example"
  DESCRIPTION "The bank program: bank accounts kept as events in one SQLite file, an Annals example.")
