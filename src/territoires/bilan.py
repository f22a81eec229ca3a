"""The programme's targets: how a selection of places fills the envelopes of a call.

A call funds places in *envelopes*: the 2019 « Fabriques de Territoire » call funds 150
Fabriques « hors des grands centres urbains » and 150 in a QPV, of which 30 Fabriques
numériques « en quartiers prioritaires ou à proximité immédiate ». Envelopes are data
(``data/enveloppes/*.json``, or any file in the same format): each names the output
columns of :func:`territoires.classify` that qualify a place (any of them true) and
whether it is reserved to, or closed to, places flagged ``numerique``.

:func:`assess` takes classified places and reports, under the rules they were
classified with: how many places count toward each envelope against its target, the
places that count toward several envelopes, toward none, those whose answer is still
unknown, the invalid rows, and the share of each envelope by région. :func:`bilan`
reads and classifies the places first. Every input row comes out, in order, with the
envelopes it counts toward and its status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import catalogue, eligibility, french, loaders
from ._errors import InputError
from .rules import Rules

#: Envelope file used when none is named (``data/enveloppes/fabriques-2019.json``).
DEFAULT_ENVELOPES = "fabriques-2019"

#: Column of the places that flags a Fabrique numérique.
NUMERIQUE_COLUMN = "numerique"

#: Output columns of :func:`territoires.classify` an envelope may test, with their wording.
CRITERIA: dict[str, str] = {
    "in_qpv": "dans un QPV",
    "near_qpv": "à proximité immédiate d'un QPV",
    "hors_grands_centres_urbains": "hors grands centres urbains",
}

#: Values of the ``numerique`` column read as yes / no, in lower case (``1.0`` as a
#: spreadsheet gives a number).
YES = frozenset({"oui", "o", "vrai", "true", "1", "1.0", "x", "yes", "y"})
NO = frozenset({"non", "n", "faux", "false", "0", "0.0", "no", ""})

#: Status of each place in the bilan, with its French label.
STATUTS: dict[str, str] = {
    "plusieurs": "compte dans plusieurs enveloppes",
    "une": "compte dans une enveloppe",
    "a_verifier": "aucune enveloppe sûre, un critère reste inconnu",
    "aucune": "ne compte dans aucune enveloppe",
    "invalide": "ligne invalide",
}

#: Columns added to the places by :func:`assess`.
PLACE_COLUMNS = ["numerique_lu", "enveloppes", "bilan", "bilan_motif"]


@dataclass(frozen=True)
class Envelope:
    """One target of a call.

    Attributes
    ----------
    code : str
        Identifier, used as a column name in reports (``qpv_numerique``).
    title : str
        French label.
    target : int
        Number of places the call funds in this envelope.
    criteria : tuple of str
        Columns of :data:`CRITERIA`; a place qualifies when any of them is true.
    numerique : bool or None
        ``True``: only places flagged numérique; ``False``: only the others; ``None``:
        every place.
    """

    code: str
    title: str
    target: int
    criteria: tuple[str, ...]
    numerique: bool | None = None


@dataclass(frozen=True)
class Envelopes:
    """The envelopes of one call, as read from an envelope file.

    Attributes
    ----------
    name, title, reference : str
        Identity of the call and the text the targets come from.
    envelopes : tuple of Envelope
        In the file's order.
    source : str
        File the envelopes were read from.
    """

    name: str
    title: str
    reference: str
    envelopes: tuple[Envelope, ...]
    source: str

    def describe(self) -> dict[str, Any]:
        """Plain description, for ``attrs`` and reports."""
        return {
            "nom": self.name,
            "titre": self.title,
            "reference": self.reference,
            "fichier": self.source,
            "enveloppes": [
                {
                    "code": e.code,
                    "titre": e.title,
                    "cible": e.target,
                    "criteres": list(e.criteria),
                    "numerique": e.numerique,
                }
                for e in self.envelopes
            ],
        }


def load_envelopes(source: str | Path | None = None) -> Envelopes:
    """Read the envelopes of a call.

    Parameters
    ----------
    source : str or pathlib.Path, optional
        The name of a file shipped with territoires (``"fabriques-2019"``, the default)
        or the path of a JSON file in the same format: ``nom``, ``titre``,
        ``reference`` and ``enveloppes``, a list of objects with ``code``, ``titre``,
        ``cible`` (a positive whole number), ``criteres`` (names among
        :data:`CRITERIA`) and ``numerique`` (``true``, ``false`` or ``null``).

    Returns
    -------
    Envelopes

    Raises
    ------
    InputError
        When the file is missing, is not JSON or lacks a field; the message names the
        file, the envelope and the field, and what was expected.
    """
    name = DEFAULT_ENVELOPES if source is None else str(source)
    shipped = catalogue.packaged_data("enveloppes", f"{name}.json")
    path = shipped if shipped.is_file() else Path(name)
    if not path.is_file():
        known = sorted(p.stem for p in catalogue.packaged_data("enveloppes").glob("*.json"))
        raise InputError(
            f"fichier d'enveloppes introuvable : {name} ; donnez un chemin de fichier JSON ou "
            f"un des noms fournis : {', '.join(known)}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} : JSON invalide ({error})") from error
    if not isinstance(data, dict):
        raise InputError(f"{path} : attendu un objet JSON avec nom, titre, reference, enveloppes")
    for key in ("nom", "titre", "reference"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise InputError(f"{path} : champ « {key} » absent ou vide, attendu un texte")
    entries = data.get("enveloppes")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path} : champ « enveloppes » absent ou vide, attendu une liste")
    envelopes = tuple(_envelope(entry, position, path) for position, entry in enumerate(entries, 1))
    codes = [envelope.code for envelope in envelopes]
    doubles = sorted({code for code in codes if codes.count(code) > 1})
    if doubles:
        raise InputError(f"{path} : code d'enveloppe en double : {', '.join(doubles)}")
    return Envelopes(
        name=data["nom"],
        title=data["titre"],
        reference=data["reference"],
        envelopes=envelopes,
        source=str(path),
    )


def _envelope(entry: Any, position: int, path: Path) -> Envelope:
    """One envelope of a file, checked field by field."""
    where = f"{path}, enveloppe {position}"
    if not isinstance(entry, dict):
        raise InputError(f"{where} : attendu un objet JSON")
    code, title = entry.get("code"), entry.get("titre")
    if not isinstance(code, str) or not code.isidentifier():
        raise InputError(f"{where} : « code » {code!r} : attendu un identifiant (lettres, _)")
    if code in PLACE_COLUMNS or code in {"reg", "region", "lieux"}:
        raise InputError(f"{where} : « code » {code!r} est un nom de colonne réservé")
    if not isinstance(title, str) or not title.strip():
        raise InputError(f"{where} : « titre » absent ou vide, attendu un texte")
    target = entry.get("cible")
    if isinstance(target, bool) or not isinstance(target, int) or target <= 0:
        raise InputError(f"{where} : « cible » {target!r} : attendu un nombre entier positif")
    criteria = entry.get("criteres")
    if (
        not isinstance(criteria, list)
        or not criteria
        or any(criterion not in CRITERIA for criterion in criteria)
    ):
        raise InputError(
            f"{where} : « criteres » {criteria!r} : attendu une liste non vide de "
            f"{', '.join(CRITERIA)}"
        )
    numerique = entry.get("numerique")
    if numerique not in (True, False, None):
        raise InputError(f"{where} : « numerique » {numerique!r} : attendu true, false ou null")
    return Envelope(code, title.strip(), target, tuple(criteria), numerique)


@dataclass
class Bilan:
    """How a selection of places fills the envelopes of a call.

    Attributes
    ----------
    lieux : pandas.DataFrame
        Every input row, in order, with the output of :func:`territoires.classify` and
        :data:`PLACE_COLUMNS`: ``numerique_lu`` (the flag as read), ``enveloppes``
        (codes of the envelopes the place counts toward, ``;``-joined), ``bilan`` (a
        key of :data:`STATUTS`) and ``bilan_motif`` (why a row is invalid or unsure).
    enveloppes : pandas.DataFrame
        One row per envelope: ``code``, ``titre``, ``cible``, ``lieux`` (places that
        count toward it), ``ecart`` (``lieux - cible``), ``taux`` (``lieux / cible``),
        ``a_verifier`` (places that do not count toward it but may once an unknown
        criterion is known; some may count toward another envelope already, so these
        are not ``synthese["a_verifier"]``, nor do they add up to it).
    regions : pandas.DataFrame
        One row per région of the valid places: ``reg``, ``region`` (name), ``lieux``,
        then per envelope its count (``<code>``) and the région's share of the
        envelope's places (``<code>_part``, from 0 to 1).
    synthese : dict
        ``lieux``, ``valides``, ``invalides``, ``plusieurs``, ``aucune``,
        ``a_verifier`` (places that count toward no envelope for sure but may toward
        one once an unknown criterion is known: status ``a_verifier``), ``numeriques``,
        ``colonne_numerique`` (whether the column exists).
    envelopes : Envelopes
        The envelopes applied.
    attrs : dict
        ``regles`` and ``sources`` of the classification, ``enveloppes``.
    """

    lieux: pd.DataFrame
    enveloppes: pd.DataFrame
    regions: pd.DataFrame
    synthese: dict[str, Any]
    envelopes: Envelopes
    attrs: dict[str, Any]

    def resume(self) -> str:
        """Short French summary: counts against targets, both, none, invalid, régions."""
        s = self.synthese
        rules = self.attrs.get("regles", {})
        npnru = (
            f", {french.number(rules['distance_npnru_m'], None)} m autour de "
            f"{french.number(rules['qpv_npnru'])} QPV NPNRU"
            if rules.get("qpv_npnru")
            else ""
        )
        lines = [
            f"Bilan « {self.envelopes.title} » : {french.count(s['lieux'], 'lieu', 'lieux')}, "
            "règles "
            f"« {rules.get('nom', '?')} » (QPV {rules.get('millesime_qpv', '?')}, proximité "
            f"{french.number(rules.get('distance_proximite_m'), None)} m{npnru}, règle urbaine "
            f"{rules.get('regle_urbaine', '?')})",
        ]
        for row in self.enveloppes.itertuples():
            unsure = (
                f", + {french.count(row.a_verifier, 'possible', 'possibles')} (critère inconnu)"
                if row.a_verifier
                else ""
            )
            lines.append(
                f"  {row.titre} : {french.number(row.lieux)} / {french.number(row.cible)} "
                f"({french.percent(row.taux)}){unsure}"
            )
        lines.append(
            f"  Dans plusieurs enveloppes (comptés dans chacune) : {french.number(s['plusieurs'])}"
            f" ; dans aucune : {french.number(s['aucune'])} ; sans enveloppe sûre, à "
            f"vérifier : {french.number(s['a_verifier'])} ; lignes invalides : "
            f"{french.number(s['invalides'])}"
        )
        if not s["colonne_numerique"]:
            lines.append(
                f"  Colonne « {NUMERIQUE_COLUMN} » absente : aucun lieu n'est compté comme "
                "Fabrique numérique"
            )
        if len(self.regions):
            shares = ", ".join(
                f"{row.region} {french.number(row.lieux)}"
                for row in self.regions.sort_values("lieux", ascending=False).itertuples()
            )
            lines.append(f"  Lieux valides par région : {shares}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{self.resume()}</pre>" + self.enveloppes.to_html(index=False)


def _flags(places: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series]:
    """The numérique flag of each place (nullable boolean) and the problem of bad values."""
    index = places.index
    if column not in places:
        return (
            pd.Series(False, index=index, dtype="boolean"),
            pd.Series(pd.NA, index=index, dtype="string"),
        )
    raw = places[column]
    text = raw.astype("string").str.strip().str.lower().fillna("")
    flag = pd.Series(pd.NA, index=index, dtype="boolean")
    flag[text.isin(YES)] = True
    flag[text.isin(NO)] = False
    bad = flag.isna()
    problem = pd.Series(pd.NA, index=index, dtype="string")
    problem[bad] = [
        f"{column} : valeur « {value} » non reconnue, attendu oui ou non (ou vide pour non)"
        for value in raw[bad]
    ]
    return flag, problem


def assess(
    classified: pd.DataFrame,
    envelopes: Envelopes | str | Path | None = None,
    *,
    numerique: str = NUMERIQUE_COLUMN,
    regions: Mapping[str, str] | None = None,
) -> Bilan:
    """Count classified places toward the envelopes of a call.

    Parameters
    ----------
    classified : pandas.DataFrame
        Output of :func:`territoires.classify` (``verdict``, ``motif``, ``reg`` and the
        columns of :data:`CRITERIA`), with the user's columns.
    envelopes : Envelopes, str or pathlib.Path, optional
        Envelopes, or what :func:`load_envelopes` reads; default ``fabriques-2019``.
    numerique : str, default ``"numerique"``
        Column flagging the Fabriques numériques (``oui``/``non``, ``1``/``0``,
        ``vrai``/``faux``, ``x``, empty for no). When absent, no place is numérique.
    regions : mapping of str to str, optional
        Région code → name, for the table by région; read from the outlines of the
        régions (:func:`territoires.loaders.admin_names`) when omitted, the codes
        staying alone only when those cannot be had.

    Returns
    -------
    Bilan
        A place counts toward an envelope when one of its criteria is true and its flag
        fits the envelope; it counts toward every envelope it fits. A row whose
        verdict is ``invalide`` or whose flag cannot be read counts toward none, with
        its reason in ``bilan_motif``.
    """
    chosen = envelopes if isinstance(envelopes, Envelopes) else load_envelopes(envelopes)
    missing = [c for c in ("verdict", "motif", "reg", *CRITERIA) if c not in classified]
    if missing:
        raise InputError(
            f"colonnes {', '.join(missing)} absentes : attendu la sortie de territoires.classify"
        )
    flag, problem = _flags(classified, numerique)
    invalid = (classified["verdict"] == "invalide").to_numpy() | problem.notna().to_numpy()
    counted, unsure = {}, {}
    for envelope in chosen.envelopes:
        values = classified[list(envelope.criteria)].astype("boolean")
        fits = np.ones(len(classified), dtype=bool)
        if envelope.numerique is not None:
            fits = flag.eq(envelope.numerique).fillna(False).to_numpy(dtype=bool)
        true = values.eq(True).any(axis=1).to_numpy(dtype=bool)
        unknown = values.isna().any(axis=1).to_numpy(dtype=bool)
        counted[envelope.code] = true & fits & ~invalid
        unsure[envelope.code] = ~true & unknown & fits & ~invalid
    codes = [envelope.code for envelope in chosen.envelopes]
    matrix = np.column_stack([counted[code] for code in codes])
    n_counted = matrix.sum(axis=1)
    maybe = np.column_stack([unsure[code] for code in codes]).any(axis=1)
    status = np.select(
        [invalid, n_counted > 1, n_counted == 1, maybe],
        ["invalide", "plusieurs", "une", "a_verifier"],
        default="aucune",
    )
    reason = problem.copy()
    verdict_invalid = (classified["verdict"] == "invalide").to_numpy()
    reason[verdict_invalid] = classified.loc[verdict_invalid, "motif"].astype("string")
    reason[(status == "a_verifier")] = classified.loc[status == "a_verifier", "motif"].astype(
        "string"
    )
    places = classified.copy()
    places["numerique_lu"] = flag.where(problem.isna())
    places["enveloppes"] = pd.Series(
        [";".join(c for c, hit in zip(codes, row, strict=True) if hit) for row in matrix],
        index=classified.index,
        dtype="string",
    )
    places["bilan"] = pd.Series(status, index=classified.index, dtype="string")
    places["bilan_motif"] = reason
    table = pd.DataFrame(
        {
            "code": codes,
            "titre": [envelope.title for envelope in chosen.envelopes],
            "cible": [envelope.target for envelope in chosen.envelopes],
            "lieux": [int(counted[code].sum()) for code in codes],
            "a_verifier": [int(unsure[code].sum()) for code in codes],
        }
    )
    table.insert(4, "ecart", table["lieux"] - table["cible"])
    table.insert(5, "taux", table["lieux"] / table["cible"])
    synthese = {
        "lieux": len(places),
        "valides": int((~invalid).sum()),
        "invalides": int(invalid.sum()),
        "plusieurs": int((status == "plusieurs").sum()),
        "aucune": int((status == "aucune").sum()),
        "a_verifier": int((status == "a_verifier").sum()),
        "numeriques": int(flag.where(problem.isna()).eq(True).fillna(False).sum()),
        "colonne_numerique": numerique in classified,
    }
    attrs = dict(classified.attrs)
    attrs["enveloppes"] = chosen.describe()
    attrs["bilan"] = synthese
    return Bilan(
        lieux=places,
        enveloppes=table,
        regions=_by_region(
            places,
            counted,
            ~invalid,
            codes,
            loaders.admin_names("regions") if regions is None else regions,
        ),
        synthese=synthese,
        envelopes=chosen,
        attrs=attrs,
    )


def _by_region(
    places: pd.DataFrame,
    counted: Mapping[str, np.ndarray],
    valid: np.ndarray,
    codes: list[str],
    names: Mapping[str, str],
) -> pd.DataFrame:
    """Valid places and envelope counts per région, with each région's share."""
    frame = pd.DataFrame({"reg": places["reg"].astype("string").to_numpy()})
    for code in codes:
        frame[code] = counted[code].astype(int)
    frame = frame[valid]
    grouped = frame.groupby("reg", sort=True)
    table = grouped.size().rename("lieux").to_frame()
    for code in codes:
        table[code] = grouped[code].sum()
        total = table[code].sum()
        table[f"{code}_part"] = table[code] / total if total else 0.0
    table = table.reset_index()
    table.insert(1, "region", table["reg"].map(lambda reg: names.get(reg, reg)).astype("string"))
    return table


