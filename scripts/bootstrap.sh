#!/usr/bin/env bash
# Installs the Debian 12 packages Passerelle needs to build, test and run its demo.
# Idempotent and fast when nothing is missing (one dpkg-query). Needs root or password-less sudo
# only when something must be installed. Usage: scripts/bootstrap.sh [bench] [--check]
# `bench` adds the packages load-tests/bench needs (the Python and Java peers, the plot, perf);
# CI never passes it.
set -euo pipefail

bench=0
check=0
for arg in "$@"; do
  case "$arg" in
    bench) bench=1 ;;
    --check) check=1 ;;
    *) echo "usage: scripts/bootstrap.sh [bench] [--check]" >&2; exit 2 ;;
  esac
done

packages=(
  # toolchain
  g++ cmake make pkg-config git python3 curl
  # XML, schemas and signatures: libxml2 (parse, XSD), xmlsec1 (XML-DSig/XAdES), OpenSSL 3 (keys, RSA)
  libxml2-dev libxmlsec1-dev libxmlsec1-openssl libssl-dev openssl zlib1g-dev
  # the durable store (synced write batches, column families, fault-injection file system)
  librocksdb-dev
  # the gateway's allocator (glibc malloc's arenas cost ~15 % of its CPU under load)
  libjemalloc-dev
  # the HTTPS service, its outbound client and the insurer simulator: Boost.Beast/Asio (header-only)
  libboost1.74-dev
  # command line, JSON output and the TOML configuration (toml++, used header-only)
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev
  # tests: GoogleTest, the independent XML-DSig verifier, the format check
  libgtest-dev libgmock-dev libbenchmark-dev xmlsec1 clang-format
  # make fuzz and make sanitize: clang with its sanitizer and libFuzzer runtimes
  clang libclang-rt-14-dev
)
if [ "$bench" -eq 1 ]; then
  packages+=(
    # load-tests/bench only: the Python peer (lxml, xmlsec), the Java peer (JAXP + Apache
    # Santuario), the latency plot and the profile of a missed target
    python3-lxml python3-xmlsec libxml-security-java openjdk-17-jdk-headless gnuplot-nox linux-perf
  )
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$check" -eq 1 ]; then
  echo "bootstrap: missing: ${missing[*]}"
  exit 1
fi

echo "bootstrap: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  sudo_cmd=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  sudo_cmd=(sudo -n)
else
  echo "bootstrap: need root or password-less sudo to install: ${missing[*]}" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "bootstrap: done"
