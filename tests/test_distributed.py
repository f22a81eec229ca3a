"""The dask backend gives, row for row, what the in-memory classification gives.

100,000 places (random over the communes of France, QPV surroundings in Occitanie so
that every verdict occurs, and invalid rows including duplicates spread over several
partitions) are classified in memory and with dask, on a two-worker ``LocalCluster``
(loopback only) and on the local scheduler; a CSV file is classified partition by
partition into Parquet and CSV.
"""

from __future__ import annotations

import csv
import json
import re
import warnings

import dask
import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, Future, LocalCluster

import territoires.distributed as territoires_distributed
from territoires import (
    InputError,
    OutputError,
    classify,
    eligibility,
    export,
    load_communes,
    load_qpv,
)
from territoires.distributed import classify_dask, classify_file_in_partitions
from territoires.rules import VERDICTS

N_PLACES = 100_000
N_PARTITIONS = 7


def _inside(polygons: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points (x, y), each uniform inside a polygon drawn among ``polygons``."""
    found = np.empty((0, 2))
    while len(found) < n:
        picked = polygons[rng.integers(len(polygons), size=2 * n)]
        bounds = shapely.bounds(picked)
        x = rng.uniform(bounds[:, 0], bounds[:, 2])
        y = rng.uniform(bounds[:, 1], bounds[:, 3])
        keep = shapely.contains_xy(picked, x, y)
        found = np.vstack([found, np.column_stack([x[keep], y[keep]])])
    return found[:n]


def _places(communes: gpd.GeoDataFrame, qpv: gpd.GeoDataFrame, n: int) -> pd.DataFrame:
    """Places as typed by people: text coordinates, decimal commas, errors, duplicates."""
    rng = np.random.default_rng(2024)
    occitanie = communes["reg"] == "76"
    urban = communes[occitanie & (communes["densite7"] == 1)].geometry.to_numpy()
    around = qpv.to_crs(2154).buffer(700).to_crs(qpv.crs).to_numpy()
    n_urban, n_qpv, n_bad = n // 20, n // 10, n // 50
    xy = np.vstack(
        [
            _inside(communes.geometry.to_numpy(), n - n_urban - n_qpv - n_bad, rng),
            _inside(urban, n_urban, rng),
            _inside(around, n_qpv, rng),
            np.full((n_bad, 2), np.nan),
        ]
    )
    xy = xy[rng.permutation(n)]
    lon = pd.Series(np.round(xy[:, 0], 6).astype(str), dtype="str")
    lat = pd.Series(np.round(xy[:, 1], 6).astype(str), dtype="str")
    bad = np.flatnonzero(np.isnan(xy[:, 0]))
    kinds = np.arange(len(bad)) % 6
    lon[bad[kinds == 0]] = "abc"
    lat[bad[kinds == 0]] = "43.6"
    lat[bad[kinds == 1]] = None
    lon[bad[kinds == 1]] = "1.4"
    lon[bad[kinds == 2]], lat[bad[kinds == 2]] = "43.6", "1.44"  # swapped
    lon[bad[kinds == 3]], lat[bad[kinds == 3]] = "-74.006", "40.7128"  # New York
    lon[bad[kinds == 4]], lat[bad[kinds == 4]] = "652000", "6862000"  # Lambert-93
    lon[bad[kinds == 5]], lat[bad[kinds == 5]] = "-3.0", "47.0"  # at sea
    commas = rng.random(n) < 0.1
    lon[commas] = lon[commas].str.replace(".", ",")
    table = pd.DataFrame({"nom": [f"lieu {i % 50_000}" for i in range(n)], "lon": lon, "lat": lat})
    # a tenth of the places are geocoded to within 150 m: some are « incertain »
    table["precision_m"] = np.where(np.arange(n) % 10 == 0, "150", "")
    # duplicates, within and across partitions, some written with a decimal comma
    sources = rng.integers(0, n // 2, size=300)
    targets = rng.integers(n // 2, n, size=300)
    table.iloc[targets] = table.iloc[sources].to_numpy()
    table.loc[targets[::3], "lon"] = table.loc[targets[::3], "lon"].str.replace(".", ",")
    table.iloc[sources[:50] + 1] = table.iloc[sources[:50]].to_numpy()
    return table


@pytest.fixture(scope="module")
def reference_layers(data_dir):
    """The QPV and communes of the mirror, as loaded for the default rules."""
    return load_communes(data_dir=data_dir), load_qpv(2015, data_dir=data_dir)


@pytest.fixture(scope="module")
def places(reference_layers) -> pd.DataFrame:
    return _places(*reference_layers, N_PLACES)


@pytest.fixture(scope="module")
def expected(places, data_dir) -> gpd.GeoDataFrame:
    """The in-memory classification, the reference result."""
    out = classify(places, data_dir=data_dir)
    assert set(out["verdict"]) == set(VERDICTS), out.attrs["verdicts"]
    assert out["motif"].str.contains("doublon de la ligne").sum() >= 300
    return out


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes on the loopback interface, one thread each."""
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            processes=True,
        ) as local,
        Client(local) as client,
    ):
        yield client


