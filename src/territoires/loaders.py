"""Turn any catalogued source into one normalised schema.

``load_qpv`` gives one row per QPV, ``load_communes`` one row per commune with its
density level, zonings and population, ``load_admin`` the outlines of départements and
régions. Every frame records its provenance in ``frame.attrs["sources"]`` (dataset,
vintage, file, sha256, licence, coverage) so that a result can always say what it used.
Commune codes of different COG vintages are bridged through the ``anciensCodes`` of
the populations file; what cannot be matched is reported in ``frame.attrs["jointures"]``
and logged (level INFO, logger ``territoires.loaders``: ``territoires -v`` shows it).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import _csv, _http, catalogue, settings
from ._errors import (
    CatalogueError,
    DataFileError,
    DataNotFoundError,
    DownloadError,
    InputError,
    TerritoiresError,
    UnknownNameError,
)
from .catalogue import Dataset
from .crs import GEOGRAPHIC
from .nomenclatures import DENSITE7_TO_4, QPV_CODE_PATTERN
from .rules import preset

#: Columns of ``load_qpv``.
_log = logging.getLogger(__name__)

QPV_COLUMNS = ["code_qpv", "nom_qpv", "communes", "insee_com", "dep", "geometry"]
#: Columns of ``load_communes``.
COMMUNE_COLUMNS = [
    "code_insee",
    "code_actuel",
    "nom",
    "population",
    "population_source",
    "dep",
    "reg",
    "densite7",
    "densite4",
    "aav2020",
    "cateaav2020",
    "taav2017",
    "uu2020",
    "tuu2017",
    "epci",
    "nature_epci",
    "epci_nom",
    "aav2020_nom",
    "uu2020_nom",
    "geometry",
]
_ZONAGES = ["aav2020", "cateaav2020", "taav2017", "uu2020", "tuu2017", "epci", "nature_epci"]
_INTEGER_ZONAGES = ["cateaav2020", "taav2017", "tuu2017"]
#: Zones named from the labels table: commune column → its level (``NIVGEO``) there.
_NAMED_ZONES = {"epci": "EPCI", "aav2020": "AAV2020", "uu2020": "UU2020"}


#: What reading a truncated, corrupt or wrong file raises, whatever its format.
_UNREADABLE = (
    ValueError,
    KeyError,
    OSError,
    EOFError,
    RuntimeError,
    zipfile.BadZipFile,
    TerritoiresError,
)


def provenance(dataset: Dataset, path: Path, rows: int) -> dict[str, Any]:
    """Describe what was read, for ``frame.attrs["sources"]``.

    A file read although it differs from the catalogue's checksum (accepted with
    ``--accepter-modifie``) is flagged ``modifie_localement`` with the expected checksum.
    """
    actual = _http.sha256sum(path)
    modified = dataset.sha256 is not None and actual != dataset.sha256
    return {
        "jeu": dataset.name,
        "titre": dataset.title,
        "millesime": dataset.vintage,
        "editeur": dataset.publisher,
        "licence": dataset.licence,
        "couverture": dataset.coverage,
        "departements": list(dataset.departements) if dataset.departements else None,
        "fichier": str(path),
        "sha256": actual,
        "lignes": rows,
        **({"modifie_localement": True, "sha256_catalogue": dataset.sha256} if modified else {}),
    }


def _read_excel(source: Any, dataset: Dataset) -> pd.DataFrame:
    """Read a sheet whose header row is found by looking for the catalogue's columns."""
    raw = pd.read_excel(source, sheet_name=dataset.sheet or 0, header=None, dtype=str)
    wanted = {name.lower() for name in dataset.columns}
    for row in range(min(len(raw), 30)):
        labels = {str(value).strip().lower() for value in raw.iloc[row]}
        if wanted <= labels:
            table = raw.iloc[row + 1 :].reset_index(drop=True)
            table.columns = [str(value).strip() for value in raw.iloc[row]]
            return table
    raise CatalogueError(
        f"{dataset.name} : aucune ligne d'en-tête ne contient les colonnes "
        f"{sorted(dataset.columns)}"
    )


def read_raw(dataset: Dataset, path: Path) -> pd.DataFrame | gpd.GeoDataFrame:
    """Read a catalogued file as published, by format.

    Parameters
    ----------
    dataset : Dataset
        Catalogue entry describing the file.
    path : pathlib.Path
        The file on disk.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        Attribute columns as strings; geometries in the file's CRS.
    """
    if dataset.format in {"geojson", "gpkg"}:
        prefix = "/vsigzip/" if path.suffix == ".gz" else ""
        import pyogrio  # imported here: `territoires check` starts faster

        frame = pyogrio.read_dataframe(f"{prefix}{path}", use_arrow=True)
        if frame.crs is None and dataset.crs:
            frame = frame.set_crs(dataset.crs)
        return frame
    if dataset.format == "csv":
        text, encoding = _csv.sample(path)
        return pd.read_csv(
            path,
            sep=_csv.sniff_separator(text),
            dtype=str,
            encoding=encoding,
            keep_default_na=False,
        )
    if dataset.format == "json":
        return pd.DataFrame.from_records(json.loads(path.read_text(encoding="utf-8")))
    if dataset.format == "xlsx":
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                # an .xlsx is itself a zip: only a zip *holding* a workbook is opened here
                if "[Content_Types].xml" not in names:
                    workbooks = [name for name in names if name.lower().endswith(".xlsx")]
                    member = dataset.member or next(iter(workbooks), None)
                    if member not in names:
                        raise CatalogueError(
                            f"{dataset.name} : classeur {member or '*.xlsx'} absent de l'archive "
                            f"{path} ; fichiers de l'archive : {names}"
                        )
                    return _read_excel(io.BytesIO(archive.read(member)), dataset)
        return _read_excel(path, dataset)
    raise CatalogueError(f"{dataset.name} : format inconnu {dataset.format!r}")


