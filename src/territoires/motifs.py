"""French motifs: the sentence that gives, for each place, the verdict and its figures.

A motif reads ``<verdict label> : <QPV sentence>[ ; <commune note>] ; <urban reason>.``
It is composed with arrow string kernels, a group of rows at a time, never in a Python
loop over rows. The spatial engine (:mod:`territoires.engine`) tells, for each row,
which kind of QPV sentence applies (:data:`INVALID`…:data:`FAR`) and the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from . import french, qpv_reach
from ._arrow import join, text
from .rules import VERDICTS, Rules

#: Kinds of QPV sentence in a motif, see :func:`compose`: for points (inside, near, far
#: from the QPV contours; ``NEAR_NPNRU``: near a QPV of the user's NPNRU list, at that
#: list's own distance; or unsure within their precision), for points answered by the
#: list of QPV by commune, for places known only by their commune, and (``EDGE``) for
#: points far from the QPV loaded but near a département the QPV layer does not cover.
(
    INVALID,
    UNCHECKED,
    INSIDE,
    NO_QPV,
    NEAR,
    NEAR_NPNRU,
    FAR,
    UNSURE_IN,
    UNSURE_OUT,
    UNSURE_THRESHOLD,
    LIST_CLEAR,
    LIST_CHECK,
    COMMUNE_CLEAR,
    COMMUNE_HOSTS,
    COMMUNE_NEAR,
    COMMUNE_UNCHECKED,
    EDGE,
) = range(17)
#: Sentences of places whose QPV answer depends on their exact position (``incertain``).
UNCERTAIN = (UNSURE_IN, UNSURE_OUT, UNSURE_THRESHOLD, COMMUNE_HOSTS, COMMUNE_NEAR)


@dataclass(frozen=True)
class Texts:
    """Reference text the motifs quote, prepared once per reference.

    Attributes
    ----------
    qpv_code, qpv_nom : pyarrow.Array
        Code and name of each QPV, by reference row.
    commune_dep : pyarrow.Array
        Département of each commune, by reference row.
    commune_reasons : pyarrow.Array
        `` ; <reason>.`` of each commune's urban classification, by reference row,
        followed by one empty string (taken by rows without a commune).
    """

    qpv_code: pa.Array
    qpv_nom: pa.Array
    commune_dep: pa.Array
    commune_reasons: pa.Array


def commune_reasons(reasons: pd.Series) -> pa.Array:
    """`` ; <reason>.`` per commune, plus a trailing empty string (see :class:`Texts`)."""
    return pa.concat_arrays(
        [
            join(" ; ", text(reasons), ".").cast(pa.large_string()),
            pa.array([""], type=pa.large_string()),
        ]
    )


def outside_france(
    lon: np.ndarray,
    lat: np.ndarray,
    border: np.ndarray,
    lines: np.ndarray | None,
    tolerance_m: float,
) -> pa.Array:
    """Problem of a valid point that lies in no French commune.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        The points.
    border : numpy.ndarray of float
        Metres to the land border for a point refused beside it (abroad), NaN for a
        point merely too far from every commune (at sea, or abroad).
    lines : numpy.ndarray of int or None
        Line of each row in the input file, for the ``ligne N : `` prefix.
    tolerance_m : float
        The commune tolerance, named in the message.
    """
    abroad = ~np.isnan(border)
    tolerance = french.distance(tolerance_m)
    where = pa.array(
        np.where(
            abroad,
            "point hors de France, en territoire étranger (ou dans ses eaux) à ",
            "point hors du territoire communal français (mer, pays voisin) à plus de "
            f"{tolerance} de toute commune",
        )
    )
    message = join(
        where,
        pc.if_else(
            pa.array(abroad),
            join(
                french.distances(np.where(abroad, border, 0.0)),
                f" d'une frontière terrestre : la tolérance de {tolerance} autour des "
                "contours communaux ne vaut qu'en mer, le long des côtes",
            ),
            pa.array([""] * len(lon)),
        ),
        " : lon=",
        pc.cast(pa.array(np.round(lon, 5)), pa.string()),
        ", lat=",
        pc.cast(pa.array(np.round(lat, 5)), pa.string()),
    )
    if lines is None:
        return message
    return join("ligne ", pc.cast(pa.array(lines), pa.string()), " : ", message)


def unknown_commune(codes: pa.Array) -> pa.Array:
    """Problem of a row located by a commune code that no reference commune bears."""
    return join(
        "commune ",
        codes,
        " absente des contours communaux de référence : verdict impossible au niveau communal",
    )


#: A sentence as the parts it is joined from: text shared by every row, or arrow strings
#: with one value per row.
_Parts = list[Any]


def _offshore_note(gap: np.ndarray) -> Any:
    """Note of the points attached to the nearest commune from the sea, ``""`` for others.

    Written for those few rows alone: a str when no row needs it, else arrow strings.
    """
    offshore = np.flatnonzero(gap > 0)
    if not len(offshore):
        return ""
    note = join(
        " ; point à ",
        french.distances(gap[offshore]),
        " des contours communaux simplifiés (en mer près de la côte, loin de toute "
        "frontière terrestre), rattaché à la commune la plus proche",
    )
    slot = np.full(len(gap), -1)
    slot[offshore] = np.arange(len(offshore))
    return pc.fill_null(note.take(pa.array(slot, mask=slot < 0)), "")


def compose(
    verdict: np.ndarray, sentence: np.ndarray, parts: dict[str, Any], rules: Rules, texts: Texts
) -> pa.Array:
    """Compose the French motif of each row, with arrow string kernels.

    A row's motif is ``<verdict label> : <sentence>[ ; <commune note>]<reason>``. Rows
    whose motif depends only on their commune and verdict (QPV not checked, or no QPV
    in the territory, point inside its commune) share one motif per distinct
    (sentence, verdict, commune), composed once; the other rows are composed a group
    (one kind of sentence) at a time. Every motif is written once, and a single
    ``take`` puts them in row order.

    Parameters
    ----------
    verdict : numpy.ndarray of int
        Position of each row's verdict in :data:`~territoires.rules.VERDICTS`.
    sentence : numpy.ndarray of int
        Kind of QPV sentence (:data:`INVALID`…:data:`FAR`).
    parts : dict
        Per-row ``distance``, ``gap``, ``threshold`` (proximity distance of the nearest
        QPV), ``npnru_distance`` (numpy), ``commune``, ``nearest``, ``npnru`` (row
        positions in the reference, -1 for none), ``qpv_code``, ``qpv_nom`` (arrow) and
        ``probleme`` (numpy object: the text of invalid rows); ``precision``,
        ``boundary`` (numpy, metres: precision of the point, distance to the boundary of
        the QPV it lies in), ``to_check`` (arrow: the QPV within reach of a place known
        by its commune or answered by the list of QPV by commune) and ``listed`` (numpy
        bool: answered by that list rather than by the QPV contours).
    rules : Rules
        The rules applied (QPV vintage, proximity distances and the text they come
        from, cited in every proximity sentence).
    texts : Texts
        The reference's quoted text.

    Returns
    -------
    pyarrow.Array
        One ``large_string`` motif per row.
    """
    geography = f"géographie prioritaire {rules.qpv_vintage}"
    labels = pa.array(list(VERDICTS.values()))
    npnru_rule = (
        f", et à plus de {french.threshold(rules.npnru_distance_m)} de tout QPV de la liste NPNRU"
        if rules.npnru
        else ""
    )
    within_reach = french.within(qpv_reach.distance(rules))
    listed = f"liste nationale ANCT des QPV {rules.qpv_vintage} par commune, sans contours"
    contours = f"contours des QPV {rules.qpv_vintage}"
    by_commune = "lieu localisé par sa commune seulement : "

    def metres(name: str, rows: np.ndarray) -> pa.Array:
        return french.distances(parts[name][rows])

    def worded(thresholds: np.ndarray, word: Any) -> pa.Array:
        """``word(threshold)`` per row, worded once per distinct threshold."""
        values, index = np.unique(thresholds, return_inverse=True)
        return pa.array([word(value) for value in values]).take(pa.array(index))

    def inside(taken: pa.Array) -> _Parts:
        return [
            "dans le QPV ",
            parts["qpv_code"].take(taken),
            " « ",
            parts["qpv_nom"].take(taken),
            " »",
        ]

    def source(rows: np.ndarray) -> pa.Array:
        return pc.if_else(
            pa.array(parts["listed"][rows]),
            f" ({listed} ; {rules.basis()})",
            f" ({contours} ; {rules.basis()})",
        )

    def precision(rows: np.ndarray) -> _Parts:
        return [", moins que la précision de la position (", metres("precision", rows), ")"]

    def qpv_at(
        rows: np.ndarray, distance: str, qpv: str, words: str, above: str | None = None
    ) -> _Parts:
        """« à D<words>CODE « NOM » » for the QPV rows ``parts[qpv]`` at ``parts[distance]``.

        D is the distance as the row's ``distance_qpv_m`` cell shows it: the value kept
        (0.1 m), then in whole metres, never the raw distance (280.52 m is kept 280.5 m,
        read 280 m in the cell and in the motif). A distance beyond the threshold
        ``parts[above]`` (compared raw, as the verdict) that reads as it reads « à plus
        de D », never « à 300 m …, au-delà de 300 m ».
        """
        taken = pa.array(parts[qpv][rows])
        metres = parts[distance][rows]
        kept = french.tenth_of_metre(metres)
        start: Any = "à "
        if above is not None:
            limit = parts[above][rows]
            start = pc.if_else(
                pa.array((metres > limit) & (french.whole_metres(kept) <= limit)),
                "à plus de ",
                "à ",
            )
        return [
            start,
            french.distances(kept),
            words,
            texts.qpv_code.take(taken),
            " « ",
            texts.qpv_nom.take(taken),
            " »",
        ]

    def nearest(rows: np.ndarray, above: str | None = None) -> _Parts:
        return qpv_at(rows, "distance", "nearest", " du QPV le plus proche ", above)

    def basis(rows: np.ndarray) -> pa.Array:
        """The text each row's distance comes from: NPNRU when its nearest QPV is listed."""
        listed = np.isin(parts["nearest"][rows], parts["npnru_rows"])
        return pc.if_else(pa.array(listed), rules.basis(npnru=True), rules.basis())

    def near_npnru(rows: np.ndarray) -> _Parts:
        sentence = join(
            *qpv_at(rows, "npnru_distance", "npnru", " du QPV "),
            f", en renouvellement urbain (NPNRU), {french.within(rules.npnru_distance_m)} : "
            f"proximité immédiate ({rules.basis(npnru=True)} ; {geography})",
        )
        other = parts["npnru"][rows] != parts["nearest"][rows]
        if not other.any():
            return [sentence]
        closer = join(sentence, " ; ", *nearest(rows))
        return [pc.if_else(pa.array(other), closer, sentence)]

    # Each builder gives the parts of its sentence (str or arrow strings, one per row),
    # joined once with the verdict's label and the commune's reason.
    builders: dict[int, Any] = {
        UNCHECKED: lambda rows, taken: [
            "QPV non vérifiable : département ",
            texts.commune_dep.take(pa.array(parts["commune"][rows])),
            f" absent de la couche QPV {rules.qpv_vintage} chargée (extrait régional)",
        ],
        INSIDE: lambda rows, taken: [*inside(taken), f" ({geography})"],
        NO_QPV: lambda rows, taken: [f"aucun QPV {rules.qpv_vintage} dans ce territoire"],
        NEAR: lambda rows, taken: [
            *nearest(rows),
            ", ",
            worded(parts["threshold"][rows], french.within),
            " : proximité immédiate (",
            basis(rows),
            f" ; {geography})",
        ],
        NEAR_NPNRU: lambda rows, taken: near_npnru(rows),
        FAR: lambda rows, taken: [
            *nearest(rows, above="threshold"),
            ", au-delà de ",
            worded(parts["threshold"][rows], french.distance),
            npnru_rule,
            " (",
            basis(rows),
            f" ; {geography})",
        ],
        UNSURE_IN: lambda rows, taken: [
            *inside(taken),
            " mais à ",
            metres("boundary", rows),
            " de sa limite",
            *precision(rows),
            f" : peut-être hors du QPV ({geography})",
        ],
        UNSURE_OUT: lambda rows, taken: [
            *nearest(rows),
            *precision(rows),
            f" : peut-être dans le QPV ({geography})",
        ],
        UNSURE_THRESHOLD: lambda rows, taken: [
            *nearest(rows),
            " : écart au seuil de proximité de ",
            metres("threshold", rows),
            *precision(rows),
            " (",
            basis(rows),
            f" ; {geography})",
        ],
        LIST_CLEAR: lambda rows, taken: [
            f"aucun QPV {rules.qpv_vintage} dans la commune ni dans les communes "
            f"{within_reach} du lieu : ni dans un QPV ni à proximité immédiate ({listed} ; "
            f"{rules.basis()})"
        ],
        LIST_CHECK: lambda rows, taken: [
            f"QPV non vérifiable sans leurs contours ; QPV {rules.qpv_vintage} de la commune "
            f"ou des communes {within_reach}, à vérifier à l'adresse : ",
            parts["to_check"].take(taken),
            f" ({listed})",
        ],
        COMMUNE_CLEAR: lambda rows, taken: [
            f"{by_commune}aucun QPV {rules.qpv_vintage} dans la commune ni "
            f"{within_reach} de ses limites : ni dans un QPV ni à proximité immédiate, où que soit "
            "le lieu dans la commune",
            source(rows),
        ],
        COMMUNE_HOSTS: lambda rows, taken: [
            f"{by_commune}la commune compte des QPV {rules.qpv_vintage} ; QPV dans la commune "
            f"ou {within_reach} de ses limites, à vérifier à l'adresse : ",
            parts["to_check"].take(taken),
            source(rows),
        ],
        COMMUNE_NEAR: lambda rows, taken: [
            f"{by_commune}aucun QPV {rules.qpv_vintage} dans la commune, mais "
            f"{within_reach} de ses limites : ",
            parts["to_check"].take(taken),
            " ; proximité immédiate à vérifier à l'adresse",
            source(rows),
        ],
        COMMUNE_UNCHECKED: lambda rows, taken: [
            f"{by_commune}QPV non vérifiable : département ",
            texts.commune_dep.take(pa.array(parts["commune"][rows])),
            f" absent de la couche QPV {rules.qpv_vintage} chargée, sans liste des QPV par commune",
        ],
        EDGE: lambda rows, taken: [
            "QPV non vérifiable : le département ",
            parts["edge"].take(taken),
            f" est {within_reach} du lieu mais absent de la couche QPV {rules.qpv_vintage} "
            f"chargée (extrait régional) ; aucun QPV des départements chargés {within_reach} "
            f"({geography})",
        ],
    }
    n = len(sentence)
    if not n:
        return pa.array([], type=pa.large_string())
    # Rows whose motif depends on their sentence, verdict and commune only share it.
    shared = np.isin(sentence, (UNCHECKED, NO_QPV)) & (parts["gap"] == 0)
    rows = np.flatnonzero(shared)
    communes = len(texts.commune_reasons)
    key = (sentence[rows] * len(VERDICTS) + verdict[rows]) * communes + parts["commune"][rows]
    # hashed, not sorted: each row's key, and one row (any: they share the motif) per key
    inverse, distinct = pd.factorize(key)
    first = np.empty(len(distinct), dtype=np.intp)
    first[inverse] = np.arange(len(inverse))
    built = np.concatenate([rows[first], np.flatnonzero(~shared)])
    pieces, order = [], []
    for kind in range(EDGE + 1):
        chosen = built[sentence[built] == kind]
        if not len(chosen):
            continue
        if kind == INVALID:
            sentence_parts: _Parts = [pa.array(parts["probleme"][chosen], type=pa.string())]
            note: Any = ""
        else:
            sentence_parts = builders[kind](chosen, pa.array(chosen))
            note = _offshore_note(parts["gap"][chosen])
        # The commune's reason, with its separators; invalid rows take the empty string
        # past the end.
        commune = parts["commune"][chosen] if kind != INVALID else np.full(len(chosen), -1)
        full = join(
            labels.take(pa.array(verdict[chosen])),
            " : ",
            *sentence_parts,
            note,
            texts.commune_reasons.take(pa.array(commune % communes)),
        )
        pieces.append(full.cast(pa.large_string()))
        order.append(chosen)
    slot = np.empty(n, dtype=np.int64)
    slot[np.concatenate(order)] = np.arange(len(built))
    slot[rows] = slot[rows[first]][inverse.ravel()]
    return pa.concat_arrays(pieces).take(pa.array(slot))
