"""Find the commune a row designates when it gives no coordinates.

Lists of places often hold only a commune: its INSEE code, or its name with a
département or a postcode. :func:`resolve` turns such cells into the current INSEE code
of the commune (older codes, delegated and associated communes and municipal
arrondissements lead to the commune they belong to), or into a French message naming
the field and what was expected. It is pure: the table of known codes comes from
:func:`territoires.loaders.load_commune_codes`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable

import numpy as np
import pandas as pd

#: Accepted names of the columns that designate a commune, compared with
#: :func:`simplify` (without case, accents or punctuation).
COMMUNE_COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "code": (
        "code_insee",
        "code_commune",
        "insee",
        "codgeo",
        "insee_com",
        "code_insee_commune",
        "code_commune_insee",
    ),
    "nom": ("commune", "nom_commune", "ville", "libelle_commune", "lib_com"),
    "dep": ("departement", "dep", "code_departement", "code_dep", "insee_dep"),
    "code_postal": ("code_postal", "cp", "codepostal", "postcode"),
}

_ARTICLES = re.compile(r"^(le|la|les|l)_")
_SAINT = re.compile(r"(^|_)(st|ste)(?=_)")


def simplify(text: Hashable) -> str:
    """Lower-case ``text`` without accents, punctuation runs turned into ``_``.

    Examples
    --------
    >>> simplify("Saint-Étienne-du-Rouvray")
    'saint_etienne_du_rouvray'
    """
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return re.sub(r"[^0-9a-z]+", "_", plain.lower()).strip("_")


def _name_key(name: str) -> str:
    """Key comparing commune names: ``St-Jean`` = ``Saint Jean``, ``Le Mans`` = ``Mans``."""
    key = _SAINT.sub(
        lambda match: match.group(1) + ("saint" if match.group(2) == "st" else "sainte"),
        simplify(name),
    )
    return _ARTICLES.sub("", key)


def find_columns(columns: pd.Index) -> dict[str, Hashable]:
    """Return the commune columns of a table, by role (``code``, ``nom``, ``dep``…).

    Only roles with exactly one matching column are returned.
    """
    found = {}
    for role, names in COMMUNE_COLUMN_NAMES.items():
        matches = [column for column in columns if simplify(column) in names]
        if len(matches) == 1:
            found[role] = matches[0]
    return found


def designates(columns: dict[str, Hashable]) -> bool:
    """True when the columns can designate a commune: a code, or a name with a
    département or a postcode (a name alone is ambiguous, a postcode alone is no commune).
    """
    return "code" in columns or (
        "nom" in columns and ("dep" in columns or "code_postal" in columns)
    )


def _cells(frame: pd.DataFrame, column: Hashable | None) -> pd.Series:
    """Stripped text of a column (``<NA>`` for empty cells), all-NA when absent."""
    if column is None:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    values = frame[column]
    if pd.api.types.is_float_dtype(values):  # codes read as numbers: 1004.0 → "1004"
        values = values.map(lambda v: f"{v:.0f}" if pd.notna(v) and v == int(v) else v)
    text = values.astype("string").str.strip()
    return text.mask(text == "")


def _pad(codes: pd.Series, width: int) -> pd.Series:
    """Zero-pad numeric codes that lost their leading zero in a spreadsheet.

    Only for départements and postcodes, where it cannot designate another place (no
    postcode has four digits); a commune code is never padded: ``3155`` is not taken
    for ``03155``.
    """
    short = codes.str.fullmatch(r"\d+") & (codes.str.len() == width - 1)
    return codes.mask(short.fillna(False), "0" + codes)


def _shown(cell: object, text: str) -> str:
    """A cell as a message quotes it: a text between quotes (its spaces seen), a number
    as the spreadsheet user typed it (``1001``, never numpy's ``np.int64(1001)``), from
    ``text``, its form in :func:`_cells`."""
    return repr(cell) if isinstance(cell, str) else text


def resolve(
    frame: pd.DataFrame, columns: dict[str, Hashable], known: pd.DataFrame
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Current INSEE code of the commune each row designates.

    A code is looked up first; without a code, the commune name is matched (without
    case, accents, articles; ``St`` = ``Saint``) within the row's département or among
    the communes of its postcode.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to resolve.
    columns : dict
        Output of :func:`find_columns`.
    known : pandas.DataFrame
        Output of :func:`territoires.loaders.load_commune_codes`.

    Returns
    -------
    code : pandas.Series of string
        Current INSEE code, ``<NA>`` when the row designates no commune or a wrong one.
    dep : pandas.Series of string
        Département of that commune.
    problem : pandas.Series of string
        ``<NA>`` when resolved or when the row has no commune cell; else a French
        message (without line number) naming the field and what was expected.
    """
    given_code = _cells(frame, columns.get("code")).str.upper()
    name = _cells(frame, columns.get("nom"))
    dep = _pad(_cells(frame, columns.get("dep")), 2).str.upper()
    postcode = _pad(_cells(frame, columns.get("code_postal")), 5)
    by_code = known.set_index("code")
    code = given_code.map(by_code["code_insee"])
    problem = pd.Series(pd.NA, index=frame.index, dtype="string")
    unknown = given_code.notna() & code.isna()
    if unknown.any():
        column = columns["code"]
        problem[unknown] = [
            f"code commune {_shown(value, code)} inconnu (colonne {str(column)!r}) : attendu "
            "un code INSEE de commune à 5 caractères, par exemple 31555 pour Toulouse"
            + (
                f" ; zéro initial perdu par un tableur ? (0{code} ?)"
                if len(code) == 4 and code.isdigit()
                else ""
            )
            for value, code in zip(frame.loc[unknown, column], given_code[unknown], strict=True)
        ]
    by_name = given_code.isna() & name.notna()
    if by_name.any():
        found, issues = _match_names(name[by_name], dep[by_name], postcode[by_name], known, columns)
        code[by_name] = found
        problem[by_name] = issues
    code = code.astype("string")
    departement = code.map(by_code["dep"]).astype("string")
    return code, departement, problem


def _match_names(
    name: pd.Series,
    dep: pd.Series,
    postcode: pd.Series,
    known: pd.DataFrame,
    columns: dict[str, Hashable],
) -> tuple[pd.Series, pd.Series]:
    """Codes of communes given by name within a département or a postcode."""
    label = repr(str(columns["nom"]))
    named = known[known["nom"] != ""].assign(
        cle=lambda t: t["nom"].map(_name_key),
        actuelle=lambda t: (t["code"] == t["code_insee"]) & (t["nom"] == t["nom_commune"]),
    )
    found = pd.Series(pd.NA, index=name.index, dtype="string")
    problem = pd.Series(pd.NA, index=name.index, dtype="string")
    alone = dep.isna() & postcode.isna()
    problem[alone] = [
        f"commune {value!r} (colonne {label}) sans département ni code postal : ajoutez "
        "une colonne departement ou code_postal, ou le code INSEE (colonne code_insee)"
        for value in name[alone]
    ]
    rows = pd.DataFrame({"cle": name.map(_name_key), "dep": dep, "cp": postcode})[~alone]
    by_dep = rows.reset_index().merge(
        named[["cle", "dep", "code_insee", "actuelle"]], on=["cle", "dep"]
    )
    postcodes = named[["cle", "code_insee", "actuelle", "codes_postaux"]].explode("codes_postaux")
    by_cp = (
        rows[rows["dep"].isna()]
        .reset_index()
        .merge(postcodes, left_on=["cle", "cp"], right_on=["cle", "codes_postaux"])
    )
    matches = pd.concat([by_dep, by_cp]).drop_duplicates(["index", "code_insee"])
    # a current commune's own name wins over a delegated commune of the same name
    preferred = matches.groupby("index")["actuelle"].transform("any")
    matches = matches[matches["actuelle"] | ~preferred]
    candidates = matches.groupby("index")["code_insee"].agg(lambda s: tuple(sorted(set(s))))
    count = candidates.map(len)
    single = candidates[count == 1]
    found[single.index] = [codes[0] for codes in single]
    several = candidates[count > 1]
    problem[several.index] = [
        f"commune {name[i]!r} ambiguë (colonne {label}) : codes INSEE possibles "
        f"{', '.join(codes)} ; précisez le code INSEE (colonne code_insee)"
        for i, codes in several.items()
    ]
    missing = rows.index[~rows.index.isin(candidates.index)]
    problem[missing] = [
        f"commune {name[i]!r} introuvable (colonne {label}) "
        + (
            f"dans le département {dep[i]!r}"
            if pd.notna(dep[i])
            else f"pour le code postal {postcode[i]!r}"
        )
        + " : vérifiez l'orthographe ou donnez le code INSEE (colonne code_insee)"
        for i in missing
    ]
    return found, problem


def has_cells(frame: pd.DataFrame, columns: dict[str, Hashable]) -> np.ndarray:
    """True for rows with a commune code or a commune name."""
    given = np.zeros(len(frame), dtype=bool)
    for role in ("code", "nom"):
        if role in columns:
            given |= _cells(frame, columns[role]).notna().to_numpy()
    return given
