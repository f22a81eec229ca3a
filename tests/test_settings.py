"""Settings: attributes filled from the environment once, then read by the library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point

import territoires
from territoires import catalogue, settings

_SHOW = (
    "import json; from territoires import settings as s; "
    "print(json.dumps([str(s.data_dir), str(s.cache_dir), s.offline, s.datagouv_api]))"
)


def _settings_in_new_process(**env: str) -> list:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("TERRITOIRES_")}
    done = subprocess.run(
        [sys.executable, "-c", _SHOW], env={**clean, **env}, capture_output=True, check=True
    )
    return json.loads(done.stdout)


def test_filled_from_the_environment_at_import(tmp_path: Path) -> None:
    shown = _settings_in_new_process(
        TERRITOIRES_DATA_DIR=str(tmp_path / "miroir"),
        TERRITOIRES_CACHE_DIR=str(tmp_path / "cache"),
        TERRITOIRES_OFFLINE="oui",
        TERRITOIRES_DATAGOUV_API="http://127.0.0.1:1/api/1/",
    )
    assert shown == [
        str(tmp_path / "miroir"),
        str(tmp_path / "cache"),
        True,
        "http://127.0.0.1:1/api/1",
    ]


def test_defaults_without_environment() -> None:
    data_dir, cache_dir, offline, api = _settings_in_new_process()
    assert data_dir == "None" and offline is False
    assert Path(cache_dir).name == "territoires"
    assert api == "https://www.data.gouv.fr/api/1"


def test_environment_changed_after_import_is_ignored(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    """One mechanism: the attribute; the environment only seeds it."""
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(tmp_path))
    assert settings.data_dir == data_dir
    assert catalogue.get("regions_anct2025").mirror_path() == data_dir / "admin" / "regions.geojson"


def test_attributes_are_read_when_needed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dataset = catalogue.get("regions_anct2025")
    monkeypatch.setattr(settings, "cache_dir", tmp_path / "ailleurs")
    assert dataset.cache_path == tmp_path / "ailleurs" / dataset.kind / dataset.filename
    monkeypatch.setattr(settings, "data_dir", tmp_path)
    assert dataset.mirror_path() is None


def test_switching_the_data_folder_in_one_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_dir: Path
) -> None:
    """A notebook that assigns settings.data_dir gets the new folder's reference."""
    point = (1.4020, 43.5750)  # in a Toulouse QPV of the mirror
    monkeypatch.setattr(settings, "data_dir", data_dir)
    first = territoires.reference()
    assert territoires.check(*point)["verdict"] == "qpv"
    # the same folder, however spelled, is one cache entry
    monkeypatch.chdir(data_dir.parent)
    assert territoires.reference(data_dir=Path(data_dir.name)) is first

    # another mirror: same communes, the QPV holding the point removed
    other = tmp_path / "autre-miroir"
    (other / "qpv").mkdir(parents=True)
    for name in ("admin", "communes"):
        (other / name).symlink_to(data_dir / name)
    qpv = gpd.read_file(data_dir / "qpv" / "qpv2015_occitanie.geojson")
    keep = ~qpv.contains(Point(*point))
    assert (~keep).sum() == 1
    qpv[keep].to_file(other / "qpv" / "qpv2015_occitanie.geojson", driver="GeoJSON")
    monkeypatch.setattr(settings, "data_dir", other)
    # an edited reference file is refused unless accepted, and then flagged
    with pytest.raises(territoires.ChecksumError, match="qpv2015_occitanie"):
        territoires.reference()
    monkeypatch.setattr(settings, "accept_modified", True)
    assert territoires.reference() is not first
    assert territoires.check(*point)["verdict"] != "qpv"
    assert len(territoires.reference().qpv) == len(qpv) - 1
    (edited,) = [s for s in territoires.reference().sources if s["jeu"] == "qpv2015_occitanie"]
    assert edited["modifie_localement"] is True

    # and a folder without the data fails instead of answering from the old one
    monkeypatch.setattr(settings, "data_dir", tmp_path / "vide")
    with pytest.raises(territoires.DataNotFoundError, match="vide"):
        territoires.reference()
