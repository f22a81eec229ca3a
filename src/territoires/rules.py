"""Named, versioned eligibility rules: the one rule engine of territoires.

A :class:`Rules` object says which QPV geography to use, what "à proximité immédiate"
means in metres (and which text that distance comes from), and which :class:`UrbanRule`
decides that a commune lies "hors grands centres urbains". Presets reproduce official
calls; every field can be overridden with :meth:`Rules.replace`, and the result's
attributes record the rules used.

The distance follows the only French legal text that quantifies nearness to a QPV:
the Code général des impôts, art. 278 sexies (reduced VAT for social home ownership),
which counts 300 m from the boundary of a QPV, and 500 m for a QPV under a renewal
contract of the NPNRU (see :func:`Rules.with_npnru`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._errors import ReferenceDataError, RulesError, UnknownRuleError
from .nomenclatures import (
    CATEAAV2020,
    DENSITE7,
    LABELS_BY_COLUMN,
    NATURE_EPCI,
    TAAV2017,
    TUU2017,
)

#: The legal text that quantifies nearness to a QPV.
CGI_278_SEXIES = "Code général des impôts, art. 278 sexies"

#: Default meaning of "à proximité immédiate d'un QPV", in metres from its boundary.
#: The 2019 "Fabriques de Territoire" call does not quantify it; the CGI, art. 278
#: sexies, counts 300 m from the boundary of a QPV.
DISTANCE_PROXIMITE_IMMEDIATE_M: float = 300.0

#: Distance of the CGI, art. 278 sexies, for a QPV under a renewal contract (NPNRU).
DISTANCE_NPNRU_M: float = 500.0

#: Why the default distance is 300 m, cited in motifs.
BASE_CGI_300 = f"300 m : {CGI_278_SEXIES}"
#: Why a QPV of the user's NPNRU list gets 500 m, cited in motifs.
BASE_CGI_NPNRU = f"500 m : QPV en renouvellement urbain (NPNRU), {CGI_278_SEXIES}"
#: The 500 m preset applies the NPNRU distance of the article to every QPV.
BASE_CGI_500_TOUS = (
    f"500 m : distance fixée par le {CGI_278_SEXIES}, pour les QPV en renouvellement "
    "urbain (NPNRU), appliquée ici à tous les QPV"
)
#: Basis recorded when the user sets another distance.
BASE_CHOISIE = "distance choisie par l'utilisateur"

#: Régions of France (13 in métropole, 5 overseas): a commune table with communes in
#: all of them is national, and zone counts can be checked on it.
REGIONS_FRANCE = 18


#: Verdict codes, in order of precedence, with their French label.
VERDICTS: dict[str, str] = {
    "invalide": "Entrée invalide",
    "qpv": "Dans un quartier prioritaire (QPV)",
    "proximite_qpv": "À proximité immédiate d'un QPV",
    "hors_grands_centres_urbains": "Hors grands centres urbains",
    "incertain": "Incertain (la réponse dépend de la position exacte du lieu)",
    "non_eligible": "Non éligible",
    "indetermine": "Indéterminé (données de référence manquantes)",
}


#: Verdicts that make a place eligible to the call: in or near a QPV (QPV envelope),
#: or outside large urban centres.
ELIGIBLE: tuple[str, ...] = ("qpv", "proximite_qpv", "hors_grands_centres_urbains")


#: Categories of the AAV 2020 zoning (CATEAAV2020) that make a commune part of a pole:
#: commune-centre (11) and other commune of the main pole (12).
POLE_CATEGORIES: tuple[int, ...] = (11, 12)


def _named(column: str, codes: Iterable[Any]) -> str:
    """« 3 « Aire de … », 4 « … » ou 5 « … » »: codes of a commune column with their names."""
    names = [f"{code} « {LABELS_BY_COLUMN[column][code]} »" for code in codes]
    return " ou ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def _label(table: dict[int, str], value: Any) -> str:
    return table.get(int(value), f"code {value}") if pd.notna(value) else "inconnu"


def _zone(row: Any, column: str) -> str:
    """A zone's code and, when the commune table has it (``<column>_nom``), its name."""
    name = getattr(row, f"{column}_nom", None)
    code = getattr(row, column)
    return f"{code} « {name} »" if isinstance(name, str) and name else f"{code}"


