#!/usr/bin/env bash
# Install territoires with its web extra and start the service on the reference data
# (TERRITOIRES_DATA_DIR, default ../shared/data): http://127.0.0.1:8000/ ; options of
# « territoires serve » pass through, e.g. bash scripts/serve.sh --port 8080.
set -euo pipefail
TERRITOIRES_EXTRAS=web . "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
exec territoires serve "$@"
