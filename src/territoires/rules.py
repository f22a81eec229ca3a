"""Named, versioned eligibility rules: the one rule engine of territoires.

A :class:`Rules` object says which QPV geography to use, what "à proximité immédiate"
means in metres, and which :class:`UrbanRule` decides that a commune lies "hors grands
centres urbains". Presets reproduce official calls; every field can be overridden with
:meth:`Rules.replace`, and the result's attributes record the rules used.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._errors import RulesError, UnknownRuleError
from .nomenclatures import CATEAAV2020, DENSITE7, TAAV2017, TUU2017

#: Default meaning of "à proximité immédiate d'un QPV", in metres from its boundary.
#: The 2019 "Fabriques de Territoire" call does not quantify it: 500 m (a short walk)
#: is territoires' documented convention; set ``near_distance_m`` to apply another.
DISTANCE_PROXIMITE_IMMEDIATE_M: float = 500.0

#: Verdict codes, in order of precedence, with their French label.
VERDICTS: dict[str, str] = {
    "invalide": "Entrée invalide",
    "qpv": "Dans un quartier prioritaire (QPV)",
    "proximite_qpv": "À proximité immédiate d'un QPV",
    "hors_grands_centres_urbains": "Hors grands centres urbains",
    "non_eligible": "Non éligible",
    "indetermine": "Indéterminé (données de référence manquantes)",
}


def _label(table: dict[int, str], value: Any) -> str:
    return table.get(int(value), f"code {value}") if pd.notna(value) else "inconnu"


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
    urban_values : tuple of int
        Values of ``column`` that make a commune a large urban centre.
    pole_only : bool
        For AAV rules: only communes of a pole (CATEAAV2020 11 or 12) can be urban.
    """

    name: str
    version: str
    description: str
    column: str
    urban_values: tuple[int, ...]
    pole_only: bool = False

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
        values = pd.to_numeric(communes[self.column], errors="coerce").astype("Int64")
        urban = values.isin(self.urban_values)
        unknown = values.isna()
        if self.pole_only:
            category = pd.to_numeric(communes["cateaav2020"], errors="coerce").astype("Int64")
            unknown |= urban & category.isna()  # large AAV, pole membership unknown
            urban &= category.isin([11, 12])
        outside = (~urban).astype("boolean").mask(unknown)
        reasons = [
            self._reason(row, out) for row, out in zip(communes.itertuples(), outside, strict=True)
        ]
        return outside, pd.Series(reasons, index=communes.index, dtype="string")

    def _reason(self, row: Any, outside: Any) -> str:
        value = getattr(row, self.column)
        commune = f"{row.nom} ({row.code_insee})"
        if pd.isna(outside):
            missing = self.column if pd.isna(value) else "cateaav2020"
            return f"{commune} : {missing} inconnu, règle « {self.name} » non applicable"
        verdict = "hors grands centres urbains" if outside else "grand centre urbain"
        if self.column == "densite7":
            detail = f"niveau {value} « {_label(DENSITE7, value)} » de la grille de densité INSEE"
        elif self.column == "taav2017":
            detail = (
                f"« {_label(CATEAAV2020, row.cateaav2020)} », "
                f"aire d'attraction {row.aav2020} : {_label(TAAV2017, value)}"
            )
        else:
            detail = f"{_label(TUU2017, value)} (unité urbaine {row.uu2020})"
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
    """

    name: str
    version: str
    title: str
    reference: str
    qpv_vintage: int
    near_distance_m: float
    urban: UrbanRule

    def __post_init__(self) -> None:
        if self.qpv_vintage not in (2015, 2024):
            raise RulesError(f"millésime QPV {self.qpv_vintage!r} : attendu 2015 ou 2024")
        if not np.isfinite(self.near_distance_m) or self.near_distance_m < 0:
            raise RulesError(f"near_distance_m={self.near_distance_m!r} : attendu ≥ 0 mètre")

    def replace(self, **changes: Any) -> Rules:
        """Return a copy with some fields changed; ``urban`` accepts a rule name.

        The name gains a ``+personnalisé`` suffix so results never pass a modified rule
        set off as a preset.
        """
        if isinstance(changes.get("urban"), str):
            changes["urban"] = urban_rule(changes["urban"])
        changes.setdefault("name", f"{self.name}+personnalisé")
        return dataclasses.replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """Plain description, for ``attrs`` and reports."""
        return {
            "nom": self.name,
            "version": self.version,
            "titre": self.title,
            "reference": self.reference,
            "millesime_qpv": self.qpv_vintage,
            "distance_proximite_m": self.near_distance_m,
            "regle_urbaine": self.urban.name,
            "regle_urbaine_version": self.urban.version,
            "regle_urbaine_description": self.urban.description,
        }


_FABRIQUES_2019 = (
    "Appel à manifestation d'intérêt « Fabriques de Territoire » (programme « Nouveaux "
    "lieux, nouveaux liens », 2019) : 150 fabriques hors des grands centres urbains, 150 en "
    "quartier prioritaire de la politique de la ville ou à sa proximité immédiate."
)

PRESETS: dict[str, Rules] = {
    rules.name: rules
    for rules in (
        Rules(
            name="fabriques-2019",
            version="1",
            title="Fabriques de Territoire 2019, géographie prioritaire 2015",
            reference=_FABRIQUES_2019,
            qpv_vintage=2015,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=URBAN_RULES["densite-hors-grands-centres"],
        ),
        Rules(
            name="fabriques-2019-qpv2024",
            version="1",
            title="Fabriques de Territoire 2019, appliqué à la géographie prioritaire 2024",
            reference=_FABRIQUES_2019,
            qpv_vintage=2024,
            near_distance_m=DISTANCE_PROXIMITE_IMMEDIATE_M,
            urban=URBAN_RULES["densite-hors-grands-centres"],
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
        ``urban`` as an :class:`UrbanRule` or its name).

    Examples
    --------
    >>> preset("fabriques-2019", near_distance_m=300).near_distance_m
    300
    """
    try:
        rules = PRESETS[name]
    except KeyError:
        raise UnknownRuleError(
            f"jeu de règles inconnu {name!r} ; connus : {', '.join(PRESETS)}"
        ) from None
    return rules.replace(**overrides) if overrides else rules


def decide(
    valid: np.ndarray, in_qpv: pd.Series, near_qpv: pd.Series, outside_urban: pd.Series
) -> np.ndarray:
    """Combine the criteria into one verdict per place, by precedence.

    ``invalide`` for invalid input; ``qpv`` inside a QPV; ``proximite_qpv`` within the
    proximity distance; ``hors_grands_centres_urbains`` when the urban rule says so;
    ``non_eligible`` when every criterion is known and false; ``indetermine`` when a
    criterion that could still make the place eligible is unknown (NA).

    Parameters
    ----------
    valid : numpy.ndarray of bool
    in_qpv, near_qpv, outside_urban : pandas.Series of nullable boolean

    Returns
    -------
    numpy.ndarray of str
    """
    in_qpv = in_qpv.to_numpy(dtype=object, na_value=None)
    near_qpv = near_qpv.to_numpy(dtype=object, na_value=None)
    outside = outside_urban.to_numpy(dtype=object, na_value=None)
    unknown = (in_qpv == None) | (near_qpv == None) | (outside == None)  # noqa: E711
    return np.select(
        [~valid, in_qpv == True, near_qpv == True, outside == True, unknown],  # noqa: E712
        ["invalide", "qpv", "proximite_qpv", "hors_grands_centres_urbains", "indetermine"],
        default="non_eligible",
    )
