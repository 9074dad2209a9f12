# Debian packages, built with CPack from a configured build directory:
#   cpack -G DEB --config build/<preset>/CPackConfig.cmake -B packages/
# gives one package per install component:
#   libannals-dev           static libraries, headers, CMake package (find_package(annals))
#   libannals-postgres-dev  the PostgreSQL store (annals::postgres), when libpq was found
#   annals                  the `annals` command-line tool
#   annals-bank             the `bank` example program
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
if(TARGET annals_postgres)
  list(APPEND CPACK_COMPONENTS_ALL postgres_dev)
endif()
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
# The PostgreSQL store in a package of its own rather than in libannals-dev:
# libannals-dev would otherwise have to depend on libpq-dev, pulling it in for
# every user of the SQLite store. Installed, it adds annalsPostgresTargets.cmake
# next to the package config, which find_package(annals COMPONENTS postgres)
# loads; it depends on the libannals-dev of the same version (CPack adds that
# from the component's DEPENDS) and on libpq-dev, whose libpq a consumer links.
set(CPACK_DEBIAN_POSTGRES_DEV_PACKAGE_NAME libannals-postgres-dev)
set(CPACK_DEBIAN_POSTGRES_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_POSTGRES_DEV_PACKAGE_DEPENDS "libpq-dev")
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME annals)
set(CPACK_DEBIAN_BANK_PACKAGE_NAME annals-bank)

include(CPack)
cpack_add_component(dev DISPLAY_NAME "Annals development files"
  DESCRIPTION "Static libraries, headers and the CMake package of Annals, event sourcing for C++20 on SQLite.")
if(TARGET annals_postgres)
  cpack_add_component(postgres_dev DISPLAY_NAME "Annals PostgreSQL store, development files"
    DEPENDS dev
    DESCRIPTION "The static library, header and CMake component (find_package(annals COMPONENTS postgres)) of the Annals event store on PostgreSQL.")
endif()
cpack_add_component(tools DISPLAY_NAME "annals tool"
  DESCRIPTION "The annals command line: inspect, verify, export, import and serve Annals event stores.")
cpack_add_component(bank DISPLAY_NAME "Annals bank example"
  DESCRIPTION "The bank program: bank accounts kept as events in one SQLite file, an Annals example.")
