"""Tests of territoires.rules: presets, validation, urban rules and verdict precedence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from territoires import rules
from territoires._errors import ReferenceDataError
from territoires.rules import (
    CGI_278_SEXIES,
    DISTANCE_NPNRU_M,
    DISTANCE_PROXIMITE_IMMEDIATE_M,
    PRESETS,
    URBAN_RULES,
    VERDICTS,
    Rules,
    decide,
    preset,
    urban_rule,
)

# ------------------------------------------------------------------------------ presets


def test_default_preset_is_fabriques_2019() -> None:
    """The default distance is the legal one: 300 m, CGI art. 278 sexies."""
    default = preset()

    assert default is PRESETS["fabriques-2019"]
    assert default.name == rules.DEFAULT_PRESET == "fabriques-2019"
    assert default.qpv_vintage == 2015
    assert default.near_distance_m == DISTANCE_PROXIMITE_IMMEDIATE_M == 300.0
    assert default.near_basis == "300 m : Code général des impôts, art. 278 sexies"
    assert not default.npnru
    assert default.urban is URBAN_RULES["densite-hors-grands-centres"]
    assert "Fabriques de Territoire" in default.reference


def test_qpv2024_preset() -> None:
    later = preset("fabriques-2019-qpv2024")

    assert later.qpv_vintage == 2024
    assert later.near_distance_m == 300.0
    assert later.urban.name == "densite-hors-grands-centres"


def test_npnru_500m_preset_cites_the_article() -> None:
    wide = preset("fabriques-2019-npnru-500m")

    assert wide.near_distance_m == DISTANCE_NPNRU_M == 500.0
    assert CGI_278_SEXIES in wide.near_basis and "tous les QPV" in wide.near_basis
    assert wide.qpv_vintage == 2015


def test_metropoles_presets() -> None:
    for name, vintage in [
        ("fabriques-2019-metropoles", 2015),
        ("fabriques-2019-qpv2024-metropoles", 2024),
    ]:
        chosen = preset(name)
        assert chosen.urban is URBAN_RULES["hors-metropoles"]
        assert chosen.qpv_vintage == vintage
        assert chosen.near_distance_m == 300.0


def test_every_preset_cites_its_distance_and_reading() -> None:
    for rules_set in PRESETS.values():
        assert CGI_278_SEXIES in rules_set.near_basis, rules_set.name
        assert CGI_278_SEXIES in rules_set.title or "278 sexies" in rules_set.title
        assert rules_set.urban.reading and rules_set.urban.since, rules_set.name


def test_npnru_list_gives_500_m_to_its_qpv_only() -> None:
    listed = preset().with_npnru(["QP031006", "QP034010"])

    assert listed.name == "fabriques-2019+npnru"
    assert listed.npnru == frozenset({"QP031006", "QP034010"})
    assert list(listed.thresholds(["QP031006", "QP031007", "QP034010"])) == [500.0, 300.0, 500.0]
    assert listed.basis(npnru=True).startswith("500 m : QPV en renouvellement urbain (NPNRU)")
    assert CGI_278_SEXIES in listed.basis(npnru=True)
    assert listed.describe()["qpv_npnru"] == 2
    assert listed.describe()["codes_npnru"] == ["QP031006", "QP034010"]  # the list used
    assert listed == preset().with_npnru(("QP034010", "QP031006"))  # frozen, hashable
    assert hash(listed) == hash(preset().with_npnru({"QP034010", "QP031006"}))


def test_npnru_codes_must_match_the_qpv_vintage() -> None:
    with pytest.raises(ValueError, match="QN"):
        preset("fabriques-2019-qpv2024").with_npnru(["QP031006"])
    with pytest.raises(ValueError, match="npnru_distance_m"):
        preset(near_distance_m=600).with_npnru(["QP031006"])


def test_another_distance_is_not_passed_off_as_the_legal_one() -> None:
    assert preset(near_distance_m=250).near_basis == rules.BASE_CHOISIE
    assert preset(near_distance_m=300).near_basis == rules.BASE_CGI_300


def test_unknown_preset_lists_known_names() -> None:
    with pytest.raises(KeyError) as error:
        preset("fabriques-2030")
    message = str(error.value)
    assert "fabriques-2030" in message
    for name in PRESETS:
        assert name in message


def test_unknown_urban_rule_lists_known_names() -> None:
    with pytest.raises(KeyError) as error:
        urban_rule("metropoles-2030")
    for name in URBAN_RULES:
        assert name in str(error.value)
    with pytest.raises(KeyError, match="densite-hors-grands-centres"):
        preset(urban="metropoles-2030")


def test_overrides_rename_the_rule_set() -> None:
    custom = preset(near_distance_m=200, urban="uu-moins-200k")

    assert custom.name == "fabriques-2019+personnalisé"
    assert custom.near_distance_m == 200
    assert custom.urban is URBAN_RULES["uu-moins-200k"]
    assert PRESETS["fabriques-2019"].near_distance_m == 300.0  # the preset is untouched
    again = custom.replace(qpv_vintage=2024)
    assert again.name == "fabriques-2019+personnalisé+personnalisé"
    assert custom.replace(name="mon-appel").name == "mon-appel"
    assert preset("fabriques-2019") is preset()  # no override: the preset itself


def test_rules_are_frozen_and_hashable() -> None:
    assert hash(preset()) == hash(preset())
    assert preset(near_distance_m=100) == preset(near_distance_m=100)
    assert preset(near_distance_m=100) != preset(near_distance_m=200)
    with pytest.raises(AttributeError):
        preset().near_distance_m = 1  # type: ignore[misc]


def test_describe_records_everything() -> None:
    described = preset("fabriques-2019-qpv2024", near_distance_m=250).describe()

    assert described == {
        "nom": "fabriques-2019-qpv2024+personnalisé",
        "version": "2",
        "titre": PRESETS["fabriques-2019-qpv2024"].title,
        "reference": PRESETS["fabriques-2019-qpv2024"].reference,
        "millesime_qpv": 2024,
        "distance_proximite_m": 250,
        "distance_proximite_base": "distance choisie par l'utilisateur",
        "qpv_npnru": 0,
        "codes_npnru": [],
        "distance_npnru_m": None,
        "regle_urbaine": "densite-hors-grands-centres",
        "regle_urbaine_version": "2024",
        "regle_urbaine_description": URBAN_RULES["densite-hors-grands-centres"].description,
        "regle_urbaine_lecture": URBAN_RULES["densite-hors-grands-centres"].reading,
    }


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize("vintage", [2016, 2014, 2023, "2015", None])
def test_unknown_qpv_vintage_is_refused(vintage) -> None:
    with pytest.raises(ValueError, match="millésime QPV"):
        preset(qpv_vintage=vintage)


@pytest.mark.parametrize("distance", [-1, -0.001, float("nan"), float("inf"), -float("inf")])
def test_invalid_distance_is_refused(distance) -> None:
    with pytest.raises(ValueError, match="near_distance_m"):
        preset(near_distance_m=distance)


def test_zero_distance_is_allowed() -> None:
    assert preset(near_distance_m=0).near_distance_m == 0


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError):
        Rules(
            name="x",
            version="1",
            title="x",
            reference="x",
            qpv_vintage=2016,
            near_distance_m=500,
            urban=URBAN_RULES["densite-hors-grands-centres"],
        )


# --------------------------------------------------------------------------- urban rules


@pytest.fixture
def communes() -> pd.DataFrame:
    """Hand-made communes: every combination the three rules look at, some data missing."""
    return pd.DataFrame(
        {
            "code_insee": ["31555", "31069", "12202", "48095", "99001", "99002", "99003", "99004"],
            "nom": [
                "Toulouse",
                "Blagnac",
                "Rodez",
                "Mende",
                "Sans grille",
                "Sans pôle",
                "Vide",
                "Secondaire",
            ],
            "densite7": pd.array([1, 3, 2, 4, pd.NA, 1, pd.NA, 2], dtype="Int64"),
            "aav2020": ["004", "004", "093", "310", "004", "004", None, "004"],
            "cateaav2020": pd.array([11, 12, 11, 11, 20, pd.NA, pd.NA, 13], dtype="Int64"),
            "taav2017": pd.array([4, 4, 2, 1, 4, 4, pd.NA, 4], dtype="Int64"),
            "uu2020": ["31701", "31701", "12501", "48501", "31701", None, None, "31302"],
            "tuu2017": pd.array([7, 7, 5, 3, 7, pd.NA, pd.NA, 4], dtype="Int64"),
            "epci": [
                "243100518",
                "243100518",
                "241200187",
                "244800397",
                "ZZZZZZZZZ",
                "200046977",
                None,
                "243100518",
            ],
            "nature_epci": ["ME", "ME", "CA", "CC", "ZZ", "METLYON", None, "ME"],
            "epci_nom": [
                "Toulouse Métropole",
                "Toulouse Métropole",
                "CA Rodez Agglomération",
                None,
                None,
                "Métropole de Lyon",
                None,
                "Toulouse Métropole",
            ],
            "reg": ["76", "76", "76", "76", "76", "84", None, "76"],
        },
        index=[10, 20, 30, 40, 50, 60, 70, 80],
    )


def _as_list(values: pd.Series) -> list:
    return [None if pd.isna(value) else bool(value) for value in values]


def test_density_rule(communes) -> None:
    outside, reason = URBAN_RULES["densite-hors-grands-centres"].evaluate(communes)

    assert outside.dtype == "boolean"
    assert outside.index.equals(communes.index) and reason.index.equals(communes.index)
    assert _as_list(outside) == [False, True, True, True, None, False, None, True]
    assert reason[10] == (
        "Toulouse (31555) : niveau 1 « Grands centres urbains » de la grille de densité INSEE "
        "→ grand centre urbain (règle « densite-hors-grands-centres »)"
    )
    assert "niveau 3 « Ceintures urbaines »" in reason[20]
    assert "→ hors grands centres urbains" in reason[20]
    assert reason[50] == (
        "Sans grille (99001) : densite7 inconnu, règle « densite-hors-grands-centres » "
        "non applicable"
    )


def test_aav_rule(communes) -> None:
    outside, reason = URBAN_RULES["aav-hors-poles-200k"].evaluate(communes)

    # Toulouse, Blagnac: pole of a large AAV; Rodez, Mende: small AAV; 99001: crown;
    # 99002: large AAV but pole membership unknown; 99003: no data; 99004: secondary pole
    assert _as_list(outside) == [False, False, True, True, True, None, None, True]
    assert "« Commune-centre », aire d'attraction 004" in reason[10]
    assert "Aire de 700 000 habitants ou plus (hors Paris)" in reason[10]
    assert "→ grand centre urbain" in reason[10]
    assert "« Autre commune du pôle principal »" in reason[20]
    assert "Aire de 50 000 à moins de 200 000 habitants → hors grands centres urbains" in reason[30]
    assert "« Commune de la couronne »" in reason[50]
    assert "cateaav2020 inconnu" in reason[60]
    assert "« Commune d'un pôle secondaire »" in reason[80]
    assert "→ hors grands centres urbains" in reason[80]
    assert "taav2017 inconnu" in reason[70]


def test_zone_codes_come_with_their_names(communes) -> None:
    """An aire d'attraction or unité urbaine named in the commune table is named in the motif."""
    communes["aav2020_nom"] = pd.array(
        ["Toulouse", "Toulouse", "Rodez", None, "Toulouse", None, None, "Saint-Gaudens"],
        dtype="string",
    )
    communes["uu2020_nom"] = pd.array(
        ["Toulouse", "Toulouse", "Rodez", "Mende", "Toulouse", None, None, None], dtype="string"
    )
    _, aav = URBAN_RULES["aav-hors-poles-200k"].evaluate(communes)
    assert "« Commune-centre », aire d'attraction 004 « Toulouse » : Aire de 700" in aav[10]
    _, uu = URBAN_RULES["uu-moins-200k"].evaluate(communes)
    assert "habitants (unité urbaine 31701 « Toulouse ») → grand centre urbain" in uu[10]
    assert "(unité urbaine 31302) → hors grands centres urbains" in uu[80]  # no name: the code