def normalise(frame: pd.DataFrame, dataset: Dataset) -> pd.DataFrame:
    """Rename the publisher's columns to ours and keep only those (and the geometry).

    Column names are matched case-insensitively. Catalogued columns absent from the file
    are added empty and listed in ``attrs["colonnes_absentes"]``; the first catalogued
    column is the key and must be present.

    Raises
    ------
    CatalogueError
        When the key column is missing; the message lists the columns found.
    """
    by_lower = {str(column).lower(): column for column in frame.columns}
    renames, missing = {}, []
    for source, target in dataset.columns.items():
        if source.lower() in by_lower:
            renames[by_lower[source.lower()]] = target
        else:
            missing.append(source)
    key = next(iter(dataset.columns))
    if key in missing:
        raise CatalogueError(
            f"{dataset.name} : colonne clé {key!r} absente ; "
            f"colonnes trouvées : {list(frame.columns)}"
        )
    keep = list(renames) + (["geometry"] if "geometry" in frame.columns else [])
    out = frame[keep].rename(columns=renames)
    for source in missing:
        out[dataset.columns[source]] = pd.NA
    for column, mapping in dataset.values.items():
        out[column] = out[column].map(lambda value, m=mapping: m.get(value, value))
    out.attrs = {"colonnes_absentes": missing}
    return out


