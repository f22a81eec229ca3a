"""The eligibility service behind the HTTP API and the staff page, without HTTP.

:class:`Service` loads the reference data once (in a background thread, so the server
answers ``503`` while it loads), prepares rule sets on demand and answers single checks
through :class:`Batcher`: checks that arrive together are read and classified together
by one call of the library (:func:`territoires.places.read_places`, then
:func:`territoires.eligibility.classify_frame`, the core of :func:`territoires.classify`),
whose cost barely depends on the number of rows. Addresses go to
:func:`territoires.check`, files to :func:`territoires.classify`, results to the export
writers and maps. Classification, rules and wording all come from the library; nothing
is re-implemented here.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import catalogue, crs, eligibility, export, french, loaders, maps, places
from .._errors import InputError, TerritoiresError
from ..rules import DEFAULT_PRESET, PRESETS, VERDICTS, Rules, preset

#: Largest proximity distance a client may ask for, in metres.
MAX_DISTANCE_M: float = 10_000.0

#: Rule sets kept prepared besides the preloaded presets (another ``distance`` is
#: another rule set: each takes seconds to prepare and memory to keep).
MAX_EXTRA_RULES: int = 4

#: Provenance keys shown to clients (the server's file paths are not).
PUBLIC_SOURCE_KEYS = (
    "jeu",
    "titre",
    "millesime",
    "editeur",
    "licence",
    "couverture",
    "departements",
    "sha256",
    "lignes",
)


class NotReadyError(TerritoiresError):
    """The reference data is still loading, or could not be loaded."""


class RequestError(TerritoiresError, ValueError):
    """A request the service cannot answer as asked; ``status`` is the HTTP code."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def rules_for(name: str | None, distance: float | None) -> Rules:
    """Rule set named ``name`` (default preset), with another proximity distance.

    Raises
    ------
    RequestError
        422 for an unknown preset or a distance outside ``[0, MAX_DISTANCE_M]``.
    """
    name = name or DEFAULT_PRESET
    if name not in PRESETS:
        raise RequestError(
            422,
            "paramètre invalide",
            f"regles : jeu de règles inconnu « {name} » ; connus : {', '.join(PRESETS)}",
        )
    if distance is None:
        return PRESETS[name]
    if not math.isfinite(distance) or not 0 <= distance <= MAX_DISTANCE_M:
        raise RequestError(
            422,
            "paramètre invalide",
            "distance : attendu un nombre de mètres entre 0 et "
            + french.number(MAX_DISTANCE_M, None),
        )
    try:
        return preset(name, near_distance_m=float(distance))
    except ValueError as error:  # e.g. below the NPNRU distance of a preset's NPNRU list
        raise RequestError(422, "paramètre invalide", f"distance : {error}") from error