def test_every_rule_names_the_codes_it_reads() -> None:
    """« 1 « Grands centres urbains » », never a bare code, wherever a rule is explained."""
    words = {name: rule.codes_in_words() for name, rule in URBAN_RULES.items()}
    assert words["densite-hors-grands-centres"] == "densite7 = 1 « Grands centres urbains »"
    assert words["aav-hors-poles-200k"] == (
        "taav2017 = 3 « Aire de 200 000 à moins de 700 000 habitants », 4 « Aire de 700 000 "
        "habitants ou plus (hors Paris) » ou 5 « Aire de Paris », dans un pôle (cateaav2020 = "
        "11 « Commune-centre » ou 12 « Autre commune du pôle principal »)"
    )
    assert words["uu-moins-200k"] == (
        "tuu2017 = 7 « Unité urbaine de 200 000 à 1 999 999 habitants » ou 8 « Unité urbaine "
        "de Paris »"
    )
    assert words["hors-metropoles"].startswith("nature_epci = ME « métropole » ou METLYON « ")


def test_aav_rule_reads_categories_given_as_text(communes) -> None:
    communes["cateaav2020"] = ["11", "12", "11", "11", "20", None, None, "13"]
    outside, _ = URBAN_RULES["aav-hors-poles-200k"].evaluate(communes)

    assert _as_list(outside) == [False, False, True, True, True, None, None, True]


