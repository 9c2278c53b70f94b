#!/usr/bin/env bash
# Install what the tests need, then run the whole suite. This is the README's test command,
# `bash scripts/test.sh`, and the one CI runs (CI sets RICHCHAT_CI=1 and RICHCHAT_REQUIRE_NETNS=1:
# namespace tests cannot skip, and no other test may skip unless tests/allowed_skips.py lists it
# with its reason). The summary at the end lists every failure, error and skip with its reason.
#
# As root (CI, containers, a fresh machine without sudo) it does everything itself. As a normal
# user, scripts/install-test-deps.sh runs only the step that needs root, installing Debian
# packages, through sudo (and says so); the tests then run as you, and those that build network
# namespaces skip (`sudo bash scripts/test.sh` runs them too).
#
# The tests run in parallel (pytest-xdist): two worker processes per core, since most tests wait
# on sockets and child processes rather than compute. RICHCHAT_TEST_WORKERS=N sets the number
# (0: no workers, every test in this one process, in order; so does `-p no:xdist`). Every test
# builds its own servers, ports, namespaces and files, so any two can run side by side. With
# workers, `-x` stops every worker at the first failure and pytest exits with 2 (interrupted)
# rather than 1.
#
# RICHCHAT_TEST_INSTALL=0 skips the install step (when it was done already). Extra arguments go
# to pytest: `bash scripts/test.sh tests/server -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${RICHCHAT_TEST_WORKERS:-$((2 * $(nproc)))}"
if ! [[ "$workers" =~ ^[0-9]+$ ]]; then
  echo "test.sh: RICHCHAT_TEST_WORKERS must be a whole number of workers (0: none, every test" \
       "in one process), not '$workers'" >&2
  exit 2
fi
# `-p no:xdist` among the arguments (or in PYTEST_ADDOPTS): no workers either (their options
# would be refused). A test path that does not exist is said here: with workers, pytest would
# only report that no test ran.
prev=""
for arg in ${PYTEST_ADDOPTS:-} "$@"; do
  if [ "$arg" = "-pno:xdist" ] || { [ "$prev" = "-p" ] && [ "$arg" = "no:xdist" ]; }; then
    workers=0
  fi
  prev="$arg"
done
# (only what looks like a test path: has a '/' or ends in .py, is not an option's value that
# names a file, and has no '='; anything else is pytest's to judge)
prev=""
for arg in "$@"; do
  case "$prev" in
    -c|-k|-m|--rootdir|--basetemp|--deselect|--ignore|--ignore-glob|--junitxml|--confcutdir|\
    --junit-xml|--result-log|--log-file|--cov|--cov-report) prev=""; continue ;;
  esac
  prev="$arg"
  case "$arg" in -*|*=*) continue ;; esac
  path="${arg%%::*}"
  case "$path" in */*|*.py) ;; *) continue ;; esac
  if [ ! -e "$path" ]; then
    echo "test.sh: no such test file or directory: $path" >&2
    exit 4
  fi
done
if [ "${RICHCHAT_TEST_INSTALL:-1}" != "0" ]; then
  bash scripts/install-test-deps.sh
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: running the tests as $(id -un): tests that need root (network namespaces) skip;" \
       "sudo bash scripts/test.sh runs them too" >&2
fi
parallel=()
if [ "$workers" != "0" ]; then
  # (pytest-benchmark, where installed, would warn once per worker that it is off under
  # xdist: no test here uses it)
  parallel=(-n "$workers" -p no:benchmark)
fi
set +e
python3 -m pytest -rfEs "${parallel[@]}" "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
