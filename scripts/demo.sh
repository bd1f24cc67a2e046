#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole protokit path offline (the README's main command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/protokit demo "$@"