def test_urban_unit_rule(communes) -> None:
    outside, reason = URBAN_RULES["uu-moins-200k"].evaluate(communes)

    assert _as_list(outside) == [False, False, True, True, False, None, None, True]
    assert "Unité urbaine de 200 000 à 1 999 999 habitants (unité urbaine 31701)" in reason[10]
    assert "Unité urbaine de 50 000 à 99 999 habitants (unité urbaine 12501)" in reason[30]
    assert (
        reason[60] == "Sans pôle (99002) : tuu2017 inconnu, règle « uu-moins-200k » non applicable"
    )


def test_metropoles_rule(communes) -> None:
    outside, reason = URBAN_RULES["hors-metropoles"].evaluate(communes)

    assert _as_list(outside) == [False, False, True, True, True, False, None, False]
    assert reason[10] == (
        "Toulouse (31555) : membre de Toulouse Métropole (EPCI 243100518), une des 22 "
        "métropoles → grand centre urbain (règle « hors-metropoles »)"
    )
    assert (
        "CA Rodez Agglomération (EPCI 241200187), communauté d'agglomération, hors des 22"
        in (reason[30])
    )
    assert "EPCI 244800397, communauté de communes" in reason[40]  # no name: the code
    assert "commune sans EPCI à fiscalité propre" in reason[50]
    assert "Métropole de Lyon (EPCI 200046977), une des 22 métropoles" in reason[60]
    assert "nature_epci inconnu" in reason[70]


