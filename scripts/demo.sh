#!/usr/bin/env bash
# Install territoires and run the main job on the example places:
# out/resultats.csv (every place with verdict and motif) and out/carte.html (offline map).
set -euo pipefail
TERRITOIRES_EXTRAS=dask . "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
mkdir -p out
territoires classify examples/lieux_exemple.csv -o out/resultats.csv
territoires map examples/lieux_exemple.csv -o out/carte.html --offline
territoires coverage examples/lieux_exemple.csv -o out/couverture.xlsx --carte out/couverture.html --offline
echo "Résultats : out/resultats.csv, out/carte.html, out/couverture.xlsx, out/couverture.html"