@dataclass(frozen=True)
class UrbanRule:
    """Decides, per commune, whether it lies outside large urban centres.

    Attributes
    ----------
    name : str
        Stable identifier, e.g. ``"densite-hors-grands-centres"``.
    version : str
        Version of the rule's definition.
    description : str
        French sentence stating the rule.
    column : str
        Commune column the rule reads (``densite7``, ``taav2017``, ``tuu2017``).
    urban_values : tuple of int or str
        Values of ``column`` that make a commune a large urban centre (codes as
        published: integers for INSEE levels and bands, strings for ``nature_epci``).
    pole_only : bool
        For AAV rules: only communes of a pole (:data:`POLE_CATEGORIES` of CATEAAV2020)
        can be urban.
    reading : str
        French sentence: which reading of « grands centres urbains » the rule applies.
    since : str
        French: since when that reading exists (or which year it reproduces), shown
        after « depuis : ».
    expected_zones : int or None
        For zone rules (``column`` ``nature_epci``): how many distinct EPCI the urban
        values must find in a national table; :meth:`evaluate` checks it.
    """

    name: str
    version: str
    description: str
    column: str
    urban_values: tuple[int | str, ...]
    pole_only: bool = False
    reading: str = ""
    since: str = ""
    expected_zones: int | None = None

    def evaluate(self, communes: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """Apply the rule to communes.

        Parameters
        ----------
        communes : pandas.DataFrame
            Rows with ``nom``, ``code_insee`` and the rule's columns (``cateaav2020``
            too for AAV rules).

        Returns
        -------
        outside : pandas.Series of boolean
            True outside large urban centres, False inside, NA when the data is missing.
        reason : pandas.Series of str
            French explanation with the values used.
        """
        if self.column == "nature_epci":
            values = communes[self.column].astype("string").str.strip().replace("", pd.NA)
            urban = values.isin(self.urban_values).fillna(False).astype(bool)
            self._check_zones(communes, urban)
        else:
            values = pd.to_numeric(communes[self.column], errors="coerce").astype("Int64")
            urban = values.isin(self.urban_values)
        unknown = values.isna()
        if self.pole_only:
            category = pd.to_numeric(communes["cateaav2020"], errors="coerce").astype("Int64")
            unknown |= urban & category.isna()  # large AAV, pole membership unknown
            urban &= category.isin(list(POLE_CATEGORIES))
        outside = (~urban).astype("boolean").mask(unknown)
        reasons = [
            self._reason(row, out) for row, out in zip(communes.itertuples(), outside, strict=True)
        ]
        return outside, pd.Series(reasons, index=communes.index, dtype="string")

    def codes_in_words(self) -> str:
        """The codes that make a commune a large urban centre, each with its name.

        Returns
        -------
        str
            French, e.g. « densite7 = 1 « Grands centres urbains » »; for AAV rules, the
            pole categories follow.
        """
        text = f"{self.column} = {_named(self.column, self.urban_values)}"
        if self.pole_only:
            poles = _named("cateaav2020", POLE_CATEGORIES)
            text += f", dans un pôle (cateaav2020 = {poles})"
        return text

    def _check_zones(self, communes: pd.DataFrame, urban: pd.Series) -> None:
        """Check, on a national table, that the urban values find ``expected_zones`` EPCI.

        A table covering fewer régions than France (a regional extract) cannot be
        checked and is accepted as it is.

        Raises
        ------
        ReferenceDataError
            When a national table holds another number of métropoles than expected.
        """
        if self.expected_zones is None or "reg" not in communes:
            return
        if communes["reg"].nunique() < REGIONS_FRANCE:
            return
        found = sorted(communes.loc[urban, "epci"].dropna().astype(str).unique())
        if len(found) != self.expected_zones:
            raise ReferenceDataError(
                f"règle « {self.name} » : {self.expected_zones} métropoles attendues "
                f"(NATURE_EPCI {_named('nature_epci', self.urban_values)} de la table "
                f"d'appartenance INSEE), {len(found)} trouvées : {', '.join(found) or 'aucune'}. "
                "La table d'appartenance lue n'est pas celle que la règle décrit : vérifiez "
                "le fichier (territoires data info appartenance_cog2023)"
            )

    def _reason(self, row: Any, outside: Any) -> str:
        value = getattr(row, self.column)
        commune = f"{row.nom} ({row.code_insee})"
        if pd.isna(outside):
            missing = self.column if pd.isna(value) else "cateaav2020"
            return f"{commune} : {missing} inconnu, règle « {self.name} » non applicable"
        verdict = "hors grands centres urbains" if outside else "grand centre urbain"
        if self.column == "nature_epci":
            name = getattr(row, "epci_nom", None)
            epci = f"{name} (EPCI {row.epci})" if pd.notna(name) else f"EPCI {row.epci}"
            nature = NATURE_EPCI.get(str(value), f"nature {value}")
            if str(value) == "ZZ":
                detail = f"{nature}, hors des {self.expected_zones} métropoles"
            elif outside:
                detail = f"{epci}, {nature}, hors des {self.expected_zones} métropoles"
            else:
                detail = f"membre de {epci}, une des {self.expected_zones} métropoles"
        elif self.column == "densite7":
            detail = f"niveau {value} « {_label(DENSITE7, value)} » de la grille de densité INSEE"
        elif self.column == "taav2017":
            detail = (
                f"« {_label(CATEAAV2020, row.cateaav2020)} », "
                f"aire d'attraction {_zone(row, 'aav2020')} : {_label(TAAV2017, value)}"
            )
        else:
            detail = f"{_label(TUU2017, value)} (unité urbaine {_zone(row, 'uu2020')})"
        return f"{commune} : {detail} → {verdict} (règle « {self.name} »)"


URBAN_RULES: dict[str, UrbanRule] = {
    rule.name: rule
    for rule in (
        UrbanRule(
            name="densite-hors-grands-centres",
            version="2024",
            description=(
                "Hors grands centres urbains : commune qui n'est pas au niveau 1 "
                "« Grands centres urbains » de la grille communale de densité INSEE à 7 niveaux."
            ),
            column="densite7",
            urban_values=(1,),
            reading=(
                "lecture INSEE postérieure à l'appel : niveau 1 « Grands centres urbains » de "
                "la grille communale de densité à 7 niveaux"
            ),
            since="2022 (grille à 7 niveaux de l'INSEE ; millésime lu : voir les sources)",
        ),
        UrbanRule(
            name="hors-metropoles",
            version="2019",
            description=(
                "Hors grands centres urbains : commune qui n'appartient à aucune des 22 "
                "métropoles (EPCI de nature « ME », plus la Métropole de Lyon « METLYON », "
                "dans la table d'appartenance géographique INSEE)."
            ),
            column="nature_epci",
            urban_values=("ME", "METLYON"),
            reading=(
                "lecture de 2019 : l'appel veut des tiers-lieux qui ne soient pas réservés aux "
                "« habitants des seules métropoles » ; grands centres urbains = les 22 métropoles"
            ),
            since=("2019, date de l'appel (22 métropoles depuis 2018, inchangées au COG 2023 lu)"),
            expected_zones=22,
        ),
        UrbanRule(
            name="aav-hors-poles-200k",
            version="2020",
            description=(
                "Hors grands centres urbains : commune qui n'appartient pas au pôle (commune-"
                "centre ou autre commune du pôle principal) d'une aire d'attraction des villes "
                "de 200 000 habitants ou plus (zonage INSEE 2020)."
            ),
            column="taav2017",
            urban_values=(3, 4, 5),
            pole_only=True,
            reading="variante : pôles des grandes aires d'attraction des villes",
            since="2020 (zonage en aires d'attraction des villes de l'INSEE)",
        ),
        UrbanRule(
            name="uu-moins-200k",
            version="2020",
            description=(
                "Hors grands centres urbains : commune hors d'une unité urbaine de 200 000 "
                "habitants ou plus (zonage INSEE 2020, tranche 2017)."
            ),
            column="tuu2017",
            urban_values=(7, 8),
            reading="variante : grandes unités urbaines",
            since="2020 (zonage en unités urbaines 2020 de l'INSEE)",
        ),
    )
}


@dataclass(frozen=True)
class Rules:
    """A named, versioned set of eligibility rules.

    Attributes
    ----------
    name, version, title : str
        Identity of the rule set.
    reference : str
        The official text the rules apply.
    qpv_vintage : {2015, 2024}
        QPV geography.
    near_distance_m : float
        "À proximité immédiate" threshold, metres from the QPV boundary.
    urban : UrbanRule
        Rule deciding "hors grands centres urbains".
    near_basis : str
        French: the text the distance comes from, cited in every proximity motif.
    npnru : frozenset of str
        Codes of the QPV under a renewal contract (NPNRU), which get
        ``npnru_distance_m`` instead of ``near_distance_m``; empty by default.
    npnru_distance_m : float
        Distance for the QPV of ``npnru`` (500 m, CGI art. 278 sexies); at least
        ``near_distance_m`` when ``npnru`` is given.
    """

    name: str
    version: str
    title: str
    reference: str
    qpv_vintage: int
    near_distance_m: float
    urban: UrbanRule
    near_basis: str = BASE_CGI_300
    npnru: frozenset[str] = frozenset()
    npnru_distance_m: float = DISTANCE_NPNRU_M

    def __post_init__(self) -> None:
        if self.qpv_vintage not in (2015, 2024):
            raise RulesError(f"millésime QPV {self.qpv_vintage!r} : attendu 2015 ou 2024")
        for field_name in ("near_distance_m", "npnru_distance_m"):
            value = getattr(self, field_name)
            if not np.isfinite(value) or value < 0:
                raise RulesError(f"{field_name}={value!r} : attendu ≥ 0 mètre")
        codes = frozenset(self.npnru)
        if codes and self.npnru_distance_m < self.near_distance_m:
            raise RulesError(
                f"npnru_distance_m={self.npnru_distance_m:g} : avec une liste NPNRU, la distance "
                f"des QPV NPNRU doit être au moins celle des autres QPV "
                f"(near_distance_m={self.near_distance_m:g})"
            )
        object.__setattr__(self, "npnru", codes)
        prefix = "QP" if self.qpv_vintage == 2015 else "QN"
        wrong = sorted(code for code in codes if not code.startswith(prefix))
        if wrong:
            raise RulesError(
                f"codes NPNRU {', '.join(wrong[:5])} : la géographie prioritaire "
                f"{self.qpv_vintage} a des codes {prefix}… ; donnez la liste de ce millésime"
            )

    def replace(self, **changes: Any) -> Rules:
        """Return a copy with some fields changed; ``urban`` accepts a rule name.

        The name gains a ``+personnalisé`` suffix so results never pass a modified rule
        set off as a preset. A new ``near_distance_m`` without a ``near_basis`` is
        recorded as a distance chosen by the user, not the legal one.
        """
        if isinstance(changes.get("urban"), str):
            changes["urban"] = urban_rule(changes["urban"])
        changed_distance = changes.get("near_distance_m", self.near_distance_m)
        if changed_distance != self.near_distance_m:
            changes.setdefault("near_basis", BASE_CHOISIE)
        changes.setdefault("name", f"{self.name}+personnalisé")
        return dataclasses.replace(self, **changes)

    def with_npnru(self, codes: Iterable[str]) -> Rules:
        """Apply 500 m around the QPV of ``codes`` (NPNRU), this distance elsewhere.

        Parameters
        ----------
        codes : iterable of str
            Codes of the QPV under a renewal contract, e.g. read by
            :func:`territoires.loaders.load_npnru` from the ANRU list.

        Returns
        -------
        Rules
            Named ``<name>+npnru``.
        """
        return self.replace(npnru=frozenset(codes), name=f"{self.name}+npnru")

    def thresholds(self, codes: Any) -> np.ndarray:
        """Proximity distance of each QPV, in metres.

        Parameters
        ----------
        codes : array-like of str
            QPV codes.

        Returns
        -------
        numpy.ndarray of float
            ``npnru_distance_m`` for the codes of :attr:`npnru`, else ``near_distance_m``.
        """
        npnru = pd.Index(np.asarray(codes, dtype=object)).isin(list(self.npnru))
        return np.where(npnru, self.npnru_distance_m, self.near_distance_m)

    def basis(self, npnru: bool = False) -> str:
        """French text the distance comes from (for a QPV of the NPNRU list or not)."""
        return BASE_CGI_NPNRU if npnru else self.near_basis

    def describe(self) -> dict[str, Any]:
        """Plain description, for ``attrs`` and reports."""
        return {
            "nom": self.name,
            "version": self.version,
            "titre": self.title,
            "reference": self.reference,
            "millesime_qpv": self.qpv_vintage,
            "distance_proximite_m": self.near_distance_m,
            "distance_proximite_base": self.near_basis,
            "qpv_npnru": len(self.npnru),
            "codes_npnru": sorted(self.npnru),
            "distance_npnru_m": self.npnru_distance_m if self.npnru else None,
            "regle_urbaine": self.urban.name,
            "regle_urbaine_version": self.urban.version,
            "regle_urbaine_description": self.urban.description,
            "regle_urbaine_lecture": self.urban.reading,
        }


_FABRIQUES_2019 = (
    "Appel à manifestation d'intérêt « Fabriques de Territoire » (programme « Nouveaux "
    "lieux, nouveaux liens », 2019) : 150 fabriques hors des grands centres urbains, 150 en "
    "quartier prioritaire de la politique de la ville ou à sa proximité immédiate."
)

_DENSITE = URBAN_RULES["densite-hors-grands-centres"]
_METROPOLES = URBAN_RULES["hors-metropoles"]

PRESETS: dict[str, Rules] = {
    rules.name: rules
    for rules in (
        Rules(
            name="fabriques-2019",
            version="2",
            title=(
                "Fabriques de Territoire 2019, géographie prioritaire 2015, proximité 300 m "
                "(CGI art. 278 sexies), grille de densité"
            ),
            reference=_FABRIQUES_2019,
            qpv_vintage=2015,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=_DENSITE,
        ),
        Rules(
            name="fabriques-2019-metropoles",
            version="1",
            title=(
                "Fabriques de Territoire 2019, lecture de 2019 : hors des 22 métropoles, "
                "géographie prioritaire 2015, proximité 300 m (CGI art. 278 sexies)"
            ),
            reference=_FABRIQUES_2019,
            qpv_vintage=2015,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=_METROPOLES,
        ),
        Rules(
            name="fabriques-2019-npnru-500m",
            version="1",
            title=(
                "Fabriques de Territoire 2019, géographie prioritaire 2015, proximité 500 m "
                "autour de tous les QPV (distance NPNRU du CGI art. 278 sexies)"
            ),
            reference=_FABRIQUES_2019,
            qpv_vintage=2015,
            near_distance_m=DISTANCE_NPNRU_M,
            near_basis=BASE_CGI_500_TOUS,
            urban=_DENSITE,
        ),
        Rules(
            name="fabriques-2019-qpv2024",
            version="2",
            title=(
                "Fabriques de Territoire 2019, appliqué à la géographie prioritaire 2024, "
                "proximité 300 m (CGI art. 278 sexies), grille de densité"
            ),
            reference=_FABRIQUES_2019,
            qpv_vintage=2024,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=_DENSITE,
        ),
        Rules(
            name="fabriques-2019-qpv2024-metropoles",
            version="1",
            title=(
                "Fabriques de Territoire 2019, lecture de 2019 : hors des 22 métropoles, "
                "géographie prioritaire 2024, proximité 300 m (CGI art. 278 sexies)"
            ),
            reference=_FABRIQUES_2019,
            qpv_vintage=2024,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=_METROPOLES,
        ),
    )
}

#: Preset used when none is named.
DEFAULT_PRESET = "fabriques-2019"


def urban_rule(name: str) -> UrbanRule:
    """Return the urban rule called ``name`` (error lists the known names)."""
    try:
        return URBAN_RULES[name]
    except KeyError:
        raise UnknownRuleError(
            f"règle urbaine inconnue {name!r} ; connues : {', '.join(URBAN_RULES)}"
        ) from None


def preset(name: str = DEFAULT_PRESET, **overrides: Any) -> Rules:
    """Return a preset rule set, optionally with some fields overridden.

    Parameters
    ----------
    name : str, default ``"fabriques-2019"``
        Preset name, see :data:`PRESETS`.
    **overrides
        Fields of :class:`Rules` to change (``qpv_vintage``, ``near_distance_m``,
        ``urban`` as an :class:`UrbanRule` or its name, ``npnru`` codes).

    Examples
    --------
    >>> preset("fabriques-2019", near_distance_m=250).near_distance_m
    250
    """
    try:
        rules = PRESETS[name]
    except KeyError:
        raise UnknownRuleError(
            f"jeu de règles inconnu {name!r} ; connus : {', '.join(PRESETS)}"
        ) from None
    return rules.replace(**overrides) if overrides else rules


def decide(
    valid: np.ndarray,
    in_qpv: pd.Series,
    near_qpv: pd.Series,
    outside_urban: pd.Series,
    uncertain: np.ndarray | None = None,
) -> np.ndarray:
    """Combine the criteria into one verdict per place, by precedence.

    ``invalide`` for invalid input; ``qpv`` inside a QPV; ``proximite_qpv`` within the
    proximity distance; ``hors_grands_centres_urbains`` when the urban rule says so;
    ``incertain`` when the answer could flip within the precision of the place's
    location (a point closer to a QPV boundary, or to the proximity threshold, than its
    precision; a place known only by a commune that hosts a QPV or lies near one) —
    like ``indetermine``, only when no certain criterion already makes the place
    eligible: a place surely outside large urban centres is eligible wherever it lies
    within its precision, and its motif and ``qpv_a_verifier`` still name the QPV to
    check for the QPV envelope; ``non_eligible`` when every criterion is known and false;
    ``indetermine`` when a criterion that could still make the place eligible is
    unknown (NA).

    Parameters
    ----------
    valid : numpy.ndarray of bool
    in_qpv, near_qpv, outside_urban : pandas.Series of nullable boolean
    uncertain : numpy.ndarray of bool, optional
        Places whose QPV answer depends on their exact position (``in_qpv`` and
        ``near_qpv`` are then NA); none when omitted.

    Returns
    -------
    numpy.ndarray of str
    """
    in_qpv = in_qpv.to_numpy(dtype=object, na_value=None)
    near_qpv = near_qpv.to_numpy(dtype=object, na_value=None)
    outside = outside_urban.to_numpy(dtype=object, na_value=None)
    if uncertain is None:
        uncertain = np.zeros(len(valid), dtype=bool)
    unknown = (in_qpv == None) | (near_qpv == None) | (outside == None)  # noqa: E711
    return np.select(
        [~valid, in_qpv == True, near_qpv == True, outside == True, uncertain, unknown],  # noqa: E712
        [
            "invalide",
            "qpv",
            "proximite_qpv",
            "hors_grands_centres_urbains",
            "incertain",
            "indetermine",
        ],
        default="non_eligible",
    )
