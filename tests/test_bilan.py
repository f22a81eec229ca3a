"""Tests of territoires.bilan: the 2019 envelopes counted on real places, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from territoires import bilan, export
from territoires._errors import InputError, OutputError
from territoires.cli import app

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"
runner = CliRunner()

#: Real places of the mirror, each with what it is under the default rules.
PLACES = pd.DataFrame(
    {
        "nom": [
            "Foix, quartier prioritaire",  # QPV of a town off the large urban centres
            "Capitole, Toulouse",  # large urban centre, 1.5 km from any QPV
            "La Paillade, numérique",  # 48 m from a QPV, flagged numérique
            "La Paillade, non numérique",  # same place, not flagged
            "Reynerie, numérique",  # in a QPV of Toulouse, flagged
            "Bastille, Paris",  # no QPV layer for Paris: unknown
            "Coordonnées inversées",  # invalid coordinates
            "Conques, drapeau illisible",  # valid place, unreadable flag
        ],
        "lon": [1.6050, 1.4442, 3.8230, 3.8230, 1.4020, 2.3690, 43.6047, 2.3980],
        "lat": [42.9650, 43.6047, 43.6300, 43.6300, 43.5750, 48.8530, 1.4442, 44.5990],
        "numerique": ["", "non", "oui", "non", "Oui", None, "oui", "peut-être"],
    }
)


@pytest.fixture(scope="module")
def report(data_dir: Path) -> bilan.Bilan:
    return bilan.bilan(PLACES, data_dir=data_dir)


def test_default_envelopes_are_the_2019_call() -> None:
    envelopes = bilan.load_envelopes()

    assert envelopes.name == "fabriques-2019"
    assert [(e.code, e.target) for e in envelopes.envelopes] == [
        ("hors_grands_centres_urbains", 150),
        ("qpv", 120),
        ("qpv_numerique", 30),
    ]
    assert sum(e.target for e in envelopes.envelopes) == 300
    numeric = envelopes.envelopes[2]
    assert numeric.criteria == ("in_qpv", "near_qpv") and numeric.numerique is True
    assert envelopes.envelopes[1].numerique is False
    assert Path(envelopes.source).name == "fabriques-2019.json"
    assert bilan.load_envelopes("fabriques-2019") == envelopes


def test_every_place_comes_out_in_order_with_its_status(report) -> None:
    places = report.lieux
    assert list(places["nom"]) == list(PLACES["nom"])
    assert list(places["numerique"].fillna("∅")) == list(PLACES["numerique"].fillna("∅"))
    assert dict(zip(places["nom"], places["bilan"], strict=True)) == {
        "Foix, quartier prioritaire": "plusieurs",
        "Capitole, Toulouse": "aucune",
        "La Paillade, numérique": "une",
        "La Paillade, non numérique": "aucune",
        "Reynerie, numérique": "une",
        "Bastille, Paris": "a_verifier",
        "Coordonnées inversées": "invalide",
        "Conques, drapeau illisible": "invalide",
    }
    envelopes = dict(zip(places["nom"], places["enveloppes"], strict=True))
    assert envelopes["Foix, quartier prioritaire"] == "hors_grands_centres_urbains;qpv"
    assert envelopes["La Paillade, numérique"] == "qpv_numerique"
    assert envelopes["Reynerie, numérique"] == "qpv_numerique"
    assert envelopes["La Paillade, non numérique"] == ""  # near only: not the 120 envelope


def test_a_place_in_both_envelopes(report) -> None:
    foix = report.lieux.iloc[0]
    assert foix["verdict"] == "qpv" and foix["hors_grands_centres_urbains"]
    assert report.synthese["plusieurs"] == 1


def test_invalid_rows_are_reported_with_their_reason(report) -> None:
    places = report.lieux.set_index("nom")
    assert places.loc["Coordonnées inversées", "bilan_motif"].startswith("Entrée invalide")
    assert places.loc["Conques, drapeau illisible", "bilan_motif"] == (
        "numerique : valeur « peut-être » non reconnue, attendu oui ou non (ou vide pour non)"
    )
    # the place itself is valid: its verdict stays, it only counts toward no envelope
    assert places.loc["Conques, drapeau illisible", "verdict"] == "hors_grands_centres_urbains"
    assert pd.isna(places.loc["Conques, drapeau illisible", "numerique_lu"])
    assert places.loc["Bastille, Paris", "bilan_motif"].startswith("Indéterminé")
    assert report.synthese["invalides"] == 2


def test_envelope_counts_and_summary(report) -> None:
    table = report.enveloppes.set_index("code")
    assert table["lieux"].to_dict() == {
        "hors_grands_centres_urbains": 1,
        "qpv": 1,
        "qpv_numerique": 2,
    }
    assert table.loc["qpv", "ecart"] == 1 - 120
    assert table.loc["qpv_numerique", "taux"] == pytest.approx(2 / 30)
    assert table.loc["qpv", "a_verifier"] == 1  # Bastille: its QPV cannot be checked
    assert report.synthese == {
        "lieux": 8,
        "valides": 6,
        "invalides": 2,
        "plusieurs": 1,
        "aucune": 2,
        "a_verifier": 1,
        "numeriques": 3,
        "colonne_numerique": True,
    }
    text = report.resume()
    assert "Hors grands centres urbains : 1 / 150 (0,7 %)" in text
    assert "Fabriques numériques en QPV ou à proximité immédiate : 2 / 30 (6,7 %)" in text
    assert "Dans plusieurs enveloppes (comptés dans chacune) : 1 ; dans aucune : 2" in text
    assert "lignes invalides : 2" in text
    # the two « à vérifier » counts say what they count: possible places per envelope
    # (some count in another envelope already), places without any sure envelope
    assert (
        "En quartier prioritaire (hors Fabriques numériques) : 1 / 120 (0,8 %), "
        "+ 1 possible (critère inconnu)" in text
    )
    assert "sans enveloppe sûre, à vérifier : 1 ;" in text
    assert (
        "Bilan « Fabriques de Territoire, appel à manifestation d'intérêt 2019 » : 8 lieux," in text
    )
    assert "règles « fabriques-2019 »" in text and "proximité 300 m" in text


def test_share_by_region(report) -> None:
    regions = report.regions.set_index("region")
    assert regions.loc["Occitanie", "lieux"] == 5
    assert regions.loc["Île-de-France", "lieux"] == 1
    assert regions["qpv_numerique_part"].sum() == pytest.approx(1)
    assert regions.loc["Occitanie", "qpv_numerique"] == 2
    assert regions.loc["Île-de-France", "hors_grands_centres_urbains_part"] == 0


def test_regions_are_named_without_being_given(report) -> None:
    """assess() names the régions itself: « Occitanie », not a bare « 76 »."""
    again = bilan.assess(report.lieux.drop(columns=bilan.PLACE_COLUMNS))
    assert dict(zip(again.regions["reg"], again.regions["region"], strict=True))["76"] == (
        "Occitanie"
    )
    assert "Lieux valides par région : Occitanie 5" in again.resume()


def test_numerique_flags_as_spreadsheets_give_them(report) -> None:
    classified = report.lieux.drop(columns=bilan.PLACE_COLUMNS).iloc[[2, 3, 4]]
    for values in ([1.0, 0.0, 1.0], [True, False, True], ["X", "Non", "VRAI"]):
        again = bilan.assess(classified.assign(numerique=values))
        assert again.lieux["numerique_lu"].tolist() == [True, False, True]
        assert again.synthese["invalides"] == 0


def test_no_numerique_column(data_dir: Path) -> None:
    report = bilan.bilan(PLACES.drop(columns="numerique").head(3), data_dir=data_dir)
    assert not report.synthese["colonne_numerique"]
    assert "Colonne « numerique » absente" in report.resume()
    assert report.enveloppes.set_index("code").loc["qpv_numerique", "lieux"] == 0


def _envelope_file(tmp_path: Path, envelopes: list, name: str = "appel.json") -> Path:
    path = tmp_path / name
    document = {"nom": "appel-test", "titre": "Appel test", "reference": "Texte de l'appel"}
    path.write_text(json.dumps({**document, "enveloppes": envelopes}), encoding="utf-8")
    return path


def test_custom_envelope_file(tmp_path: Path, data_dir: Path) -> None:
    path = _envelope_file(
        tmp_path,
        [
            {
                "code": "proximite",
                "titre": "En QPV ou à proximité",
                "cible": 4,
                "criteres": ["in_qpv", "near_qpv"],
                "numerique": None,
            }
        ],
    )
    report = bilan.bilan(PLACES, envelopes=path, data_dir=data_dir)

    assert report.envelopes.name == "appel-test"
    assert report.enveloppes["code"].tolist() == ["proximite"]
    assert report.enveloppes["lieux"].tolist() == [4]  # Foix, Paillade twice, Reynerie
    assert "En QPV ou à proximité : 4 / 4 (100,0 %)" in report.resume()
    assert report.attrs["enveloppes"]["fichier"] == str(path)


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        ({"titre": "x", "cible": 1, "criteres": ["in_qpv"]}, "« code » None"),
        ({"code": "a", "titre": "x", "cible": 0, "criteres": ["in_qpv"]}, "« cible » 0"),
        ({"code": "a", "titre": "x", "cible": "10", "criteres": ["in_qpv"]}, "« cible » '10'"),
        ({"code": "a", "titre": "x", "cible": 1, "criteres": ["rural"]}, "« criteres »"),
        ({"code": "a", "titre": "", "cible": 1, "criteres": ["in_qpv"]}, "« titre »"),
        (
            {"code": "a", "titre": "x", "cible": 1, "criteres": ["in_qpv"], "numerique": "oui"},
            "« numerique » 'oui'",
        ),
        ({"code": "bilan", "titre": "x", "cible": 1, "criteres": ["in_qpv"]}, "réservé"),
    ],
)
def test_invalid_envelope_file(tmp_path: Path, envelope: dict, message: str) -> None:
    path = _envelope_file(tmp_path, [envelope])
    with pytest.raises(InputError, match="enveloppe 1") as error:
        bilan.load_envelopes(path)
    assert message in str(error.value)


def test_unreadable_envelope_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"introuvable.*fabriques-2019"):
        bilan.load_envelopes(tmp_path / "absent.json")
    broken = tmp_path / "casse.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(InputError, match="JSON invalide"):
        bilan.load_envelopes(broken)
    same = {"code": "a", "titre": "x", "cible": 1, "criteres": ["in_qpv"]}
    with pytest.raises(InputError, match="en double : a"):
        bilan.load_envelopes(_envelope_file(tmp_path, [same, same]))
    with pytest.raises(InputError, match="« enveloppes »"):
        bilan.load_envelopes(_envelope_file(tmp_path, []))


def test_assess_needs_classified_places() -> None:
    with pytest.raises(InputError, match=r"sortie de territoires\.classify"):
        bilan.assess(PLACES)


def test_workbook(report, tmp_path: Path) -> None:
    path = export.write_bilan(report, tmp_path / "bilan.xlsx")
    sheets = pd.read_excel(path, sheet_name=None, dtype=str)

    assert list(sheets) == ["bilan", "regions", "lieux", "regles"]
    assert sheets["lieux"]["nom"].tolist() == PLACES["nom"].tolist()
    assert sheets["lieux"]["bilan"].tolist()[:2] == ["plusieurs", "aucune"]
    assert sheets["bilan"]["code"].tolist()[:3] == [
        "hors_grands_centres_urbains",
        "qpv",
        "qpv_numerique",
    ]
    assert "Hors grands centres urbains : 1 / 150" in sheets["bilan"]["titre"].iloc[-1]
    assert "Occitanie" in sheets["regions"]["region"].tolist()
    assert sheets["regles"]["clé"].str.startswith("enveloppes").any()
    assert export.provenance_path(path).is_file()
    with pytest.raises(OutputError, match=r"\.xlsx"):
        export.write_bilan(report, tmp_path / "bilan.csv")


# --------------------------------------------------------------------------------- CLI


def test_cli_bilan_on_the_example(data_dir: Path, tmp_path: Path) -> None:
    output = tmp_path / "bilan.xlsx"
    result = runner.invoke(app, ["bilan", str(EXAMPLE), "-o", str(output)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Hors grands centres urbains : 11 / 150 (7,3 %)" in out
    assert "En quartier prioritaire (hors Fabriques numériques) : 5 / 120 (4,2 %)" in out
    assert "Fabriques numériques en QPV ou à proximité immédiate : 0 / 30" in out
    assert "Dans plusieurs enveloppes (comptés dans chacune) : 3 ; dans aucune : 4" in out
    assert "lignes invalides : 5" in out
    assert "Colonne « numerique » absente" in out
    assert "Occitanie 16" in out
    assert output.is_file()


def test_cli_bilan_options(data_dir: Path, tmp_path: Path) -> None:
    places = tmp_path / "lieux.csv"
    PLACES.rename(columns={"numerique": "num"}).to_csv(places, sep=";", index=False)
    envelope = _envelope_file(
        tmp_path,
        [{"code": "tout", "titre": "Tout QPV", "cible": 10, "criteres": ["in_qpv", "near_qpv"]}],
    )
    result = runner.invoke(
        app,
        ["bilan", str(places), "--enveloppes", str(envelope), "--numerique", "num"],
    )
    assert result.exit_code == 0, result.output
    assert "Tout QPV : 4 / 10 (40,0 %)" in result.stdout
    assert "lignes invalides : 2" in result.stdout  # the flag column was read
    wide = runner.invoke(app, ["bilan", str(places), "--regles", "fabriques-2019-npnru-500m"])
    assert "proximité 500 m" in wide.stdout
    listed = Path(__file__).resolve().parent / "fixtures" / "npnru" / "liste_npnru_essai.csv"
    npnru = runner.invoke(app, ["bilan", str(places), "--npnru", str(listed)])
    assert npnru.exit_code == 0, npnru.output
    assert "règles « fabriques-2019+npnru »" in npnru.stdout
    assert "proximité 300 m, 500 m autour de 2 QPV NPNRU" in npnru.stdout
    refused = runner.invoke(app, ["bilan", str(places), "-o", str(tmp_path / "b.csv")])
    assert refused.exit_code == 2
    missing = runner.invoke(app, ["bilan", str(places), "--enveloppes", "appel-inconnu"])
    assert missing.exit_code == 1
    assert "introuvable" in missing.stderr