@lru_cache(maxsize=32)
def _read_cached(
    name: str, path: str, mtime_ns: int, size: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and normalise a file, remembered while it is unchanged on disk."""
    dataset = catalogue.get(name)
    frame = normalise(read_raw(dataset, Path(path)), dataset)
    source = provenance(dataset, Path(path), len(frame))
    source["colonnes_absentes"] = frame.attrs.pop("colonnes_absentes")
    return frame, source


def _open(dataset: Dataset, path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a file of the catalogue, or say in one line why it cannot be read."""
    stat = path.stat()
    try:
        return _read_cached(dataset.name, str(path), stat.st_mtime_ns, stat.st_size)
    except _UNREADABLE as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataFileError(f"{path} illisible ({detail[:300]})") from error


def check_file(dataset: Dataset, path: Path) -> None:
    """Refuse a downloaded file that does not open as ``dataset`` describes it.

    The file must open in its format, hold the catalogue's key column and, when the
    catalogue gives it, a number of rows within ``dataset.rows``: a body cut short
    without ``Content-Length`` fails one of these.

    Raises
    ------
    DownloadError
        Naming the file received and what is wrong; nothing has been cached.
    """
    try:
        frame = normalise(read_raw(dataset, path), dataset)
    except _UNREADABLE as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DownloadError(
            f"fichier reçu illisible comme {dataset.format} ({detail[:300]}) : téléchargement "
            "tronqué ou mauvais fichier ; rien n'a été mis en cache"
        ) from error
    if dataset.rows is not None and not dataset.rows[0] <= len(frame) <= dataset.rows[1]:
        raise DownloadError(
            f"fichier reçu incomplet ou inattendu : {len(frame)} lignes, attendu entre "
            f"{dataset.rows[0]} et {dataset.rows[1]} ; rien n'a été mis en cache"
        )


def fetch(dataset: Dataset | str, data_dir: Path | None = None, progress: bool = False) -> Path:
    """Return the local file of a dataset, downloading and validating it if needed.

    :func:`territoires.catalogue.fetch` with :func:`check_file` as validation: a
    download reaches the cache only if it opens with the expected columns and rows.

    Parameters
    ----------
    dataset : Dataset or str
        Catalogue entry or name.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.
    progress : bool, default False
        Show a progress bar while downloading.

    Returns
    -------
    pathlib.Path
        The mirror, cached or freshly downloaded file.
    """
    ds = catalogue.get(dataset) if isinstance(dataset, str) else dataset
    return catalogue.fetch(ds, data_dir, progress=progress, validate=lambda p: check_file(ds, p))


def read(
    dataset: Dataset | str, data_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fetch (mirror, cache or download) and read a dataset in our column names.

    A cached file that cannot be read is quarantined (see
    :func:`territoires.catalogue.quarantine`) and fetched again; a mirror file that
    cannot be read is an error naming the file and the fix.

    Parameters
    ----------
    dataset : Dataset or str
        Catalogue entry or name.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        A fresh copy, safe to modify.
    source : dict
        Provenance of the file read.

    Raises
    ------
    DataFileError
        When the mirror file (or a file downloaded again) cannot be read.
    """
    ds = catalogue.get(dataset) if isinstance(dataset, str) else dataset
    return _read_first(lambda: ds, data_dir, attempts=2)


def read_kind(
    kind: str, vintage: int | None = None, data_dir: Path | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the preferred available dataset of a kind, skipping unreadable cached files.

    Like ``read(catalogue.choose(kind, vintage, data_dir))``, except that a cached
    file found unreadable is quarantined and the choice made again, so that a broken
    download never outranks a good mirror file of another dataset.
    """
    attempts = len(catalogue.candidates(kind, vintage)) + 1
    return _read_first(lambda: catalogue.choose(kind, vintage, data_dir), data_dir, attempts)


def _read_first(
    choose: Callable[[], Dataset], data_dir: Path | None, attempts: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read the dataset ``choose`` names, quarantining unreadable cached files on the way."""
    for _ in range(attempts):
        ds = choose()
        path = fetch(ds, data_dir)
        try:
            frame, source = _open(ds, path)
        except DataFileError as error:
            if path != ds.cache_path:
                raise DataFileError(
                    f"{ds.name} : {error}. Le fichier est sans doute tronqué ou corrompu : "
                    f"remplacez-le par le fichier officiel ({ds.url or ds.page or 'miroir'}) "
                    "ou retirez-le du miroir"
                ) from error
            catalogue.quarantine(ds, str(error))
            continue
        return frame.copy(), dict(source)
    raise DataFileError(
        f"{ds.name} : aucun fichier lisible après {attempts} essai(s) ; voir les fichiers mis "
        f"en quarantaine dans {settings.cache_dir / 'quarantaine'}"
    )


def repair(geometries: gpd.GeoSeries) -> tuple[gpd.GeoSeries, int]:
    """Make polygons valid without dropping any, keeping only their polygonal part.

    Returns
    -------
    geometries : geopandas.GeoSeries
        Valid (multi)polygons, same index and CRS.
    repaired : int
        How many geometries were invalid.
    """
    values = geometries.values
    invalid = ~shapely.is_valid(values)
    if not invalid.any():
        return geometries, 0
    fixed = np.array(values, dtype=object)
    fixed[invalid] = shapely.make_valid(fixed[invalid], method="structure", keep_collapsed=False)
    return gpd.GeoSeries(fixed, index=geometries.index, crs=geometries.crs), int(invalid.sum())


def _departement_from_qpv_code(codes: pd.Series) -> pd.Series:
    """Département of a QPV from its code: ``QP075001`` → ``75``, ``QN97101M`` → ``971``."""
    part = codes.str[2:5]
    return part.where(part.str.startswith("97"), part.str[1:])


def load_qpv(
    vintage: int | None = None, *, dataset: str | None = None, data_dir: Path | None = None
) -> gpd.GeoDataFrame:
    """Load the QPV of one geography, one row per QPV.

    Parameters
    ----------
    vintage : {2015, 2024}, optional
        Geography of the QPV (codes ``QP…`` for 2015, ``QN…`` for 2024). By default the
        geography of the default rules (:data:`territoires.rules.DEFAULT_PRESET`,
        ``fabriques-2019``: 2015), the one :func:`territoires.classify` applies when no
        rules are given, so that the QPV drawn beside its verdicts are those it used.
        Pass ``2024`` for the current geography (rules ``fabriques-2019-qpv2024``).
    dataset : str, optional
        Catalogue name to read; by default the preferred dataset of that vintage found
        in the mirror or the cache, else downloaded from the publisher.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    geopandas.GeoDataFrame
        ``code_qpv``, ``nom_qpv``, ``communes`` (names), ``insee_com`` (codes, ``;``
        separated when several; NA when the source has none, as the 2015 national
        file), ``dep`` and valid (multi)polygon geometry in
        EPSG:4326. Features sharing a code are merged. ``attrs["sources"]`` holds the
        provenance, with the départements covered when the file is a regional extract;
        ``attrs["geometries_reparees"]`` the number of invalid polygons repaired.
    """
    if vintage is None:
        vintage = preset().qpv_vintage
    frame, source = read(dataset, data_dir) if dataset else read_kind("qpv", vintage, data_dir)
    ds = catalogue.get(source["jeu"])
    frame = frame.to_crs(GEOGRAPHIC)
    frame["geometry"], repaired = repair(frame.geometry)
    frame["code_qpv"] = frame["code_qpv"].astype(str).str.strip()
    dep = _departement_from_qpv_code(frame["code_qpv"]).astype("string")
    frame["dep"] = frame["dep"].astype("string").fillna(dep) if "dep" in frame else dep
    for column in ("communes", "insee_com", "nom_qpv"):
        # the 2015 national file has no commune code column: keep it, empty
        values = frame[column] if column in frame else pd.Series(pd.NA, index=frame.index)
        frame[column] = values.astype("string")
    if frame["code_qpv"].duplicated().any():
        frame = frame.dissolve(
            by="code_qpv",
            aggfunc={
                "nom_qpv": "first",
                "dep": "first",
                "communes": lambda s: ";".join(dict.fromkeys(s.dropna())) or pd.NA,
                "insee_com": lambda s: ";".join(dict.fromkeys(s.dropna())) or pd.NA,
            },
            as_index=False,
        )
        for column in ("communes", "insee_com"):
            frame[column] = frame[column].astype("string")
    out = gpd.GeoDataFrame(frame[QPV_COLUMNS].reset_index(drop=True), crs=GEOGRAPHIC)
    out.attrs = {"sources": [source], "geometries_reparees": repaired, "millesime_qpv": ds.vintage}
    return out


def qpv_departements(qpv: pd.DataFrame, unsourced: str = "all") -> list[str] | None:
    """Départements where a QPV layer, or a table derived from it, is complete.

    Parameters
    ----------
    qpv : pandas.DataFrame
        Output of :func:`load_qpv` (provenance in ``attrs["sources"]``), or of
        :func:`territoires.coverage.qpv_coverage` (``attrs["departements_qpv"]``).
    unsourced : {"all", "present"}, default "all"
        What a layer without provenance (built by hand) covers: ``"all"`` of France,
        or only the départements where it has QPV (``"present"``, the cautious reading
        of coverage figures).

    Returns
    -------
    list of str or None
        ``None`` for the whole of France, else the sorted départements (those of a
        regional extract, for a loaded layer).

    Raises
    ------
    UnknownNameError
        For another value of ``unsourced``.
    """
    if unsourced not in ("all", "present"):
        raise UnknownNameError(f"unsourced={unsourced!r} : attendu 'all' ou 'present'")
    if "departements_qpv" in qpv.attrs:
        return qpv.attrs["departements_qpv"]
    sources = qpv.attrs.get("sources") or []
    if not sources:
        return None if unsourced == "all" else sorted(qpv["dep"].dropna().astype(str).unique())
    if any(source.get("departements") is None for source in sources):
        return None
    return sorted({dep for source in sources for dep in source["departements"]})


def qpv_population_on_disk(vintage: int, data_dir: Path | None = None) -> pd.Series | None:
    """Population by ``code_qpv`` from the QPV indicators of a vintage, if on disk.

    Never downloads: the indicators are optional, coverage figures without them give
    NA populations.

    Parameters
    ----------
    vintage : int
        QPV geography (2015 or 2024).
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Returns
    -------
    pandas.Series or None
        Strings indexed by ``code_qpv``, with the provenance in ``attrs["sources"]``;
        None when no indicators dataset of that vintage is in the mirror or the cache.
    """
    for dataset in catalogue.candidates("qpv_indicateurs", vintage):
        if dataset.local_path(data_dir) is not None:
            frame, source = read(dataset, data_dir)
            population = frame.drop_duplicates("code_qpv").set_index("code_qpv")["population"]
            population.attrs = {"sources": [source]}
            return population
    return None


#: Columns of ``load_qpv_communes``.
QPV_COMMUNE_COLUMNS = ["code_insee", "code_qpv", "nom_qpv"]


def load_qpv_communes(
    vintage: int = 2024, *, dataset: str | None = None, data_dir: Path | None = None
) -> pd.DataFrame:
    """Load the national list of QPV by commune, one row per (commune, QPV) pair.

    The list has no contours: it tells which communes host which QPV, so a place whose
    commune and neighbouring communes host none is neither in nor near a QPV, wherever
    the QPV polygons are missing. A QPV spanning several communes is listed under each.

    Parameters
    ----------
    vintage : int, default 2024
        QPV geography (only 2024 is catalogued).
    dataset : str, optional
        Catalogue name to read; by default the preferred one on disk, else downloaded.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.

    Returns
    -------
    pandas.DataFrame
        :data:`QPV_COMMUNE_COLUMNS` as strings, sorted by commune then QPV code;
        ``attrs["sources"]`` holds the provenance, ``attrs["millesime_qpv"]`` the vintage.

    Raises
    ------
    DataNotFoundError
        When the list is neither on disk nor downloadable: callers that can answer
        without it catch this error and say what could not be decided.
    CatalogueError
        When a commune lists a different number of QPV codes and names.
    """
    ds = catalogue.get(dataset) if dataset else catalogue.choose("qpv_communes", vintage, data_dir)
    frame, source = read(ds, data_dir)
    codes = frame["codes_qpv"].astype("string").str.split(",")
    names = frame["noms_qpv"].astype("string").str.split(",")
    mismatched = codes.str.len() != names.str.len()
    if mismatched.any():
        raise CatalogueError(
            f"{ds.name} : autant de codes que de noms de QPV attendus ; communes en défaut : "
            f"{', '.join(frame.loc[mismatched, 'code_insee'].astype(str))}"
        )
    pairs = pd.DataFrame(
        {
            "code_insee": frame["code_insee"].astype(str).str.strip().repeat(codes.str.len()),
            "code_qpv": codes.explode().str.strip().to_numpy(),
            "nom_qpv": names.explode().str.strip().to_numpy(),
        }
    )
    pairs = pairs.drop_duplicates().sort_values(["code_insee", "code_qpv"]).reset_index(drop=True)
    out = pairs.astype("string")
    out.attrs = {"sources": [source], "millesime_qpv": ds.vintage}
    return out


def qpv_from_communes(pairs: pd.DataFrame, communes: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """QPV of a list by commune, each drawn as the union of its hosting communes.

    A stand-in for missing QPV contours where only the list by commune is at hand (a
    coverage analysis at commune level): a QPV lies inside its hosting communes, so a
    distance to them is a lower bound of the distance to the QPV.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Output of :func:`load_qpv_communes`.
    communes : geopandas.GeoDataFrame
        Output of :func:`load_communes` (``code_insee``, ``code_actuel``, ``nom``,
        ``dep``), whose contours are used.

    Returns
    -------
    geopandas.GeoDataFrame
        :data:`QPV_COLUMNS`, one row per QPV whose communes were found, EPSG:4326;
        ``attrs["sources"]`` is the list's provenance with ``geometrie`` saying that the
        shapes are those of the hosting communes, ``attrs["qpv_sans_commune"]`` the QPV
        codes none of whose communes is in ``communes``.
    """
    by_code = communes.drop_duplicates("code_insee").set_index("code_insee")
    current = communes.drop_duplicates("code_actuel").set_index("code_actuel")["code_insee"]
    code = pairs["code_insee"].where(pairs["code_insee"].isin(by_code.index))
    code = code.fillna(pairs["code_insee"].map(current))
    found = pairs.assign(commune=code).dropna(subset=["commune"])
    found = found.join(by_code[["nom", "dep", "geometry"]], on="commune")
    shapes = gpd.GeoDataFrame(found, geometry="geometry", crs=communes.crs).to_crs(GEOGRAPHIC)
    out = shapes.dissolve(
        by="code_qpv",
        aggfunc={
            "nom_qpv": "first",
            "nom": lambda s: ";".join(dict.fromkeys(s)),
            "commune": lambda s: ";".join(dict.fromkeys(s)),
            "dep": "first",
        },
        as_index=False,
    ).rename(columns={"nom": "communes", "commune": "insee_com"})
    for column in QPV_COLUMNS[:-1]:
        out[column] = out[column].astype("string")
    result = gpd.GeoDataFrame(out[QPV_COLUMNS].reset_index(drop=True), crs=GEOGRAPHIC)
    sources = [
        {**source, "geometrie": "contours des communes d'accueil de chaque QPV"}
        for source in pairs.attrs.get("sources", [])
    ]
    missing = sorted(set(pairs["code_qpv"]) - set(result["code_qpv"]))
    result.attrs = {
        "sources": sources,
        "millesime_qpv": pairs.attrs.get("millesime_qpv"),
        "qpv_sans_commune": missing,
    }
    return result


#: Columns of ``load_commune_codes``.
COMMUNE_CODE_COLUMNS = ["code", "code_insee", "nom", "nom_commune", "dep", "codes_postaux"]


def load_commune_codes(*, data_dir: Path | None = None) -> pd.DataFrame:
    """Every known commune code with the current commune it designates.

    Used to locate places given only by a commune: current codes, older codes
    (``anciensCodes``), delegated and associated communes and municipal arrondissements
    all lead to the current commune.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :func:`territoires.settings.data_dir`.

    Returns
    -------
    pandas.DataFrame
        :data:`COMMUNE_CODE_COLUMNS`: ``code`` (unique, the code as written), ``code_insee``
        (current code), ``nom`` (name of the entity the code designates; empty for old
        codes), ``nom_commune`` and ``dep`` of the current commune, ``codes_postaux``
        (tuple of postcodes of the entity). ``attrs["sources"]`` holds the provenance.
    """
    populations, source = read(catalogue.choose("populations", data_dir=data_dir), data_dir)
    mapping = bridge(populations)
    current = populations[populations["type"] == "commune-actuelle"].set_index("code_insee")
    entities = populations.drop_duplicates("code_insee").set_index("code_insee")
    codes = pd.Index(mapping.index, name="code")
    target = mapping.to_numpy()
    postcodes = entities["codes_postaux"].reindex(codes)
    out = pd.DataFrame(
        {
            "code": codes,
            "code_insee": target,
            "nom": entities["nom"].reindex(codes).fillna("").to_numpy(),
            "nom_commune": current["nom"].reindex(target).to_numpy(),
            "dep": current["dep"].reindex(target).to_numpy(),
            "codes_postaux": [
                tuple(value) if isinstance(value, list) else () for value in postcodes
            ],
        }
    )
    for column in COMMUNE_CODE_COLUMNS[:-1]:
        out[column] = out[column].astype("string")
    out.attrs = {"sources": [source]}
    return out


def bridge(populations: pd.DataFrame) -> pd.Series:
    """Map every known commune code (old or current) to its current code.

    Parameters
    ----------
    populations : pandas.DataFrame
        The populations dataset (``code_insee``, ``type``, ``anciens_codes``,
        ``chef_lieu``), whose COG vintage defines "current".

    Returns
    -------
    pandas.Series
        Index: any code (current codes, ``anciensCodes``, delegated and associated
        communes, municipal arrondissements); values: the current commune code.
    """
    current = populations[populations["type"] == "commune-actuelle"]
    pairs = [pd.Series(current["code_insee"].values, index=current["code_insee"].values)]
    olds = current[["code_insee", "anciens_codes"]].explode("anciens_codes").dropna()
    pairs.append(pd.Series(olds["code_insee"].values, index=olds["anciens_codes"].values))
    parts = populations[populations["type"] != "commune-actuelle"]
    # delegated and associated communes name their chef-lieu, municipal arrondissements
    # (Paris, Lyon, Marseille) their commune
    parent = parts["chef_lieu"].fillna(parts["commune_parente"]).dropna()
    pairs.append(pd.Series(parent.values, index=parts.loc[parent.index, "code_insee"].values))
    mapping = pd.concat(pairs)
    return mapping[~mapping.index.duplicated(keep="first")]


def bridged_join(
    codes: pd.Series, table: pd.DataFrame, mapping: pd.Series, name: str
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Attach ``table`` rows to commune ``codes``, bridging COG vintages.

    A code is matched directly when ``table`` has it; otherwise both sides are mapped
    to current codes through ``mapping`` and matched there ("passerelle").

    Parameters
    ----------
    codes : pandas.Series
        Commune codes of the base vintage, in the base's order.
    table : pandas.DataFrame
        Keyed by ``code_insee`` in its own vintage.
    mapping : pandas.Series
        Output of :func:`bridge`.
    name : str
        Dataset name, for the report.

    Returns
    -------
    joined : pandas.DataFrame
        ``table``'s columns aligned on ``codes`` (same index), NA where unmatched.
    report : dict
        Counts of direct and bridged matches, and the codes bridged, missing
        (base codes with no row) and unused (table codes matching no base code).
    """
    table = table.drop_duplicates("code_insee").set_index("code_insee")
    direct = codes.isin(table.index)
    keys = codes.where(direct)
    current_of_table = pd.Series(table.index.map(lambda c: mapping.get(c, c)), index=table.index)
    by_current = pd.Series(table.index, index=current_of_table.values)
    by_current = by_current[~by_current.index.duplicated(keep="first")]
    current_of_base = codes[~direct].map(lambda c: mapping.get(c, c))
    keys[~direct] = current_of_base.map(by_current)
    joined = table.reindex(keys.values)
    joined.index = codes.index
    bridged = ~direct & keys.notna()
    used = set(keys.dropna())
    report = {
        "jeu": name,
        "directes": int(direct.sum()),
        "passerelles": sorted(codes[bridged]),
        "absentes": sorted(codes[keys.isna()]),
        "non_utilisees": sorted(set(table.index) - used),
    }
    return joined, report


def load_communes(*, data_dir: Path | None = None, geometry: bool = True) -> gpd.GeoDataFrame:
    """Load every commune with its density level, zonings and population.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    geometry : bool, default True
        Keep the boundaries (EPSG:4326); ``False`` returns a plain DataFrame.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per commune of the boundaries' COG, columns :data:`COMMUNE_COLUMNS`;
        ``code_actuel`` is the commune's code in the populations' (newest) COG.
        ``densite7`` is an integer 1–7 (nullable), ``densite4`` its 4-level grouping,
        ``cateaav2020``/``taav2017``/``tuu2017`` integers, ``aav2020``/``uu2020`` zone
        codes, ``epci_nom``/``aav2020_nom``/``uu2020_nom`` their names (NA without the
        zone labels table). ``population`` comes from the populations dataset when the
        commune maps to exactly one current commune, else from the boundaries file
        (``population_source`` says which). ``attrs["jointures"]`` reports, per joined
        dataset, the codes matched directly, bridged, missing and unused;
        ``attrs["sources"]`` the provenance of every file read.
    """
    communes, contours_source = read_kind("communes_contours", data_dir=data_dir)
    communes = communes.to_crs(GEOGRAPHIC)
    communes["geometry"], repaired = repair(communes.geometry)
    communes["code_insee"] = communes["code_insee"].astype(str).str.strip()
    sources, reports = [contours_source], []

    populations, source = read_kind("populations", data_dir=data_dir)
    sources.append(source)
    mapping = bridge(populations)
    current = populations[populations["type"] == "commune-actuelle"][["code_insee", "population"]]
    joined, report = bridged_join(communes["code_insee"], current, mapping, source["jeu"])
    reports.append(report)
    target = communes["code_insee"].map(lambda c: mapping.get(c, c))
    communes["code_actuel"] = target.astype("string")
    shared = target.map(target.value_counts()) > 1
    from_populations = joined["population"].notna() & ~shared
    communes["population"] = (
        pd.to_numeric(joined["population"], errors="coerce")
        .where(from_populations, pd.to_numeric(communes["population"], errors="coerce"))
        .round()
        .astype("Int64")
    )
    communes["population_source"] = np.where(
        from_populations, source["jeu"], contours_source["jeu"]
    )

    density, source = read_kind("densite", data_dir=data_dir)
    sources.append(source)
    joined, report = bridged_join(communes["code_insee"], density, mapping, source["jeu"])
    reports.append(report)
    communes["densite7"] = pd.to_numeric(joined["densite7"], errors="coerce").astype("Int64")
    communes["densite4"] = (
        communes["densite7"].map(DENSITE7_TO_4, na_action="ignore").astype("Int64")
    )

    for column in _ZONAGES:
        communes[column] = pd.Series(pd.NA, index=communes.index, dtype="object")
    for ds in _zoning_datasets(data_dir):
        zonings, source = read(ds, data_dir)
        sources.append(source)
        provided = [c for c in _ZONAGES if c in zonings and c not in source["colonnes_absentes"]]
        joined, report = bridged_join(communes["code_insee"], zonings, mapping, source["jeu"])
        reports.append(report)
        for column in provided:
            communes[column] = communes[column].fillna(joined[column])
    for column in _INTEGER_ZONAGES:
        communes[column] = pd.to_numeric(communes[column], errors="coerce").astype("Int64")
    for column, names in _zone_names(communes, sources, data_dir).items():
        communes[f"{column}_nom"] = names
    for column in ("aav2020", "uu2020", "dep", "reg", "nom", "epci", "nature_epci"):
        communes[column] = communes[column].astype("string")

    for report in reports:
        if report["absentes"]:
            _log.info(
                "%s : %d commune(s) sans correspondance (ex. %s) ; détail dans "
                "load_communes().attrs['jointures']",
                report["jeu"],
                len(report["absentes"]),
                ", ".join(report["absentes"][:5]),
            )
    columns = COMMUNE_COLUMNS if geometry else COMMUNE_COLUMNS[:-1]
    out = communes[columns].reset_index(drop=True)
    out = gpd.GeoDataFrame(out, crs=GEOGRAPHIC) if geometry else pd.DataFrame(out)
    out.attrs = {"sources": sources, "jointures": reports, "geometries_reparees": repaired}
    return out


def _zone_names(
    communes: pd.DataFrame, sources: list[dict[str, Any]], data_dir: Path | None
) -> dict[str, pd.Series]:
    """Name of the EPCI, aire d'attraction and unité urbaine of each commune.

    By commune column of :data:`_NAMED_ZONES`, from the zone labels table when it can be
    had, else NA. The names only make motifs readable: without the table, motifs give
    the codes.
    """
    try:
        labels, source = read(catalogue.choose("zonages_libelles", data_dir=data_dir), data_dir)
    except DataNotFoundError:
        labels = None
    else:
        sources.append(source)
    names = {}
    for column, level in _NAMED_ZONES.items():
        if labels is None:
            names[column] = pd.Series(pd.NA, index=communes.index, dtype="string")
            continue
        zones = labels[labels["niveau"] == level].drop_duplicates("code_zone")
        names[column] = communes[column].map(zones.set_index("code_zone")["libelle"])
        names[column] = names[column].astype("string")
    return names


def _zoning_datasets(data_dir: Path | None) -> list[Dataset]:
    """Zoning datasets to read so that every zoning column is provided, preferred first."""
    chosen: list[Dataset] = []
    needed = set(_ZONAGES)
    options = [ds for ds in catalogue.candidates("zonages")]
    available = [ds for ds in options if ds.local_path(data_dir) is not None]
    if not settings.offline:
        available += [ds for ds in options if ds.downloadable and ds not in available]
    for ds in sorted(available, key=lambda d: (d.local_path(data_dir) is None, d.priority)):
        provides = needed & set(ds.columns.values())
        if provides:
            chosen.append(ds)
            needed -= provides
        if not needed:
            return chosen
    if not chosen:
        catalogue.choose("zonages", data_dir=data_dir)  # raises with the expected files
    return chosen


def load_admin(level: str = "departements", *, data_dir: Path | None = None) -> gpd.GeoDataFrame:
    """Load the outlines of départements or régions.

    Parameters
    ----------
    level : {"departements", "regions"}
        Which outlines.
    data_dir : pathlib.Path, optional
        Mirror folder.

    Returns
    -------
    geopandas.GeoDataFrame
        ``dep`` or ``reg``, ``nom`` and the outline geometry (lines or polygons as
        published) in EPSG:4326.
    """
    if level not in {"departements", "regions"}:
        raise UnknownNameError(f"niveau inconnu {level!r} : 'departements' ou 'regions'")
    frame, source = read_kind(level, data_dir=data_dir)
    out = gpd.GeoDataFrame(frame, crs=frame.crs).to_crs(GEOGRAPHIC)
    out.attrs = {"sources": [source]}
    return out


def admin_names(level: str = "departements", *, data_dir: Path | None = None) -> dict[str, str]:
    """Code → name of the départements or régions, from their catalogued outlines.

    Parameters
    ----------
    level : {"departements", "regions"}
        Which names.
    data_dir : pathlib.Path, optional
        Mirror folder.

    Returns
    -------
    dict of str to str
        ``{"31": "Haute-Garonne", …}`` or ``{"76": "Occitanie", …}``; empty when the
        outlines are neither in the mirror nor in the cache (reports then show codes).
    """
    try:
        frame = load_admin(level, data_dir=data_dir)
    except DataNotFoundError:
        return {}
    code = "dep" if level == "departements" else "reg"
    return dict(zip(frame[code].astype(str), frame["nom"].astype(str), strict=True))


#: Header names recognised for the column of QPV codes in a NPNRU list (lower case).
NPNRU_CODE_COLUMNS = ("code_qp", "code_qpv", "code_quartier", "qp", "code")


def load_npnru(
    source: Path | str | Iterable[str] | None = None, *, data_dir: Path | None = None
) -> frozenset[str]:
    """Codes of the QPV under a renewal contract (NPNRU), as listed by the ANRU.

    Parameters
    ----------
    source : path, str or iterable of str, optional
        A CSV, text or Excel (``.xlsx``, first sheet) file with a column ``code_qp``
        (or ``code_qpv``, ``code_quartier``, ``qp``, ``code``; in a workbook, below
        any title rows), or one code per line without header; or
        the codes themselves (a Python list). By default the catalogued ANRU list
        (``qpv_npnru_anru``) found in the mirror or the cache.
    data_dir : pathlib.Path, optional
        Mirror folder, for the catalogued list.

    Returns
    -------
    frozenset of str
        Upper-case codes, ``QP…`` (2015 geography) or ``QN…`` (2024).

    Raises
    ------
    InputError
        When the file has no code column, a code is malformed (the message gives its
        line and value) or the list is empty.
    """
    if source is None:
        source = catalogue.fetch(catalogue.choose("qpv_npnru", data_dir=data_dir), data_dir)
    if isinstance(source, str | Path):
        where = Path(source)
        if not where.is_file():
            raise InputError(f"liste NPNRU introuvable : {where}")
        cells = _npnru_cells(where)
    else:
        where = "liste Python"
        cells = [(f"élément {position}", str(code)) for position, code in enumerate(source, 1)]
    codes = {place: value.strip().upper() for place, value in cells}
    malformed = [
        f"{place} : {value!r}"
        for place, value in codes.items()
        if not re.fullmatch(QPV_CODE_PATTERN, value)
    ]
    if malformed:
        raise InputError(
            f"{where} : code(s) QPV invalide(s), attendu QP suivi de 6 caractères (géographie "
            f"2015, ex. QP031003) ou QN suivi de 6 (2024) — {' ; '.join(malformed[:5])}"
            + (f" ; et {len(malformed) - 5} autre(s)" if len(malformed) > 5 else "")
        )
    if not codes:
        raise InputError(f"{where} : aucun code QPV dans la liste NPNRU")
    return frozenset(codes.values())


def _npnru_cells(path: Path) -> list[tuple[str, str]]:
    """The code cell of every non-blank line of a NPNRU list, with its line number.

    A CSV or text file is read from its first line; in a workbook (first sheet), the
    header is the first row holding a code column, so a title above it is skipped.
    """
    if path.suffix.lower() in {".xlsx", ".xlsm"}:
        sheet = pd.read_excel(path, header=None, dtype=str).fillna("")
        rows = [list(row) for row in sheet.itertuples(index=False, name=None)]
        first = next(
            (
                number
                for number, row in enumerate(rows)
                if {str(cell).strip().lower() for cell in row} & set(NPNRU_CODE_COLUMNS)
            ),
            0,
        )
        lines = [(number, row) for number, row in enumerate(rows, 1)][first:]
    else:
        text, _ = _csv.decode(path.read_bytes(), path)
        rows = list(csv.reader(io.StringIO(text), delimiter=_csv.sniff_separator(text)))
        lines = list(enumerate(rows, 1))
    lines = [(number, row) for number, row in lines if any(str(c).strip() for c in row)]
    if not lines:
        raise InputError(f"{path} : fichier vide, attendu une liste de codes QPV NPNRU")
    header = [str(cell).strip().lower() for cell in lines[0][1]]
    column = next((header.index(name) for name in NPNRU_CODE_COLUMNS if name in header), None)
    if column is None:
        if not re.fullmatch(QPV_CODE_PATTERN, str(lines[0][1][0]).strip().upper()):
            raise InputError(
                f"{path} : colonne des codes QPV introuvable ; attendu une colonne "
                f"{' ou '.join(NPNRU_CODE_COLUMNS)}, ou un code par ligne ; colonnes "
                f"trouvées : {lines[0][1]}"
            )
        column, body = 0, lines
    else:
        body = lines[1:]
    return [(f"ligne {number}", row[column] if column < len(row) else "") for number, row in body]