def test_metropoles_rule_checks_a_national_table(communes) -> None:
    """On a table covering every région, another number of métropoles is an error."""
    national = communes.copy()
    national["reg"] = [f"{i:02d}" for i in range(len(national))]
    extra = pd.DataFrame({"reg": [f"{i}" for i in range(20, 40)]})
    national = pd.concat([national, extra], ignore_index=True)
    with pytest.raises(ReferenceDataError, match=r"22 métropoles attendues .* 2 trouvées"):
        URBAN_RULES["hors-metropoles"].evaluate(national)
    assert isinstance(ReferenceDataError("x"), ValueError)


def test_rules_disagree_on_some_communes(communes) -> None:
    """The reason to offer several rules: they classify Blagnac and Sans-pôle differently."""
    results = {name: _as_list(rule.evaluate(communes)[0]) for name, rule in URBAN_RULES.items()}

    assert results["densite-hors-grands-centres"][1] is True
    assert results["aav-hors-poles-200k"][1] is False
    assert results["uu-moins-200k"][1] is False


def test_urban_rules_are_documented() -> None:
    assert set(URBAN_RULES) == {
        "densite-hors-grands-centres",
        "hors-metropoles",
        "aav-hors-poles-200k",
        "uu-moins-200k",
    }
    for name, rule in URBAN_RULES.items():
        assert rule.name == name
        assert rule.description.startswith("Hors grands centres urbains : ")
        assert rule.version and rule.reading and rule.since
    assert URBAN_RULES["hors-metropoles"].reading.startswith("lecture de 2019")
    assert "2022" in URBAN_RULES["densite-hors-grands-centres"].since


# ------------------------------------------------------------------------------ decide

T, F, NA = True, False, None

#: (valid, in_qpv, near_qpv, outside_urban) → verdict, by precedence.
PRECEDENCE = [
    (False, T, T, T, "invalide"),
    (False, NA, NA, NA, "invalide"),
    (True, T, T, F, "qpv"),
    (True, T, T, T, "qpv"),
    (True, T, T, NA, "qpv"),
    (True, F, T, F, "proximite_qpv"),
    (True, F, T, T, "proximite_qpv"),
    (True, F, T, NA, "proximite_qpv"),
    (True, F, F, T, "hors_grands_centres_urbains"),
    (True, NA, NA, T, "hors_grands_centres_urbains"),
    (True, F, F, F, "non_eligible"),
    (True, NA, NA, F, "indetermine"),
    (True, F, F, NA, "indetermine"),
    (True, NA, NA, NA, "indetermine"),
]


