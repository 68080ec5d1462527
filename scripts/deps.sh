#!/usr/bin/env bash
# Installs every Debian package the build, the tests, the demo and the
# benchmarks need. Idempotent and non-interactive: packages already present are
# not touched, so a second run costs a few dpkg queries.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang llvm
  # libraries
  libnl-3-dev libnl-route-3-dev libmnl-dev libnftables-dev libbpf-dev libelf-dev
  libsqlite3-dev libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev
  libcli11-dev libspdlog-dev libfmt-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev libclang-rt-14-dev
  # run time: the datapath and the emulated cloud
  iproute2 nftables bpftool sqlite3 procps psmisc
  # traffic tests and clients
  iperf3 iputils-ping netcat-openbsd socat conntrack curl jq
  podman runc containernetworking-plugins busybox-static
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# kubectl: Debian's kubernetes-client unless some kubectl is already present
# (its package would conflict with another package owning /usr/bin/kubectl).
if ! command -v kubectl >/dev/null 2>&1; then
  missing+=(kubernetes-client)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
