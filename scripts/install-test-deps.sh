#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian/Ubuntu machine: the system tools
# the tests really start, then richchat itself with its test extra. Only the Debian packages
# need root: as root they are installed directly (CI, containers: no sudo needed), otherwise
# through sudo, and the script says so. The Python packages are installed as whoever runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Run a command as root: directly when we are root, else through sudo (saying so).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    echo "install-test-deps: not root: running '$*' through sudo" >&2
    sudo "$@"
  else
    echo "install-test-deps: not root and no sudo: cannot run '$*';" \
         "install these packages as root: ${missing[*]}" >&2
    return 1
  fi
}

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
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  echo "warning: no apt-get; install these yourself: ${APT_PACKAGES[*]}" >&2
fi

if ! python3 -m pip install --quiet --disable-pip-version-check '.[test]'; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: pip could not install '.[test]' as $(id -un); a virtual" \
         "environment works without root: python3 -m venv .venv && . .venv/bin/activate" >&2
  fi
  exit 1
fi