def test_decide_precedence_table() -> None:
    valid = np.array([row[0] for row in PRECEDENCE])
    columns = [
        pd.Series(pd.array([row[i] for row in PRECEDENCE], dtype="boolean")) for i in (1, 2, 3)
    ]
    verdicts = decide(valid, *columns)

    assert list(verdicts) == [row[4] for row in PRECEDENCE]
    assert set(verdicts) == set(VERDICTS) - {"incertain"}


def test_incertain_comes_after_every_certain_eligibility() -> None:
    # an uncertain place has its QPV answers unknown (NA); a certain answer still wins,
    # and a place surely outside large urban centres is eligible wherever it lies
    valid = np.array([True, True, True, True, False])
    in_qpv = pd.Series(pd.array([NA, NA, T, NA, NA], dtype="boolean"))
    near = pd.Series(pd.array([NA, NA, T, NA, NA], dtype="boolean"))
    outside = pd.Series(pd.array([T, F, F, NA, T], dtype="boolean"))
    uncertain = np.array([True, True, False, True, True])

    verdicts = decide(valid, in_qpv, near, outside, uncertain)

    assert list(verdicts) == [
        "hors_grands_centres_urbains",
        "incertain",
        "qpv",
        "incertain",
        "invalide",
    ]
    assert list(decide(valid, in_qpv, near, outside)) == [
        "hors_grands_centres_urbains",
        "indetermine",
        "qpv",
        "indetermine",
        "invalide",
    ]


def test_decide_on_no_rows() -> None:
    empty = pd.Series(pd.array([], dtype="boolean"))

    assert len(decide(np.array([], dtype=bool), empty, empty, empty)) == 0


def test_verdict_labels_are_french_and_ordered() -> None:
    assert list(VERDICTS) == [
        "invalide",
        "qpv",
        "proximite_qpv",
        "hors_grands_centres_urbains",
        "incertain",
        "non_eligible",
        "indetermine",
    ]
    assert VERDICTS["proximite_qpv"] == "À proximité immédiate d'un QPV"
    assert VERDICTS["non_eligible"] == "Non éligible"


# ------------------------------------------------------------- métropoles on real data


@pytest.fixture(scope="module")
def national_communes(data_dir) -> pd.DataFrame:
    import warnings

    from territoires import loaders

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # commune join report
        return loaders.load_communes(data_dir=data_dir, geometry=False)


def test_metropoles_rule_on_the_insee_table(national_communes) -> None:
    """22 métropoles in the COG 2023 table: 21 of nature ME plus the Métropole de Lyon."""
    communes = national_communes
    rule = URBAN_RULES["hors-metropoles"]
    outside, reason = rule.evaluate(communes)

    urban = communes[outside.eq(False).fillna(False).to_numpy(dtype=bool)]
    natures = urban.groupby("nature_epci")["epci"].nunique().to_dict()
    assert natures == {"ME": 21, "METLYON": 1}
    assert urban["epci_nom"].nunique() == 22
    by_code = dict(zip(communes["code_insee"], zip(outside, reason, strict=True), strict=True))
    blagnac, albi = by_code["31069"], by_code["81004"]
    assert not blagnac[0]
    assert blagnac[1] == (
        "Blagnac (31069) : membre de Toulouse Métropole (EPCI 243100518), une des 22 "
        "métropoles → grand centre urbain (règle « hors-metropoles »)"
    )
    assert albi[0]
    assert albi[1] == (
        "Albi (81004) : CA de l'Albigeois (C2A) (EPCI 248100737), communauté "
        "d'agglomération, hors des 22 métropoles → hors grands centres urbains "
        "(règle « hors-metropoles »)"
    )
    assert not by_code["69123"][0] and "Métropole de Lyon" in by_code["69123"][1]


def test_metropoles_rule_refuses_a_table_with_another_count(national_communes) -> None:
    changed = national_communes.copy()
    changed.loc[changed["epci"] == "243100518", "nature_epci"] = "CU"
    with pytest.raises(ReferenceDataError, match=r"22 métropoles attendues .* 21 trouvées"):
        URBAN_RULES["hors-metropoles"].evaluate(changed)


def test_a_distance_beyond_500_m_needs_no_npnru_distance() -> None:
    assert preset(near_distance_m=2000).near_distance_m == 2000
