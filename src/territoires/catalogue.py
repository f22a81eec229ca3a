"""Catalogue of official sources, kept as data in ``data/*/catalogue.json``.

Each entry names one file of one publisher at one vintage: where it is published, its
checksum when known, its format, CRS, licence, territorial coverage and the mapping from
the publisher's column names to ours. This module turns entries into :class:`Dataset`
objects and finds the file of a dataset: in the offline mirror first, then in the
download cache, then by downloading it from the publisher.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from . import _http, settings
from ._errors import CatalogueError, ChecksumError, DataNotFoundError, DownloadError

_REQUIRED = ("kind", "vintage", "title", "publisher", "filename", "format", "licence", "columns")


@dataclass(frozen=True)
class Dataset:
    """One official file at one vintage, as described by the catalogue.

    Attributes
    ----------
    name : str
        Catalogue key, e.g. ``"qpv2024"``.
    kind : str
        What the file holds (``qpv``, ``communes_contours``, ``densite``, ``zonages``,
        ``populations``, ``departements``, ``regions``…); loaders ask for a kind.
    vintage : int
        Year of the geography or of the classification.
    title, publisher, licence, coverage : str
        Human-readable provenance.
    filename : str
        Name of the file in the download cache.
    format : str
        ``geojson``, ``gpkg``, ``csv``, ``json`` or ``xlsx``.
    columns : dict
        Publisher column name → normalised column name.
    url : str or None
        Direct download URL, when the publisher gives a stable one.
    datagouv : dict or None
        ``{"dataset": slug, "resource": title}`` resolved through the data.gouv.fr API.
    mirror : tuple of str
        Paths, relative to the mirror folder, where the file may lie.
    sha256 : str or None
        Expected checksum of the file; ``None`` when the publisher changes it in place.
    crs : str or None
        CRS of the geometries, for spatial formats.
    departements : tuple of str or None
        Départements covered when the file is a regional extract; ``None`` for France.
    priority : int
        Lower is preferred when several datasets of a kind and vintage are available.
    values : dict
        Per normalised column, publisher value → normalised value (e.g. density labels).
    member, sheet : str or None
        File inside a zip archive, and spreadsheet sheet, to read.
    page : str or None
        Publisher's web page describing the dataset.
    rows : tuple of int or None
        ``(min, max)`` rows a complete file holds: a download outside this range (a body
        cut short, a wrong file) is refused before it reaches the cache.
    """

    name: str
    kind: str
    vintage: int
    title: str
    publisher: str
    licence: str
    filename: str
    format: str
    columns: dict[str, str]
    coverage: str = "France"
    url: str | None = None
    datagouv: dict[str, str] | None = None
    mirror: tuple[str, ...] = ()
    sha256: str | None = None
    crs: str | None = None
    departements: tuple[str, ...] | None = None
    priority: int = 100
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    member: str | None = None
    sheet: str | None = None
    page: str | None = None
    rows: tuple[int, int] | None = None

    @property
    def downloadable(self) -> bool:
        """True when the publisher gives a URL or a data.gouv.fr resource."""
        return bool(self.url or self.datagouv)

    @property
    def cache_path(self) -> Path:
        """Where the downloaded file lives in the cache."""
        return settings.cache_dir / self.kind / self.filename

    def mirror_path(self, data_dir: Path | None = None) -> Path | None:
        """Return the first existing mirror path of this dataset, or None.

        Parameters
        ----------
        data_dir : pathlib.Path, optional
            Mirror folder; defaults to :data:`territoires.settings.data_dir`.
        """
        folder = mirror_folder(data_dir)
        if folder is None:
            return None
        for relative in self.mirror:
            candidate = Path(folder) / relative
            if candidate.is_file():
                return candidate
        return None

    def local_path(self, data_dir: Path | None = None) -> Path | None:
        """Return the file if it is already on disk (mirror, then cache), else None."""
        found = self.mirror_path(data_dir)
        if found is not None:
            return found
        return self.cache_path if self.cache_path.is_file() else None

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{key}</th><td>{value}</td></tr>"
            for key, value in (
                ("jeu", self.name),
                ("titre", self.title),
                ("millésime", self.vintage),
                ("éditeur", self.publisher),
                ("couverture", self.coverage),
                ("licence", self.licence),
                ("source", self.url or self.datagouv or "miroir seulement"),
            )
        )
        return f"<table>{rows}</table>"


def _catalogue_dirs() -> list[Path]:
    """Folders holding ``*/catalogue.json``: in the installed package, else the repository."""
    packaged = resources.files("territoires") / "catalogue"
    if packaged.is_dir():
        return [Path(str(packaged))]
    return [Path(__file__).resolve().parents[2] / "data"]


def packaged_data(*parts: str) -> Path:
    """Path of a file shipped with territoires' data (the repository's ``data/`` folder).

    Parameters
    ----------
    *parts : str
        Path inside that folder, e.g. ``"enveloppes", "fabriques-2019.json"``.
    """
    return _catalogue_dirs()[0].joinpath(*parts)


def mirror_folder(data_dir: Path | str | None = None) -> Path | None:
    """Return the mirror folder read for ``data_dir``.

    Parameters
    ----------
    data_dir : pathlib.Path or str, optional
        Mirror folder given by the caller; defaults to :data:`territoires.settings.data_dir`,
        read at each call (so that assigning the setting takes effect at once).

    Returns
    -------
    pathlib.Path or None
        The folder (``~`` expanded), or ``None`` when no mirror is set.
    """
    folder = data_dir if data_dir is not None else settings.data_dir
    return Path(folder).expanduser() if folder is not None else None


@cache
def datasets() -> dict[str, Dataset]:
    """Return every dataset of the catalogue, by name.

    Returns
    -------
    dict of str to Dataset
        Sorted by kind, vintage (newest first) and priority.

    Raises
    ------
    CatalogueError
        When a catalogue file is malformed or an entry lacks a required field.
    """
    found: dict[str, Dataset] = {}
    for path, name, entry in _entries("catalogue.json"):
        missing = [key for key in _REQUIRED if key not in entry]
        if missing:
            raise CatalogueError(f"{path}: l'entrée {name!r} n'a pas {missing}")
        entry = dict(entry)
        entry["mirror"] = tuple(entry.get("mirror", ()))
        for key in ("departements", "rows"):
            if entry.get(key) is not None:
                entry[key] = tuple(entry[key])
        found[name] = Dataset(name=name, **entry)
    return dict(sorted(found.items(), key=lambda kv: (kv[1].kind, -kv[1].vintage, kv[1].priority)))


@cache
def services() -> dict[str, dict[str, Any]]:
    """Return the online services of the catalogue (``data/*/services.json``), by name.

    A service is not a file: it answers requests (the address geocoder). Its entry
    records its URLs, its documented limits and, under ``sources``, where each figure
    was read.

    Returns
    -------
    dict of str to dict
        Entry of each service.

    Raises
    ------
    CatalogueError
        When a services file is not valid JSON or names a service twice.
    """
    return {name: entry for _, name, entry in _entries("services.json")}


def _entries(filename: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """Yield (file, name, entry) for every entry of the ``*/<filename>`` catalogue files.

    Raises
    ------
    CatalogueError
        When a file is not valid JSON or an entry name is defined twice.
    """
    seen: set[str] = set()
    for folder in _catalogue_dirs():
        for path in sorted(folder.glob(f"*/{filename}")):
            try:
                entries = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise CatalogueError(f"{path}: JSON invalide ({error})") from error
            for name, entry in entries.items():
                if name in seen:
                    raise CatalogueError(f"{path}: l'entrée {name!r} est déjà définie")
                seen.add(name)
                yield path, name, entry


def get(name: str) -> Dataset:
    """Return the dataset called ``name``.

    Raises
    ------
    CatalogueError
        When no dataset has that name; the message lists the known names.
    """
    try:
        return datasets()[name]
    except KeyError:
        raise CatalogueError(
            f"jeu de données inconnu : {name!r}. Jeux connus : {', '.join(datasets())}"
        ) from None


def candidates(kind: str, vintage: int | None = None) -> list[Dataset]:
    """Return the datasets of a kind (and vintage), most preferred first."""
    return [
        ds
        for ds in datasets().values()
        if ds.kind == kind and (vintage is None or ds.vintage == vintage)
    ]


def choose(kind: str, vintage: int | None = None, data_dir: Path | None = None) -> Dataset:
    """Pick the dataset of a kind to read: one already on disk, else one to download.

    Parameters
    ----------
    kind : str
        Kind of dataset (``qpv``, ``densite``…).
    vintage : int, optional
        Required vintage; any vintage (newest first) when omitted.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.

    Raises
    ------
    DataNotFoundError
        When no dataset of that kind and vintage is on disk and none can be downloaded.
    """
    options = candidates(kind, vintage)
    for dataset in options:
        if dataset.local_path(data_dir) is not None:
            return dataset
    for dataset in options:
        if dataset.downloadable and not settings.offline:
            return dataset
    wanted = f"{kind}" + (f" millésime {vintage}" if vintage is not None else "")
    if not options:
        raise DataNotFoundError(f"aucun jeu de données {wanted} dans le catalogue")
    folder = mirror_folder(data_dir)
    expected = "; ".join(f"{ds.name}: {', '.join(ds.mirror)}" for ds in options)
    raise DataNotFoundError(
        f"données {wanted} introuvables hors ligne. Miroir : {folder or 'non défini'} "
        f"({settings.DATA_DIR_ENV}){_absent_folder(folder)}. Fichiers attendus dans le "
        f"miroir : {expected}"
    )


def _absent_folder(folder: Path | None) -> str:
    """`` ; … n'existe pas`` when the mirror folder named does not exist (a mistyped
    path), to add to the message of data not found; empty otherwise."""
    if folder is None or folder.is_dir():
        return ""
    return f" ; {folder} n'existe pas : vérifiez le chemin donné par {settings.DATA_DIR_ENV}"


def checksum_status(dataset: Dataset, path: Path) -> str | None:
    """Compare a file on disk with the checksum of the catalogue.

    Parameters
    ----------
    dataset : Dataset
        Catalogue entry (``sha256`` may be None: nothing to compare).
    path : pathlib.Path
        The mirror or cached file.

    Returns
    -------
    str or None
        None when the file matches (or the catalogue has no checksum); else its actual
        SHA-256, for a file accepted as modified (see
        :func:`territoires.settings.accept_modified`).

    Raises
    ------
    ChecksumError
        When the file differs and modified files are not accepted; the message names
        the file, both checksums and the two ways out.
    """
    if not dataset.sha256:
        return None
    actual = _http.sha256sum(path)
    if actual == dataset.sha256:
        return None
    if settings.accept_modified:
        return actual
    raise ChecksumError(
        f"{path} : somme de contrôle sha256 {actual} différente de celle du catalogue "
        f"({dataset.sha256}) pour {dataset.name} : le fichier a été modifié ou est "
        "incomplet. Remplacez-le par le fichier officiel "
        f"({dataset.url or dataset.page or 'miroir'}), ou, pour utiliser délibérément un "
        f"fichier modifié, relancez avec --accepter-modifie ({settings.ACCEPT_MODIFIED_ENV}"
        "=1) : la différence sera notée dans la provenance des résultats"
    )


def quarantine(dataset: Dataset, reason: str) -> Path:
    """Move an unusable cached file aside so that it is never read again, and say so.

    Parameters
    ----------
    dataset : Dataset
        The dataset whose ``cache_path`` is unusable (corrupt, truncated, altered).
    reason : str
        Why, in French; repeated in the warning.

    Returns
    -------
    pathlib.Path
        Where the file now lies: ``<cache>/quarantaine/<kind>/<time>-<filename>``.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = settings.cache_dir / "quarantaine" / dataset.kind / f"{stamp}-{dataset.filename}"
    target.parent.mkdir(parents=True, exist_ok=True)
    dataset.cache_path.replace(target)
    warnings.warn(
        f"{dataset.name} : le fichier en cache {dataset.cache_path} est inutilisable "
        f"({reason}) ; il a été mis en quarantaine dans {target} et ne sera plus lu",
        stacklevel=2,
    )
    return target


