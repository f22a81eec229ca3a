#!/usr/bin/env bash
# Install territoires with its test tools and run lint + the whole test suite
# (real data read from TERRITOIRES_DATA_DIR, default ../shared/data).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
if [ "$(id -u)" = 0 ] && { ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; }; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
ruff check src tests benchmarks notebooks docs
ruff format --check src tests benchmarks docs
python -m pytest "$@"