def _dask_frame(table: pd.DataFrame) -> dd.DataFrame:
    """The table in partitions, its text columns kept as pandas reads them."""
    with dask.config.set({"dataframe.convert-string": False}):
        return dd.from_pandas(table, npartitions=N_PARTITIONS)


def _same(result: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    """Row-for-row identity, geometry included (attrs aside: verdict counts are global)."""
    pd.testing.assert_frame_equal(
        pd.DataFrame(result.drop(columns="geometry")),
        pd.DataFrame(expected.drop(columns="geometry")),
    )
    assert (
        result.geometry.geom_equals_exact(expected.geometry, 0).sum()
        == expected["geometry"].notna().sum()
    )
    assert (result.geometry.isna() == expected.geometry.isna()).all()
    assert result.crs == expected.crs


def test_cluster_matches_in_memory(cluster, places, expected, data_dir):
    result = classify_dask(_dask_frame(places), data_dir=data_dir)
    assert isinstance(result, dask_geopandas.GeoDataFrame)
    assert result.npartitions == N_PARTITIONS
    computed = result.compute()
    _same(computed, expected)
    assert computed.attrs["regles"]["nom"] == "fabriques-2019"
    counts = result["verdict"].value_counts().compute()
    assert counts.to_dict() == expected.attrs["verdicts"]


def test_local_scheduler_matches_in_memory(places, expected, data_dir):
    with dask.config.set(scheduler="threads"):  # even while the cluster's client exists
        result = classify_dask(_dask_frame(places), "fabriques-2019", data_dir=data_dir)
        assert list(result._meta.dtypes) == list(expected.dtypes)
        _same(result.compute(), expected)


def test_input_attrs_are_carried_by_every_partition(places, data_dir):
    """As with classify: the user's attrs come out, the output's own keys win."""
    table = places.iloc[:200].copy()
    table.attrs = {"projet": "réseau", "regles": "les miennes"}
    with dask.config.set(scheduler="sync"):
        result = classify_dask(_dask_frame(table), data_dir=data_dir)
        parts = [part.compute() for part in result.partitions]
    expected = classify(table, data_dir=data_dir).attrs
    for part in parts:
        assert part.attrs["projet"] == expected["projet"] == "réseau"
        assert part.attrs["regles"] == expected["regles"]


def test_point_layer_in_partitions(places, data_dir):
    sample = places.iloc[:5000]
    numbers = sample.assign(
        lon=pd.to_numeric(sample["lon"].str.replace(",", "."), errors="coerce"),
        lat=pd.to_numeric(sample["lat"].str.replace(",", "."), errors="coerce"),
    ).dropna()
    layer = gpd.GeoDataFrame(
        numbers[["nom"]],
        geometry=gpd.points_from_xy(numbers["lon"], numbers["lat"]),
        crs="EPSG:4326",
    ).to_crs(2154)
    with dask.config.set({"dataframe.convert-string": False}):
        ddf = dask_geopandas.from_geopandas(layer, npartitions=3)
    with dask.config.set(scheduler="sync"):
        result = classify_dask(ddf, data_dir=data_dir).compute()
    pd.testing.assert_frame_equal(
        pd.DataFrame(result.drop(columns="geometry")),
        pd.DataFrame(classify(layer, data_dir=data_dir).drop(columns="geometry")),
    )


def test_file_in_partitions(cluster, places, tmp_path, data_dir, capsys):
    source = tmp_path / "lieux.csv"
    places.iloc[:20_000].to_csv(source, sep=";", index=False, encoding="utf-8-sig")
    expected = classify(source, data_dir=data_dir)

    summary = classify_file_in_partitions(source, tmp_path / "sortie.parquet", blocksize=100_000)
    assert summary["partitions"] > 3
    assert summary["lignes"] == 20_000
    assert summary["verdicts"] == expected.attrs["verdicts"]
    written = gpd.read_parquet(tmp_path / "sortie.parquet")
    pd.testing.assert_index_equal(written.index, expected.index, exact=False)
    for column in ("verdict", "motif", "code_insee", "qpv_code"):
        assert written[column].astype(object).equals(expected[column].astype(object)), column
    assert (
        written.geometry.geom_equals_exact(expected.geometry, 0).sum()
        == expected["geometry"].notna().sum()
    )

    with dask.config.set(scheduler="threads"):
        classify_file_in_partitions(source, tmp_path / "sortie.csv", blocksize=100_000)
    assert "100% Completed" in capsys.readouterr().err  # dask.diagnostics.ProgressBar
    written = (tmp_path / "sortie.csv").read_bytes().decode("utf-8")
    assert written == _csv_text(expected)  # the file of `territoires classify -o x.csv`
    provenance = json.loads(export.provenance_path(tmp_path / "sortie.csv").read_text("utf-8"))
    assert provenance["verdicts"] == expected.attrs["verdicts"]
    assert provenance["regles"] == expected.attrs["regles"]


def test_parquet_file_in_partitions(places, tmp_path, data_dir):
    table = places.iloc[:20_000].reset_index(drop=True)
    table.to_parquet(tmp_path / "lieux.parquet")
    with dask.config.set(scheduler="threads"):
        summary = classify_file_in_partitions(
            tmp_path / "lieux.parquet", tmp_path / "sortie.csv", progress=False
        )
    expected = classify(table, data_dir=data_dir)
    assert summary["verdicts"] == expected.attrs["verdicts"]
    written = pd.read_csv(
        tmp_path / "sortie.csv", sep=";", encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    assert written["motif"].tolist() == expected["motif"].tolist()


def test_interrupted_partitions_leave_the_previous_output(places, tmp_path, data_dir, monkeypatch):
    source = tmp_path / "lieux.csv"
    places.iloc[:5_000].to_csv(source, sep=";", index=False, encoding="utf-8-sig")
    previous = tmp_path / "sortie.csv"
    previous.write_text("ancien résultat\n", encoding="utf-8")
    (tmp_path / "vide.parquet").mkdir()
    written = []
    real_write = territoires_distributed._write_csv

    def failing_write(frame, path, before):
        if before is not None:  # the second partition fails, after the first is written
            raise OSError("disque plein")
        written.append(path)
        return real_write(frame, path, before)

    monkeypatch.setattr(territoires_distributed, "_write_csv", failing_write)
    with dask.config.set(scheduler="threads"), pytest.raises(OSError, match="disque plein"):
        classify_file_in_partitions(source, previous, blocksize=50_000, progress=False)
    assert written and written[0] != previous  # partitions went to a temporary file
    assert previous.read_text(encoding="utf-8") == "ancien résultat\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lieux.csv", "sortie.csv", "vide.parquet"]

    with dask.config.set(scheduler="threads"):  # an empty folder is replaced, complete
        classify_file_in_partitions(
            source, tmp_path / "vide.parquet", blocksize=50_000, progress=False
        )
    assert len(gpd.read_parquet(tmp_path / "vide.parquet")) == 5_000


def test_errors_in_french(tmp_path, data_dir):
    with pytest.raises(InputError, match="aucune paire de colonnes"):
        classify_dask(dd.from_pandas(pd.DataFrame({"a": [1.0]}), npartitions=1))
    (tmp_path / "lieux.xlsx").write_bytes(b"")
    with pytest.raises(InputError, match="format non reconnu"):
        classify_file_in_partitions(tmp_path / "lieux.xlsx", tmp_path / "o.parquet")
    with pytest.raises(InputError, match="fichier introuvable"):
        classify_file_in_partitions(tmp_path / "absent.csv", tmp_path / "o.parquet")
    (tmp_path / "entete.csv").write_text("nom;lon;lat\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="fichier vide"):
        classify_file_in_partitions(tmp_path / "entete.csv", tmp_path / "o.parquet")
    (tmp_path / "o.parquet").mkdir()
    (tmp_path / "o.parquet" / "part.00000.parquet").write_bytes(b"")
    with pytest.raises(OutputError, match="n'est pas vide"):
        classify_file_in_partitions(tmp_path / "absent.csv", tmp_path / "o.parquet")
    with pytest.raises(OutputError, match="format de sortie"):
        classify_file_in_partitions(tmp_path / "absent.csv", tmp_path / "o.xlsx")


def _graph_values(result: dask_geopandas.GeoDataFrame) -> list:
    return [getattr(task, "value", task) for task in result.__dask_graph__().values()]


def test_reference_shared_once(cluster, places, data_dir):
    """One graph key gives the reference to every partition, locally or on the cluster.

    Locally the key holds a small handle, never the Reference (a ``processes``
    scheduler would pickle it with every task): it gives back the process's own
    prepared Reference, the very object ``classify`` uses.
    """
    with dask.config.set(scheduler="threads"):
        local = classify_dask(_dask_frame(places.iloc[:1000]), data_dir=data_dir)
    handles = [value for value in _graph_values(local) if hasattr(value, "reference")]
    assert len(handles) == 1
    assert handles[0].reference() is eligibility.reference(data_dir=data_dir)
    assert not any(isinstance(value, eligibility.Reference) for value in _graph_values(local))
    remote = classify_dask(_dask_frame(places.iloc[:1000]), data_dir=data_dir)
    assert sum(isinstance(value, Future) for value in _graph_values(remote)) == 1


def _csv_text(frame: pd.DataFrame) -> str:
    """A classified frame as ``territoires classify -o x.csv`` writes it (BOM included)."""
    return export.csv_text(frame).decode("utf-8")


def _written_like_people(places: pd.DataFrame) -> pd.DataFrame:
    """400 places, accented names, duplicates far from their first occurrence, « nan »."""
    table = places.iloc[:400].reset_index(drop=True).copy()
    table["nom"] = table["nom"].str.replace("lieu", "Hôtel de ville n°", regex=False)
    table.iloc[[350, 351, 390]] = table.iloc[[3, 40, 351]].to_numpy()
    table.loc[390, "lon"] = table.loc[390, "lon"].replace(".", ",")
    # the text « nan » and an empty cell are different places at the same point
    table.iloc[[200, 380]] = table.iloc[[5, 5]].to_numpy()
    table.loc[200, "nom"], table.loc[380, "nom"] = "nan", np.nan
    return table


@pytest.mark.parametrize(
    "variant",
    [
        "bom_crlf",
        "excel_sep_line_cp1252",
        "quoted_commas",
        "blank_lines",
        "no_last_eol",
        "trailing_separators",
    ],
)
def test_csv_blocks_read_like_the_whole_file(variant, places, tmp_path, data_dir):
    """Byte blocks give the rows, cells, lines and doublons of the whole file, whatever its form."""
    table = _written_like_people(places)
    source = tmp_path / "lieux.csv"
    if variant == "bom_crlf":
        table.to_csv(source, sep=";", index=False, encoding="utf-8-sig", lineterminator="\r\n")
    elif variant == "excel_sep_line_cp1252":
        text = "sep=;\n" + table.to_csv(sep=";", index=False)
        source.write_bytes(text.encode("cp1252"))
    elif variant == "quoted_commas":
        table.to_csv(source, sep=",", index=False, quoting=csv.QUOTE_ALL)
    elif variant == "trailing_separators":  # every line, header included, ends with « ; »
        lines = table.to_csv(sep=";", index=False).splitlines()
        source.write_text("".join(f"{line};\n" for line in lines), encoding="utf-8")
    else:
        lines = table.to_csv(sep=";", index=False).splitlines()
        lines[120:120] = [""]
        lines[260:260] = ["", ""]
        ending = "\n\n\n" if variant == "blank_lines" else ""
        source.write_text("\n".join(lines) + ending, encoding="utf-8")
    expected = classify(source, data_dir=data_dir)
    assert expected["motif"].str.contains("doublon de la ligne").sum() >= 3

    summary = classify_file_in_partitions(
        source, tmp_path / "sortie.csv", blocksize=2_000, progress=False, scheduler="threads"
    )
    assert summary["partitions"] > 8
    assert summary["verdicts"] == expected.attrs["verdicts"]
    assert (tmp_path / "sortie.csv").read_bytes().decode("utf-8") == _csv_text(expected)


@pytest.mark.parametrize("excel_line", ["", "sep=;\n"], ids=["title", "excel_line_and_title"])
def test_title_above_the_header_read_as_the_whole_file(excel_line, places, tmp_path, data_dir):
    """Lines of title above the header are skipped by blocks exactly as ``classify``
    skips them (the same header, warning, line numbers and provenance): the header is the
    first of the first lines naming a coordinate column (``places.csv_header``)."""
    table = _written_like_people(places)
    title = "Lieux à classer, export du 3 mars;;\n\n"
    source = tmp_path / "lieux.csv"
    source.write_text(excel_line + title + table.to_csv(sep=";", index=False), encoding="utf-8")
    header = 3 + bool(excel_line)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        expected = classify(source, data_dir=data_dir)
    assert [str(warning.message) for warning in shown if "en-tête" in str(warning.message)] == [
        f"{source} : en-tête lu ligne {header} ; lignes {header - 2} à {header - 1} ignorées "
        "(titre : 'Lieux à classer, export du 3 mars')"
    ]
    assert expected["motif"].str.contains(f"doublon de la ligne {header + 4}$").any()

    for output in (tmp_path / "sortie.csv", tmp_path / "sortie.parquet"):
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            summary = classify_file_in_partitions(
                source, output, blocksize=2_000, progress=False, scheduler="threads"
            )
        assert [str(warning.message) for warning in warned] == [
            str(warning.message) for warning in shown
        ]
        assert summary["partitions"] > 8
        assert summary["verdicts"] == expected.attrs["verdicts"]
        provenance = json.loads(export.provenance_path(output).read_text("utf-8"))
        assert provenance["lignes"] == f"{header + 1}-{header + len(table)}"
    assert (tmp_path / "sortie.csv").read_bytes().decode("utf-8") == _csv_text(expected)
    written = gpd.read_parquet(tmp_path / "sortie.parquet")
    pd.testing.assert_index_equal(written.index, expected.index, exact=False)
    for column in (*table.columns, "verdict", "motif", "code_insee", "qpv_code"):
        assert written[column].astype(object).equals(expected[column].astype(object)), column


def test_processes_scheduler_gives_the_same_file(places, tmp_path, data_dir):
    source = tmp_path / "lieux.csv"
    _written_like_people(places).to_csv(source, sep=";", index=False)
    expected = classify(source, data_dir=data_dir)
    classify_file_in_partitions(
        source, tmp_path / "sortie.csv", blocksize=4_000, progress=False, scheduler="processes"
    )
    assert (tmp_path / "sortie.csv").read_bytes().decode("utf-8") == _csv_text(expected)


def test_irregular_csv_refused_in_partitions(tmp_path):
    """What blocks cannot read is refused in French, naming the line, what was found and
    expected there and how to correct the file (never to drop --partitions, far too heavy
    for a file that needs it)."""
    header = "nom;lon;lat\n"
    rows = "".join(f"lieu {i};1.44;43.6{i}\n" for i in range(50))
    cases = {
        "ragged.csv": (
            header + rows + "lieu;1.44;43.6;en trop\n" + rows,
            re.escape(
                "ligne 52 : 4 champs trouvés, 3 attendus comme dans l'en-tête (séparateur "
                "point-virgule) : un point-virgule en trop dans une cellule ?"
            ),
        ),
        "short.csv": (
            header + rows + "lieu;1.44\n" + rows,
            "ligne 52 : 2 champs trouvés, 3 attendus .* ajoutez le séparateur manquant",
        ),
        "multiline.csv": (
            header + rows + '"lieu\nsur deux lignes";1.44;43.6\n',
            "ligne 52 : guillemet ouvert et non refermé",
        ),
    }
    for name, (text, message) in cases.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        with pytest.raises(InputError, match=message) as error:
            classify_file_in_partitions(
                tmp_path / name, tmp_path / "o.csv", blocksize=100, progress=False
            )
        assert "corrigez cette ligne du fichier" in str(error.value)
        assert "sans --partitions" not in str(error.value)
    utf8 = (header + rows * 1200).encode("utf-8")  # beyond the first megabyte, guessed UTF-8
    (tmp_path / "mixed.csv").write_bytes(utf8 + "café;1.44;43.6\n".encode("cp1252"))
    with pytest.raises(InputError, match=r"ligne 60002 : caractères hors de l'encodage utf-8"):
        classify_file_in_partitions(tmp_path / "mixed.csv", tmp_path / "o.csv", progress=False)
    (tmp_path / "utf16.csv").write_text(header + rows, encoding="utf-16")
    with pytest.raises(InputError, match=r"UTF-16.*enregistrez-le en « CSV UTF-8 »"):
        classify_file_in_partitions(tmp_path / "utf16.csv", tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_auto_scheduler_by_file_size(cluster, tmp_path, monkeypatch):
    """An active Client keeps the work; else processes for a large file on several
    cores, threads otherwise (or on one core)."""
    small = tmp_path / "petit.csv"
    small.write_text("lon,lat\n1.44,43.6\n", encoding="utf-8")
    monkeypatch.setattr(territoires_distributed, "CPU_COUNT", 2)
    assert territoires_distributed.auto_scheduler(small) is None  # the cluster's client
    with dask.config.set(scheduler="threads"):  # the local scheduler, client or not
        assert territoires_distributed.auto_scheduler(small) == "threads"
        monkeypatch.setattr(territoires_distributed, "PROCESSES_FROM", small.stat().st_size)
        assert territoires_distributed.auto_scheduler(small) == "processes"
        folder = tmp_path / "lieux.parquet"  # a Parquet folder counts all its files
        folder.mkdir()
        (folder / "part.0.parquet").write_bytes(b"x" * (small.stat().st_size - 1))
        assert territoires_distributed.auto_scheduler(folder) == "threads"
        (folder / "part.1.parquet").write_bytes(b"x")
        assert territoires_distributed.auto_scheduler(folder) == "processes"
        monkeypatch.setattr(territoires_distributed, "CPU_COUNT", 1)
        assert territoires_distributed.auto_scheduler(small) == "threads"


@pytest.mark.parametrize(
    "option", [{"precision": 500}, {"qpv_vintages": (2015, 2024)}, {"offline": True}]
)
def test_dask_input_refuses_options_it_cannot_apply(option):
    """An option that would change verdicts in memory is refused, never dropped."""
    table = pd.DataFrame({"lon": [1.4332, 1.4020], "lat": [43.57269, 43.5750]})
    with pytest.raises(InputError, match=f"{next(iter(option))}= : non pris en charge"):
        classify(dd.from_pandas(table, npartitions=1), **option)
