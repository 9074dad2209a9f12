#!/usr/bin/env bash
# Builds the Debian packages of a configured and built Annals build directory
# with CPack, unpacks them into a scratch root (dpkg -x: no root rights, the
# machine's packages untouched), builds the find-package consumer against the
# unpacked CMake package and runs the unpacked programs.
#   bash deb_test.sh BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR VERSION [WITH_POSTGRES]
# WITH_POSTGRES ON (the build has annals::postgres): libannals-postgres-dev must
# be made too; the consumer is first built from the other packages alone, as
# if libpq were not installed, then its PostgreSQL program from all of them.
# Environment: CXX, CONSUMER_CXX_FLAGS, CONSUMER_LINKER_FLAGS, BUILD_TYPE
# (the Annals build's compiler and flags, so sanitizer builds link).
set -euo pipefail

build_dir="$1"
consumer_src="$2"
work="$3"
version="$4"
with_postgres="${5:-OFF}"

fail() {
  echo "deb: FAILED: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work/packages" "$work/root"

cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/packages" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }

arch="$(dpkg --print-architecture)"
names=(libannals-dev annals annals-bank)
[ "$with_postgres" = ON ] && names+=(libannals-postgres-dev)
for name in "${names[@]}"; do
  deb="$work/packages/${name}_${version}_${arch}.deb"
  [ -f "$deb" ] || fail "no package $deb (made: $(ls "$work/packages"))"
  [ "$(dpkg-deb -f "$deb" Package)" = "$name" ] || fail "$deb is not named $name"
  [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "$deb does not carry version $version"
  depends="$(dpkg-deb -f "$deb" Depends)"
  echo "deb: $name $version depends on: $depends"
  # The PostgreSQL package is unpacked later, after the consumer was built
  # without it.
  [ "$name" = libannals-postgres-dev ] || dpkg -x "$deb" "$work/root"
done

# The Debian dependencies each package must declare.
dev_depends="$(dpkg-deb -f "$work/packages/libannals-dev_${version}_${arch}.deb" Depends)"
for dep in libsqlite3-dev libsqlitecpp-dev nlohmann-json3-dev libssl-dev libsimdjson-dev; do
  [[ "$dev_depends" == *"$dep"* ]] || fail "libannals-dev does not depend on $dep"
done
# libpq belongs to libannals-postgres-dev alone, and so does everything of the
# PostgreSQL store.
[[ "$dev_depends" != *libpq* ]] || fail "libannals-dev depends on libpq ($dev_depends)"
dev_files="$(dpkg-deb -c "$work/packages/libannals-dev_${version}_${arch}.deb")"
[[ "$dev_files" != *postgres* && "$dev_files" != *Postgres* ]] ||
  fail "libannals-dev carries files of the PostgreSQL store: $(grep -i postgres <<<"$dev_files")"
pg_deb="$work/packages/libannals-postgres-dev_${version}_${arch}.deb"
if [ "$with_postgres" = ON ]; then
  pg_depends="$(dpkg-deb -f "$pg_deb" Depends)"
  for dep in "libannals-dev (= $version)" libpq-dev; do
    [[ "$pg_depends" == *"$dep"* ]] || fail "libannals-postgres-dev does not depend on $dep ($pg_depends)"
  done
else
  [ ! -e "$pg_deb" ] || fail "$pg_deb was made although the build has no annals::postgres"
fi
tool_depends="$(dpkg-deb -f "$work/packages/annals_${version}_${arch}.deb" Depends)"
for dep in libc6 libsqlite3-0 libssl3; do
  [[ "$tool_depends" == *"$dep"* ]] || fail "annals does not depend on $dep ($tool_depends)"
done

prefix="$work/root/usr"
for f in include/annals/version.hpp include/annals/store/event_store.hpp bin/annals bin/bank; do
  [ -e "$prefix/$f" ] || fail "/usr/$f is not in the packages"
done
config="$(find "$prefix" -name annalsConfig.cmake -print -quit)"
[ -n "$config" ] || fail "annalsConfig.cmake is not in the packages"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
# configure_consumer BUILD_DIR LOG [CMAKE_ARGS...]
configure_consumer() {
  local dir="$1" log="$2"
  shift 2
  cmake -S "$consumer_src" -B "$dir" "${generator[@]}" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"} ${BUILD_TYPE:+-DCMAKE_BUILD_TYPE="$BUILD_TYPE"} \
    -DCMAKE_CXX_FLAGS="${CONSUMER_CXX_FLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${CONSUMER_LINKER_FLAGS:-}" \
    "$@" >"$log" 2>&1
}
# Without a component the consumer needs no libpq.
configure_consumer "$work/consumer-build" "$work/configure.log" -DCMAKE_DISABLE_FIND_PACKAGE_PostgreSQL=ON ||
  { cat "$work/configure.log"; fail "the consumer does not configure without libpq"; }
found="$(sed -n 's/^annals_DIR:[A-Z]*=//p' "$work/consumer-build/CMakeCache.txt")"
[[ "$(realpath "$found")" == "$(realpath "$work/root")"/* ]] ||
  fail "find_package(annals) found '$found', not the unpacked package"
cmake --build "$work/consumer-build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "the consumer does not build"; }
"$work/consumer-build/consumer" "$work/consumer.db" || fail "the consumer failed"
"$work/consumer-build/consumer_conformance" --gtest_brief=1 >"$work/conformance.log" 2>&1 ||
  { cat "$work/conformance.log"; fail "the packaged conformance kit did not pass"; }

# Asking for the postgres component before its package is unpacked fails and
# names the package; once it is, consumer_postgres builds and runs.
configure_consumer "$work/consumer-postgres-build" "$work/configure-postgres.log" -DCONSUMER_WITH_POSTGRES=ON &&
  fail "find_package(annals COMPONENTS postgres) succeeded without libannals-postgres-dev"
grep -q "install libannals-postgres-dev" "$work/configure-postgres.log" || {
  cat "$work/configure-postgres.log"
  fail "find_package(annals COMPONENTS postgres) without its package does not say to install it"
}
if [ "$with_postgres" = ON ]; then
  dpkg -x "$pg_deb" "$work/root"
  [ -e "$prefix/include/annals/store/postgres_event_store.hpp" ] ||
    fail "/usr/include/annals/store/postgres_event_store.hpp is not in libannals-postgres-dev"
  rm -rf "$work/consumer-postgres-build"
  configure_consumer "$work/consumer-postgres-build" "$work/configure-postgres.log" -DCONSUMER_WITH_POSTGRES=ON ||
    { cat "$work/configure-postgres.log"; fail "the consumer does not configure with the postgres component"; }
  cmake --build "$work/consumer-postgres-build" --target consumer_postgres >"$work/build-postgres.log" 2>&1 ||
    { cat "$work/build-postgres.log"; fail "consumer_postgres does not build"; }
  mkdir -p "$work/no-server"
  "$work/consumer-postgres-build/consumer_postgres" "$work/no-server" || fail "consumer_postgres failed"
fi

out="$("$prefix/bin/annals" --version)"
[ "$out" = "annals $version" ] || fail "annals --version printed '$out'"
out="$("$prefix/bin/bank" --version)"
[ "$out" = "bank $version" ] || fail "bank --version printed '$out'"
echo "deb: ok ($(cd "$work/packages" && ls *.deb | tr '\n' ' '))"
