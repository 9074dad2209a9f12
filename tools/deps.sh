#!/usr/bin/env bash
# Installs the Debian packages Annals needs to build, test and run its demo.
# Idempotent: does nothing (not even apt-get update) when all are installed.
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git dpkg-dev
  libsqlite3-dev sqlite3 libsqlitecpp-dev nlohmann-json3-dev libssl-dev libsimdjson-dev
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
  clang libclang-rt-14-dev
  libcpp-httplib-dev
  postgresql libpq-dev
  chromium chromium-driver fonts-dejavu-core
)
# The browser tests install playwright-core with npm; a Node.js from elsewhere
# (NodeSource's nodejs ships its own npm) is kept.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
    exit 1
  fi
  sudo_cmd=(sudo)
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