def fetch(
    dataset: Dataset | str,
    data_dir: Path | None = None,
    progress: bool = False,
    validate: Callable[[Path], None] | None = None,
) -> Path:
    """Return the local file of a dataset, downloading it into the cache if needed.

    The mirror is read first; then the cache; then the publisher's URL (resolved through
    the data.gouv.fr API when the catalogue names a data.gouv.fr resource). Files on disk
    must match the catalogue's checksum (see :func:`checksum_status`); a cached file
    that does not is quarantined (see :func:`quarantine`) and downloaded again.
    Downloads are atomic, checked against the catalogue's checksum and by `validate`
    before they reach the cache.

    Parameters
    ----------
    dataset : Dataset or str
        The dataset or its catalogue name.
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    progress : bool, default False
        Show a progress bar while downloading.
    validate : callable, optional
        Called with a downloaded file before it is cached; raises to refuse it
        (:func:`territoires.loaders.fetch` passes one that opens the file).

    Returns
    -------
    pathlib.Path
        Path of the file on disk.

    Raises
    ------
    DataNotFoundError
        When the file is not on disk and the dataset cannot be downloaded (no URL, or
        network access forbidden by ``TERRITOIRES_OFFLINE``).
    ChecksumError
        When the mirror file differs from the catalogue's checksum (and modified files
        are not accepted), or when a download does.
    DownloadError
        When the download fails or is refused.
    """
    ds = get(dataset) if isinstance(dataset, str) else dataset
    mirrored = ds.mirror_path(data_dir)
    if mirrored is not None:
        checksum_status(ds, mirrored)
        return mirrored
    if ds.cache_path.is_file():
        try:
            checksum_status(ds, ds.cache_path)
            return ds.cache_path
        except ChecksumError:
            quarantine(ds, "somme de contrôle différente de celle du catalogue")
    folder = mirror_folder(data_dir)
    missing = _absent_folder(folder)
    if not ds.downloadable or settings.offline:
        reason = (
            "n'est publié qu'hors ligne"
            if not ds.downloadable
            else f"n'est ni dans le miroir ni dans le cache ({ds.cache_path}), et le "
            f"téléchargement est interdit ({settings.OFFLINE_ENV}=1 ; source : {ds.url or ds.page})"
        )
        raise DataNotFoundError(
            f"{ds.name} {reason} : placez {' ou '.join(ds.mirror)} dans le "
            f"dossier miroir ({settings.DATA_DIR_ENV}={folder or ''}){missing}"
        )
    try:
        url = ds.url or _http.resolve_datagouv(ds.datagouv["dataset"], ds.datagouv["resource"])
        ds.cache_path.parent.mkdir(parents=True, exist_ok=True)
        return _http.download(
            url, ds.cache_path, sha256=ds.sha256, progress=progress, validate=validate
        )
    except (DownloadError, ChecksumError) as error:
        raise type(error)(f"{ds.name} : {error}{missing}") from error
