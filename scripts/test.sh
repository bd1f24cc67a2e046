#!/usr/bin/env bash
# Sets up a fresh machine and runs the test suite (the README's test command; CI runs this).
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests drive Debian's Chromium; never `playwright install` (it downloads a browser).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    echo "note: /usr/bin/chromium is missing; browser tests will be skipped (sudo apt-get install chromium)"
  fi
fi
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
# pytest exits 5 when it collected no tests: that is a broken suite, not a pass.
if [ "$code" = 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$code"
