#!/usr/bin/env bash
# Create .venv and install territoires with its test tools (idempotent).
# Sourced by demo.sh and test.sh; installs headless Chromium for the map test when absent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[${TERRITOIRES_EXTRAS:-test}]"
export TERRITOIRES_DATA_DIR="${TERRITOIRES_DATA_DIR:-$(cd "$root/.." && pwd)/shared/data}"
