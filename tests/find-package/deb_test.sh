#!/usr/bin/env bash
# Builds the Debian packages of a configured and built Annals build directory
# with CPack, unpacks them into a scratch root (dpkg -x: no root rights, the
# machine's packages untouched), builds the find-package consumer against the
# unpacked CMake package and runs the unpacked programs.
#   bash deb_test.sh BUILD_DIR CONSUMER_SOURCE_DIR WORK_DIR VERSION
# Environment: CXX, CONSUMER_CXX_FLAGS, CONSUMER_LINKER_FLAGS, BUILD_TYPE
# (the Annals build's compiler and flags, so sanitizer builds link).
set -euo pipefail

build_dir="$1"
consumer_src="$2"
work="$3"
version="$4"

fail() {
  echo "deb: FAILED: $*" >&2
  exit 1
}

rm -rf "$work"
mkdir -p "$work/packages" "$work/root"

cpack -G DEB --config "$build_dir/CPackConfig.cmake" -B "$work/packages" >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack failed"; }

arch="$(dpkg --print-architecture)"
for name in libannals-dev annals annals-bank; do
  deb="$work/packages/${name}_${version}_${arch}.deb"
  [ -f "$deb" ] || fail "no package $deb (made: $(ls "$work/packages"))"
  [ "$(dpkg-deb -f "$deb" Package)" = "$name" ] || fail "$deb is not named $name"
  [ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "$deb does not carry version $version"
  depends="$(dpkg-deb -f "$deb" Depends)"
  echo "deb: $name $version depends on: $depends"
  dpkg -x "$deb" "$work/root"
done

# The Debian dependencies each package must declare.
dev_depends="$(dpkg-deb -f "$work/packages/libannals-dev_${version}_${arch}.deb" Depends)"
for dep in libsqlite3-dev libsqlitecpp-dev nlohmann-json3-dev libssl-dev libsimdjson-dev; do
  [[ "$dev_depends" == *"$dep"* ]] || fail "libannals-dev does not depend on $dep"
done
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
cmake -S "$consumer_src" -B "$work/consumer-build" "${generator[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"} ${BUILD_TYPE:+-DCMAKE_BUILD_TYPE="$BUILD_TYPE"} \
  -DCMAKE_CXX_FLAGS="${CONSUMER_CXX_FLAGS:-}" -DCMAKE_EXE_LINKER_FLAGS="${CONSUMER_LINKER_FLAGS:-}" \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "the consumer does not configure"; }
found="$(sed -n 's/^annals_DIR:[A-Z]*=//p' "$work/consumer-build/CMakeCache.txt")"
[[ "$(realpath "$found")" == "$(realpath "$work/root")"/* ]] ||
  fail "find_package(annals) found '$found', not the unpacked package"
cmake --build "$work/consumer-build" >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; fail "the consumer does not build"; }
"$work/consumer-build/consumer" "$work/consumer.db" || fail "the consumer failed"
"$work/consumer-build/consumer_conformance" --gtest_brief=1 >"$work/conformance.log" 2>&1 ||
  { cat "$work/conformance.log"; fail "the packaged conformance kit did not pass"; }

out="$("$prefix/bin/annals" --version)"
[ "$out" = "annals $version" ] || fail "annals --version printed '$out'"
out="$("$prefix/bin/bank" --version)"
[ "$out" = "bank $version" ] || fail "bank --version printed '$out'"
echo "deb: ok ($(cd "$work/packages" && ls *.deb | tr '\n' ' '))"
