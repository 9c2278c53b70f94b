#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine (run as root):
# the system tools the tests really start, then richchat itself with its test extra.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  nmap            # OS detection (richchat discover --os) and the scan benchmark's reference
  ncat            # netcat tests and the fan-out benchmark's reference
  netcat-openbsd  # plain `nc`
  tmux            # end-to-end test of `richchat join` in a real terminal
  iproute2        # `ip netns` labs for LAN tests
  nftables        # filtered ports inside lab namespaces
  iptables
  arp-scan        # discovery benchmark reference
  ngircd          # fan-out benchmark reference; an IRC server the scanner must not call joinable
  socat           # an echo service the scanner must not call joinable
  libcap2-bin     # capsh/setcap for the unprivileged-path tests
  util-linux      # setpriv
  procps
)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if ((${#missing[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "warning: no apt-get; install these yourself: ${APT_PACKAGES[*]}" >&2
fi

python3 -m pip install --quiet --disable-pip-version-check '.[test]'
