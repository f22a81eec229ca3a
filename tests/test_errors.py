"""The error family: one class per kind of failure, each also the builtin callers expect."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import typer
from shapely.geometry import Point
from typer.testing import CliRunner

import territoires
from territoires import _http, catalogue, coverage, crs, export, maps, settings
from territoires.cli import TerritoiresGroup, app, cli_message
from territoires.rules import preset

PAYLOAD = b"contenu servi"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_url(monkeypatch: pytest.MonkeyPatch):
    """URL of a file served on 127.0.0.1, downloads allowed."""
    monkeypatch.setattr(settings, "offline", False)
    monkeypatch.setattr(settings, "retries", 1)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/fichier.bin"
    server.shutdown()
    server.server_close()


def _places() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"nom": ["a"]}, geometry=[Point(1.4, 43.6)], crs="EPSG:4326")


def test_every_error_is_a_territoires_error_and_a_builtin() -> None:
    expected = {
        territoires.InputError: (ValueError,),
        territoires.ColumnError: (territoires.InputError, KeyError, ValueError),
        territoires.OutputError: (ValueError,),
        territoires.RulesError: (ValueError,),
        territoires.UnknownNameError: (KeyError, ValueError),
        territoires.UnknownRuleError: (territoires.RulesError, KeyError, ValueError),
        territoires.CatalogueError: (ValueError,),
        territoires.DataNotFoundError: (FileNotFoundError,),
        territoires.DownloadError: (OSError,),
        territoires.ChecksumError: (ValueError,),
        territoires.DataFileError: (ValueError,),
        territoires.ReferenceDataError: (ValueError,),
    }
    public = {
        obj
        for obj in vars(territoires).values()
        if isinstance(obj, type) and issubclass(obj, territoires.TerritoiresError)
    }
    assert public == {territoires.TerritoiresError, *expected}  # every class is listed here
    for cls, bases in expected.items():
        assert issubclass(cls, territoires.TerritoiresError), cls
        for base in bases:
            assert issubclass(cls, base), (cls, base)


def test_key_errors_read_as_their_message() -> None:
    """A KeyError's text is its quoted repr; ours read as written, for people."""
    with pytest.raises(KeyError) as info:
        preset("fabriques-2030")
    assert str(info.value).startswith("jeu de règles inconnu 'fabriques-2030'")


def test_input_error(tmp_path: Path) -> None:
    with pytest.raises(territoires.InputError, match="fichier introuvable"):
        territoires.read_places(tmp_path / "absent.csv")
    with pytest.raises(territoires.InputError, match="CRS"):
        crs.to_metric(gpd.GeoDataFrame(geometry=[Point(0, 0)]), "metropole")


def test_column_error() -> None:
    frame = pd.DataFrame({"dep": ["31"], "manque": [1]})
    with pytest.raises(territoires.ColumnError, match="'inconnue' absente"):
        coverage.most_underserved(frame, by="inconnue")
    with pytest.raises(territoires.ColumnError, match="lon='longitude' absente"):
        territoires.read_places(pd.DataFrame({"x": [1.0], "y": [2.0]}), lon="longitude")


def test_output_error(tmp_path: Path) -> None:
    with pytest.raises(territoires.OutputError, match=r"\.csv"):
        export.write_results(_places(), tmp_path / "sortie.txt")
    assert list(tmp_path.iterdir()) == []


def test_rules_errors() -> None:
    with pytest.raises(territoires.RulesError, match="near_distance_m"):
        preset(near_distance_m=-1)
    with pytest.raises(territoires.RulesError, match="millésime QPV"):
        preset(qpv_vintage=2020)
    with pytest.raises(territoires.UnknownRuleError, match="metropoles"):
        preset(urban="metropoles")


def test_unknown_name_error() -> None:
    with pytest.raises(territoires.UnknownNameError, match="territoire inconnu 'lune'"):
        crs.territory("lune")


def test_catalogue_error() -> None:
    with pytest.raises(territoires.CatalogueError, match="qpv2030"):
        catalogue.get("qpv2030")


def test_data_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(territoires.DataNotFoundError, match="qpv2024"):
        catalogue.fetch("qpv2024", data_dir=tmp_path)


def test_download_error_offline(tmp_path: Path) -> None:
    with pytest.raises(territoires.DownloadError, match=settings.OFFLINE_ENV):
        _http.download("http://127.0.0.1:9/fichier.bin", tmp_path / "f.bin")


def test_checksum_error(local_url: str, tmp_path: Path) -> None:
    good = hashlib.sha256(PAYLOAD).hexdigest()
    assert _http.download(local_url, tmp_path / "ok.bin", sha256=good).read_bytes() == PAYLOAD
    with pytest.raises(territoires.ChecksumError, match="somme de contrôle différente"):
        _http.download(local_url, tmp_path / "ko.bin", sha256="0" * 64)
    assert not (tmp_path / "ko.bin").exists()


def test_maps_input_error() -> None:
    with pytest.raises(territoires.InputError, match="CRS"):
        maps.eligibility_map(
            gpd.GeoDataFrame({"verdict": ["qpv"]}, geometry=[Point(0, 0)]),
            gpd.GeoDataFrame(geometry=[]),
            near_distance_m=300,
        )


@pytest.mark.parametrize(
    "error",
    [
        territoires.UnknownNameError("territoire inconnu 'lune' ; connus : metropole"),
        territoires.ColumnError("colonne lon='x' absente"),
        territoires.OutputError("format de sortie inconnu '.txt'"),
        territoires.DownloadError("cannot reach example.org"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_cli_prints_every_error_of_the_family(error: Exception) -> None:
    """Any command, even one added later, turns the family into « Erreur : … », exit 1."""
    demo = typer.Typer(cls=TerritoiresGroup)

    @demo.command()
    def fail() -> None:
        raise error

    @demo.command()
    def other() -> None:
        pass

    result = CliRunner().invoke(demo, ["fail"])
    assert result.exit_code == 1
    # worded for the command line: « colonne lon='x' » names the option « --lon 'x' »
    assert result.stderr == f"Erreur : {cli_message(error.args[0])}\n"


def test_cli_bad_rules_are_usage_errors_quoted_once() -> None:
    result = CliRunner().invoke(app, ["check", "1.4", "43.6", "--regles", "fabriques-2030"])
    assert result.exit_code == 2
    assert "jeu de règles inconnu 'fabriques-2030'" in " ".join(result.stderr.split())
