#!/usr/bin/env bash
# Install what the tests need, then run the whole suite. This is the README's test command and
# the one CI runs (CI also sets RICHCHAT_REQUIRE_NETNS=1 so namespace tests cannot skip).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
set +e
python3 -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
