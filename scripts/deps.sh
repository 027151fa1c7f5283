#!/usr/bin/env bash
# Installs the Debian packages Maillage needs to build, test, run the demo and
# the benchmarks. As root it installs what is missing; otherwise it prints the
# exact apt-get line and fails. Usage: scripts/deps.sh [build|test|bench]
set -euo pipefail

build=(cmake make gcc pkg-config protobuf-c-compiler protobuf-compiler
       libprotobuf-c-dev libzmq3-dev libhiredis-dev libevent-dev libjansson-dev
       libcmocka-dev libcurl4-openssl-dev libsodium-dev redis-server redis-tools wfrench)
test=(python3 tzdata python3-protobuf python3-zmq python3-aiosmtpd clang libclang-rt-14-dev curl openssl
      chromium chromium-driver python3-selenium)
bench=(nats-server libnats-dev wrk)

want=("${build[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test[@]}") ;;
  bench) want+=("${test[@]}" "${bench[@]}") ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "Error: missing Debian packages. Install them with:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
