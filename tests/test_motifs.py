"""Motifs: the distances they write are those of the row's cells."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from pyproj import Transformer

import territoires
from territoires import export, french, loaders, motifs, settings
from territoires.rules import VERDICTS, preset

#: « à [plus de ]D m|km du QPV le plus proche » in a motif.
_DISTANCE = re.compile(r": à (plus de )?(\d+(?:,\d)?) (m|km) du QPV le plus proche")


def _motifs(raw: np.ndarray) -> pa.Array:
    """Motifs of places at ``raw`` metres from one QPV (300 m rule): near or far."""
    rules = preset()
    n = len(raw)
    near = raw <= 300
    texts = motifs.Texts(
        qpv_code=pa.array(["QP031010"]),
        qpv_nom=pa.array(["Empalot"]),
        commune_dep=pa.array(["31"]),
        commune_reasons=motifs.commune_reasons(pd.Series(["commune rurale"])),
    )
    nothing = pa.array([None] * n, type=pa.string())
    parts = {
        "distance": raw,
        "gap": np.zeros(n),
        "commune": np.zeros(n, dtype=np.int64),
        "nearest": np.zeros(n, dtype=np.int64),
        "threshold": np.full(n, 300.0),
        "npnru": np.full(n, -1),
        "npnru_rows": np.array([], dtype=np.int64),
        "npnru_distance": np.full(n, np.nan),
        "qpv_code": nothing,
        "qpv_nom": nothing,
        "probleme": np.full(n, None, dtype=object),
        "precision": np.full(n, np.nan),
        "boundary": np.full(n, np.nan),
        "to_check": nothing,
        "listed": np.zeros(n, dtype=bool),
        "edge": nothing,
    }
    verdict = np.where(near, list(VERDICTS).index("proximite_qpv"), 0)
    sentence = np.where(near, motifs.NEAR, motifs.FAR)
    return motifs.compose(verdict, sentence, parts, rules, texts)


def agree(distance_qpv_m: pd.Series, motif: pd.Series, raw: np.ndarray | None = None) -> None:
    """Assert that each motif's distance is its row's ``distance_qpv_m`` CSV cell.

    Below one kilometre the motif's metres are the cell; above, the motif's kilometres
    round the same kept distance to 0.1 km. With ``raw`` (the distances before rounding), a
    distance beyond 300 m reads « à plus de » exactly when its cell says 300 or less.
    """
    text = export.csv_text(pd.DataFrame({"distance_qpv_m": distance_qpv_m, "motif": motif}))
    rows = list(csv.reader(io.StringIO(text.decode("utf-8-sig")), delimiter=";"))[1:]
    assert len(rows) == len(distance_qpv_m)
    for row, (cell, written) in enumerate(rows):
        found = _DISTANCE.search(written)
        assert found, written
        metres = float(cell.replace(",", "."))
        assert metres == round(metres), (cell, written)
        shown = float(found[2].replace(",", "."))
        if found[3] == "m":
            assert shown == metres, (row, cell, written)
        else:  # the kept distance to 0.1 km, within 50 m of the cell
            assert metres >= 1000 and abs(1000 * shown - metres) <= 50, (row, cell, written)
        if raw is not None:
            assert bool(found[1]) == (raw[row] > 300 and metres <= 300), (raw[row], written)


def test_motif_writes_the_distance_of_its_csv_cell() -> None:
    """280.52 m is kept 280.5 m, read 280 m in the CSV cell: the motif says 280 m, not
    281 m; on edge cases and thousands of random distances, motif and cell agree."""
    edges = [280.45, 280.5, 280.52, 280.55, 281.5, 299.96, 300.04, 300.5, 300.52, 999.5]
    edges += [999.46, 1049.99, 1149.6, 1250.0, 12_345.65]
    generator = np.random.default_rng(6)
    raw = np.concatenate(
        [
            edges,
            generator.uniform(0, 2000, 5000),
            np.round(generator.uniform(0, 1500, 3000), 1) + generator.choice([-0.02, 0.02], 3000),
            np.arange(0.5, 1500, 1.0),  # every half metre
        ]
    )
    motif = _motifs(raw).to_pandas()
    assert "à 280 m du QPV le plus proche" in motif[2]
    assert "à plus de 300 m du QPV le plus proche" in motif[8]  # 300.52 kept 300.5: 300 m
    agree(pd.Series(french.tenth_of_metre(raw)), motif, raw)


def test_motif_and_csv_cell_say_the_same_distance_on_real_data(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Toulouse places around Empalot, some kept at 280.5 m (read 280 m): on every row,
    through classify and the CSV writer, the motif's distance is the row's cell."""
    monkeypatch.setattr(settings, "data_dir", data_dir)
    monkeypatch.setattr(settings, "offline", True)
    ref = territoires.reference(preset(), data_dir)
    qpv = loaders.load_qpv(ref.rules.qpv_vintage, data_dir=data_dir).to_crs(2154)
    centre = qpv[qpv["code_qpv"].str.startswith("QP031")].geometry.union_all().centroid
    generator = np.random.default_rng(6)
    x = centre.x + generator.uniform(-4000, 4000, 4000)
    y = centre.y + generator.uniform(-4000, 4000, 4000)
    lon, lat = Transformer.from_crs(2154, 4326, always_xy=True).transform(x, y)
    result = territoires.classify(pd.DataFrame({"lon": lon, "lat": lat}), ref=ref)
    measured = result[result["distance_qpv_m"] > 0]
    assert len(measured) > 2000
    assert (measured["distance_qpv_m"] % 1 == 0.5).any()  # read 280 in the cell, not 281
    agree(measured["distance_qpv_m"], measured["motif"])
