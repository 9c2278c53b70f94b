#!/usr/bin/env bash
# Install what the tests need, then run the whole suite. This is the README's test command and
# the one CI runs (CI sets RICHCHAT_CI=1 and RICHCHAT_REQUIRE_NETNS=1: namespace tests cannot
# skip, and no other test may skip unless tests/allowed_skips.py lists it with its reason).
# The summary at the end lists every failure, error and skip with its reason (-rfEs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
set +e
python3 -m pytest -rfEs "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