def public_sources(sources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provenance of the reference files, without where they lie on the server."""
    return [{key: source.get(key) for key in PUBLIC_SOURCE_KEYS} for source in sources]


def plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python ones, NaN and NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def result_records(result: pd.DataFrame) -> list[dict[str, Any]]:
    """Classified rows as JSON-ready dicts (no geometry), with the verdict's French label."""
    table = pd.DataFrame(result.drop(columns="geometry", errors="ignore"))
    records = table.astype(object).where(table.notna(), None).to_dict("records")
    for record in records:
        for key, value in record.items():
            record[key] = plain(value)
        record["label"] = VERDICTS.get(record["verdict"], record["verdict"])
    return records


def invalid_detail(motif: str) -> str:
    """The reason of an ``invalide`` verdict, without its label and row number."""
    reason = motif.split(" : ", 1)[-1]
    if reason.startswith("ligne ") and " : " in reason:
        reason = reason.split(" : ", 1)[1]
    return reason


@dataclass
class _Pending:
    lon: float
    lat: float
    future: asyncio.Future[dict[str, Any]]


@dataclass
class Batcher:
    """Groups the single checks of one rule set that arrive together.

    The first check waits ``window`` seconds for others, then the whole group is
    classified by one call of ``classify`` in ``executor`` (the service passes
    :func:`territoires.places.read_places` then
    :func:`territoires.eligibility.classify_frame`: the body of ``classify`` without its
    thread pool, which one small group does not need); checks arriving while a
    group is being classified form the next group. Identical points are classified
    once (the library reports a repeated row as a duplicate).

    Parameters
    ----------
    classify : callable
        Takes a DataFrame with ``lon``/``lat`` columns and returns the classified frame.
    executor : concurrent.futures.ThreadPoolExecutor
        Where classification runs, off the event loop.
    window : float
        Seconds the first check of a group waits for others.
    max_rows : int
        Largest group.
    """

    classify: Callable[[pd.DataFrame], gpd.GeoDataFrame]
    executor: ThreadPoolExecutor
    window: float = 0.002
    max_rows: int = 512
    _pending: list[_Pending] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def check(self, lon: float, lat: float) -> dict[str, Any]:
        """Classify one point; returns its result record."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(lon, lat, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await asyncio.sleep(self.window)
                group = self._pending[: self.max_rows]
                del self._pending[: self.max_rows]
                try:
                    records = await loop.run_in_executor(self.executor, self._run, group)
                except Exception as error:  # handed to every waiting request
                    for item in group:
                        if not item.future.done():
                            item.future.set_exception(error)
                    continue
                for item, record in zip(group, records, strict=True):
                    if not item.future.done():
                        item.future.set_result(record)
        finally:
            self._task = None

    def _run(self, group: list[_Pending]) -> list[dict[str, Any]]:
        points = pd.DataFrame({"lon": [p.lon for p in group], "lat": [p.lat for p in group]})
        unique = points.drop_duplicates(ignore_index=True)
        # The input columns come back renamed (lon_entree…): the answer's lon/lat say it.
        echoed = [f"{column}{eligibility.INPUT_SUFFIX}" for column in unique.columns]
        result = self.classify(unique).drop(columns=echoed, errors="ignore")
        records = dict(
            zip(
                zip(unique["lon"], unique["lat"], strict=True),
                result_records(result),
                strict=True,
            )
        )
        return [dict(records[(p.lon, p.lat)]) for p in group]


class Service:
    """Reference data loaded once, prepared rule sets and batched checks.

    Parameters
    ----------
    data_dir : pathlib.Path, optional
        Mirror folder; defaults to :data:`territoires.settings.data_dir`.
    preload : tuple of str
        Presets prepared at start-up (others are prepared on first use).
    threads : int
        Threads classifying checks and files.
    window : float
        Seconds a check waits for others to be classified with it (see :class:`Batcher`).
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        preload: tuple[str, ...] = (DEFAULT_PRESET,),
        threads: int = 2,
        window: float = 0.002,
    ) -> None:
        self.data_dir = data_dir
        self.preload = preload
        self.window = window
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="territoires")
        self.lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="territoires-lieux")
        self.state = "chargement"
        self.error: str | None = None
        self._lock = threading.Lock()
        self._references: OrderedDict[Rules, eligibility.Reference] = OrderedDict()
        self._qpv: dict[int, gpd.GeoDataFrame] = {}
        self._outlines: gpd.GeoDataFrame | None = None
        self._batchers: dict[Rules, Batcher] = {}

    # --- loading -------------------------------------------------------------------

    def load(self) -> None:
        """Load the reference data and prepare the preloaded presets (blocking).

        A failure is not raised: it is recorded in :attr:`error`, reported by ``/sante``
        and by every request (503).
        """
        try:
            for name in self.preload:
                self.reference(PRESETS[name])
                self.qpv(PRESETS[name].qpv_vintage)
            self._outlines = loaders.load_admin("departements", data_dir=self.data_dir)
        except Exception as error:
            self.error = str(error) or type(error).__name__
            self.state = "erreur"
            return
        self.state = "pret"

    def start_loading(self) -> threading.Thread:
        """Load in a background thread; requests get 503 until it is done."""
        thread = threading.Thread(target=self.load, name="territoires-chargement", daemon=True)
        thread.start()
        return thread

    def ensure_ready(self) -> None:
        """Raise :class:`NotReadyError` unless the reference data is loaded."""
        if self.state == "chargement":
            raise NotReadyError("chargement des données de référence en cours, réessayez")
        if self.state == "erreur":
            raise NotReadyError(f"données de référence indisponibles : {self.error}")

    def reference(self, rules: Rules) -> eligibility.Reference:
        """Prepared reference for ``rules``, built once then kept.

        The preloaded presets are always kept, and at most :data:`MAX_EXTRA_RULES` other
        rule sets (the least recently used is dropped first).
        """
        with self._lock:
            if rules in self._references:
                self._references.move_to_end(rules)
                return self._references[rules]
            self._references[rules] = eligibility.reference(rules, self.data_dir)
            preloaded = {PRESETS[name] for name in self.preload}
            others = [kept for kept in self._references if kept not in preloaded]
            for old in others[: max(0, len(others) - MAX_EXTRA_RULES)]:
                del self._references[old]
                self._batchers.pop(old, None)
            return self._references[rules]

    def qpv(self, vintage: int) -> gpd.GeoDataFrame:
        """QPV polygons of ``vintage`` (for maps), loaded once."""
        with self._lock:
            if vintage not in self._qpv:
                self._qpv[vintage] = loaders.load_qpv(vintage, data_dir=self.data_dir)
            return self._qpv[vintage]

    @property
    def outlines(self) -> gpd.GeoDataFrame | None:
        """Département outlines drawn on the maps of classified files."""
        return self._outlines

    # --- answers ---------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Health: state, presets prepared and reference vintages loaded."""
        sources: dict[str, dict[str, Any]] = {}
        for ref in list(self._references.values()):
            for source in public_sources(ref.sources):
                sources[source["jeu"]] = source
        return {
            "etat": self.state,
            "erreur": self.error,
            "regles_preparees": sorted({rules.name for rules in self._references}),
            "donnees": [
                {key: source[key] for key in ("jeu", "millesime", "lignes")}
                for source in sources.values()
            ],
        }

    def catalogue(self) -> list[dict[str, Any]]:
        """Every dataset of the catalogue: vintage, publisher, licence, source."""
        return [
            {
                "jeu": ds.name,
                "type": ds.kind,
                "millesime": ds.vintage,
                "titre": ds.title,
                "editeur": ds.publisher,
                "licence": ds.licence,
                "couverture": ds.coverage,
                "departements": list(ds.departements) if ds.departements else None,
                "url": ds.url,
                "page": ds.page,
                "sha256": ds.sha256,
            }
            for ds in catalogue.datasets().values()
        ]

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking function in the service's threads."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def prepared(self, rules: Rules) -> eligibility.Reference:
        """Reference for ``rules``, prepared in a thread when not yet built."""
        self.ensure_ready()
        if rules in self._references:
            return self._references[rules]
        try:
            return await self.run(self.reference, rules)
        except TerritoiresError as error:
            raise NotReadyError(
                f"règles « {rules.name} » : données de référence indisponibles ({error})"
            ) from error

    async def check_point(self, lon: float, lat: float, rules: Rules) -> dict[str, Any]:
        """Classify one WGS84 point; results of invalid points raise a 400.

        Raises
        ------
        RequestError
            400 when the coordinates are not finite, outside WGS84 bounds, or the
            library finds the point unusable (outside France, at sea).
        """
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise RequestError(
                400, "coordonnées invalides", "lon et lat doivent être des nombres finis"
            )
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise RequestError(
                400,
                "coordonnées invalides",
                f"lon={lon:g}, lat={lat:g} : attendu -180 ≤ lon ≤ 180 et -90 ≤ lat ≤ 90 "
                "(degrés WGS84, longitude d'abord)",
            )
        ref = await self.prepared(rules)
        batcher = self._batchers.get(rules)
        if batcher is None:
            batcher = self._batchers[rules] = Batcher(
                classify=lambda frame: eligibility.classify_frame(
                    places.read_places(frame, geometry=False), ref
                ),
                executor=self.executor,
                window=self.window,
            )
        record = await batcher.check(lon, lat)
        if record["verdict"] == "invalide":
            raise RequestError(400, "coordonnées invalides", invalid_detail(record["motif"]))
        return self.with_provenance(record, ref)

    @staticmethod
    def with_provenance(record: dict[str, Any], ref: eligibility.Reference) -> dict[str, Any]:
        """Add the rules and the reference sources (with vintages) to a result."""
        return {**record, "regles": ref.rules.describe(), "sources": public_sources(ref.sources)}

    def place_geometries(self, record: dict[str, Any], rules: Rules) -> dict[str, Any]:
        """GeoJSON of the QPV a result names (containing or nearest) and its proximity band.

        The band is each QPV's own proximity distance (:meth:`Rules.thresholds`: the
        NPNRU distance for the QPV of an NPNRU list).

        Returns
        -------
        dict
            ``lieu`` (point), ``qpv`` and ``bande`` (FeatureCollections, possibly empty).
        """
        codes = set()
        for key in ("qpv_code", "nearest_qpv_code"):
            if record.get(key):
                codes.update(str(record[key]).split(";"))
        qpv = self.qpv(rules.qpv_vintage)
        chosen = qpv[qpv["code_qpv"].isin(codes)]
        band = gpd.GeoDataFrame(geometry=[], crs=crs.GEOGRAPHIC)
        distances = rules.thresholds(chosen["code_qpv"].to_numpy())
        if len(chosen) and distances.max() > 0 and record.get("territoire"):
            metric = crs.to_metric(chosen, record["territoire"])
            buffered = metric.geometry.buffer(distances).union_all().simplify(5)
            band = gpd.GeoDataFrame(geometry=[buffered], crs=metric.crs).to_crs(crs.GEOGRAPHIC)
            band = band.set_geometry(shapely.set_precision(band.geometry.to_numpy(), 1e-5))
        shown = gpd.GeoDataFrame(
            {
                "code": chosen["code_qpv"].astype(str).to_numpy(),
                "nom": chosen["nom_qpv"].astype(str).to_numpy(),
            },
            geometry=chosen.geometry.simplify(0.00005).to_numpy(),
            crs=crs.GEOGRAPHIC,
        )
        return {
            "lieu": {"type": "Point", "coordinates": [record["lon"], record["lat"]]},
            "qpv": shown.to_geo_dict(drop_id=True),
            "bande": band.to_geo_dict(drop_id=True),
            "distance_m": float(distances.max()) if len(chosen) else rules.near_distance_m,
        }

    # --- files -----------------------------------------------------------------------

    def classify_file(
        self,
        path: Path,
        rules: Rules,
        lon: str | None = None,
        lat: str | None = None,
        input_crs: str | None = None,
    ) -> gpd.GeoDataFrame:
        """Classify an uploaded file exactly as ``territoires classify`` does (blocking)."""
        return eligibility.classify(
            path, ref=self.reference(rules), lon=lon, lat=lat, input_crs=input_crs, workers=1
        )

    def write(self, result: gpd.GeoDataFrame, path: Path) -> Path:
        """Write a classified frame: a result file by extension, or the map for ``.html``."""
        if path.suffix == ".html":
            vintage = result.attrs["regles"]["millesime_qpv"]
            fmap = maps.eligibility_map(
                result, self.qpv(vintage), outlines=self.outlines, self_contained=True
            )
            return maps.save(fmap, path, self_contained=True)
        return export.write_results(result, path)

    async def check_text(self, text: str, rules: Rules, kind: str) -> dict[str, Any]:
        """Classify a place given by its address or its commune code, with the library.

        An address goes to ``territoires.check`` (one geocoding request, then the same
        classification as a point); a commune code to ``territoires.classify`` as a row
        located by its commune only. Both run in threads of their own, so that a slow
        geocoder never holds up the checks of points.

        Parameters
        ----------
        text : str
            The address, or the INSEE code.
        rules : Rules
        kind : {"adresse", "code_insee"}

        Raises
        ------
        RequestError
            422 when the address or the commune cannot be located (the library's
            reason is the detail).
        """
        if not text.strip():
            raise RequestError(422, "paramètre invalide", f"{kind} : texte vide")
        ref = await self.prepared(rules)
        loop = asyncio.get_running_loop()
        if kind == "adresse":
            call = partial(eligibility.check, text, None, rules, ref=ref)
            title = "adresse non localisée"
        else:
            table = pd.DataFrame({"code_insee": [text.strip()]})
            call = partial(eligibility.classify, table, ref=ref, workers=1)
            title = "commune non localisée"
        try:
            result = await loop.run_in_executor(self.lookups, call)
        except InputError as error:
            raise RequestError(422, title, str(error)) from error
        if isinstance(result, pd.Series):  # the row answered by check
            result = result.to_frame().T
        echoed = [c for c in result.columns if str(c).endswith(eligibility.INPUT_SUFFIX)]
        record = result_records(result.drop(columns=echoed))[0]
        if record["verdict"] == "invalide":
            raise RequestError(422, title, invalid_detail(record["motif"]))
        return self.with_provenance(record, ref)
