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
  socat           # an echo service the scanner must not call joinable; a TLS impostor
  openssl         # TLS tests: s_client/s_server as outside clients and impostors, keys
  redis-server    # cluster tests (server --redis): a real Redis the tests start and stop
  libcap2-bin     # capsh/setcap for the unprivileged-path tests
  util-linux      # setpriv
  procps
  strace          # the history-sync test: which thread syncs the disk
)

# CI (RICHCHAT_CI=1, set by .ci/run; or RICHCHAT_REQUIRE_NETNS=1): whatever the tests need must
# be there, so that no test can skip for a missing tool.
ci=0
if [ "${RICHCHAT_CI:-}" = 1 ] || [ "${RICHCHAT_REQUIRE_NETNS:-}" = 1 ]; then
  ci=1
fi

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
elif [ "$ci" = 1 ]; then
  echo "error: no apt-get, and CI needs these Debian packages: ${APT_PACKAGES[*]}" >&2
  exit 1
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
if [ "$ci" = 1 ]; then
  # What the tests start or rely on; a test that finds one missing would skip, which CI
  # does not allow (tests/allowed_skips.py).
  missing=()
  for tool in nmap ncat nc socat openssl tmux ip nft setpriv prlimit ss capsh ngircd redis-server \
              strace; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    echo "error: CI needs these programs on PATH: ${missing[*]}" >&2
    exit 1
  fi
  if ! python3 - <<'PY'
import ctypes.util
import socket
import sys

problems = []
try:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
        sock.bind(("::1", 0))
except OSError as exc:
    problems.append(f"IPv6 on loopback (::1): {exc}")
libc = ctypes.util.find_library("c")
if not libc or not hasattr(ctypes.CDLL(libc), "malloc_trim"):
    problems.append("glibc (malloc_trim)")
if problems:
    sys.stderr.write("error: CI needs " + "; ".join(problems) + "\n")
    sys.exit(1)
PY
  then
    exit 1
  fi
fi