def bilan(
    source: Any,
    rules: Rules | str | None = None,
    envelopes: Envelopes | str | Path | None = None,
    *,
    numerique: str = NUMERIQUE_COLUMN,
    data_dir: Path | None = None,
    **kwargs: Any,
) -> Bilan:
    """Classify places and count them toward the envelopes of a call.

    Parameters
    ----------
    source : path, pandas.DataFrame or geopandas.GeoDataFrame
        Places, as for :func:`territoires.classify`, with an optional ``numerique``
        column.
    rules : Rules or str, optional
        Rule set or preset name; defaults to ``"fabriques-2019"``.
    envelopes : Envelopes, str or pathlib.Path, optional
        Envelopes or envelope file (see :func:`load_envelopes`).
    numerique : str, default ``"numerique"``
        Column flagging the Fabriques numériques.
    data_dir : pathlib.Path, optional
        Mirror folder.
    **kwargs
        Passed to :func:`territoires.classify` (``lon``, ``lat``, ``input_crs``…).

    Returns
    -------
    Bilan

    Examples
    --------
    >>> print(bilan("lieux.csv").resume())  # doctest: +SKIP
    """
    chosen = envelopes if isinstance(envelopes, Envelopes) else load_envelopes(envelopes)
    classified = eligibility.classify(source, rules, data_dir=data_dir, **kwargs)
    return assess(
        classified,
        chosen,
        numerique=numerique,
        regions=loaders.admin_names("regions", data_dir=data_dir),
    )
