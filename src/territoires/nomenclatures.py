"""INSEE nomenclatures used by the loaders, the rules and the messages.

Codes are those published by INSEE; labels are the official French wording.
"""

from __future__ import annotations

from typing import Any

#: Grille communale de densité à 7 niveaux.
DENSITE7: dict[int, str] = {
    1: "Grands centres urbains",
    2: "Centres urbains intermédiaires",
    3: "Ceintures urbaines",
    4: "Petites villes",
    5: "Bourgs ruraux",
    6: "Rural à habitat dispersé",
    7: "Rural à habitat très dispersé",
}

#: Grille à 4 niveaux, agrégation officielle de la grille à 7 niveaux.
DENSITE4: dict[int, str] = {
    1: "Communes densément peuplées",
    2: "Communes de densité intermédiaire",
    3: "Communes peu denses",
    4: "Communes très peu denses",
}

#: Niveau de la grille à 4 niveaux de chaque niveau de la grille à 7 niveaux.
DENSITE7_TO_4: dict[int, int] = {1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 4}

#: Catégorie de la commune dans le zonage en aires d'attraction des villes 2020.
CATEAAV2020: dict[int, str] = {
    11: "Commune-centre",
    12: "Autre commune du pôle principal",
    13: "Commune d'un pôle secondaire",
    20: "Commune de la couronne",
    30: "Commune hors attraction des villes",
}

#: Tranche de taille de l'aire d'attraction des villes (population 2017).
TAAV2017: dict[int, str] = {
    0: "Commune hors attraction des villes",
    1: "Aire de moins de 50 000 habitants",
    2: "Aire de 50 000 à moins de 200 000 habitants",
    3: "Aire de 200 000 à moins de 700 000 habitants",
    4: "Aire de 700 000 habitants ou plus (hors Paris)",
    5: "Aire de Paris",
}

#: Tranche de taille de l'unité urbaine (population 2017).
TUU2017: dict[int, str] = {
    0: "Commune hors unité urbaine",
    1: "Unité urbaine de 2 000 à 4 999 habitants",
    2: "Unité urbaine de 5 000 à 9 999 habitants",
    3: "Unité urbaine de 10 000 à 19 999 habitants",
    4: "Unité urbaine de 20 000 à 49 999 habitants",
    5: "Unité urbaine de 50 000 à 99 999 habitants",
    6: "Unité urbaine de 100 000 à 199 999 habitants",
    7: "Unité urbaine de 200 000 à 1 999 999 habitants",
    8: "Unité urbaine de Paris",
}

#: Nature juridique de l'EPCI à fiscalité propre (table d'appartenance, NATURE_EPCI).
NATURE_EPCI: dict[str, str] = {
    "ME": "métropole",
    "METLYON": "Métropole de Lyon (collectivité à statut particulier)",
    "CU": "communauté urbaine",
    "CA": "communauté d'agglomération",
    "CC": "communauté de communes",
    "ZZ": "commune sans EPCI à fiscalité propre",
}

#: The labels of the codes of each commune column that holds a nomenclature's codes:
#: staff read ``1 Grands centres urbains``, never a bare ``1``.
LABELS_BY_COLUMN: dict[str, dict[Any, str]] = {
    "densite7": DENSITE7,
    "densite4": DENSITE4,
    "cateaav2020": CATEAAV2020,
    "taav2017": TAAV2017,
    "tuu2017": TUU2017,
    "nature_epci": NATURE_EPCI,
}

#: Shape of a QPV code: ``QP`` + 6 characters (2015 geography), ``QN`` + 6 (2024).
QPV_CODE_PATTERN = r"^Q[PN][0-9A-Z]{6}$"
