"""Shared fixtures: the offline mirror of real official data.

Tests read real data from ``TERRITOIRES_DATA_DIR`` when set, else from ``../shared/data``
beside the project root. When the folder is missing the tests that need it FAIL (they
never skip): CI must always run them on the real files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from territoires import settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _mirror() -> Path:
    value = os.environ.get(settings.DATA_DIR_ENV, "").strip()
    return Path(value) if value else (ROOT.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data mirror; fails the test when it is missing."""
    folder = _mirror()
    if not (folder / "communes" / "communes_cog2024.gpkg").is_file():
        pytest.fail(
            f"real data mirror not found at {folder}: set {settings.DATA_DIR_ENV} or place "
            "the shared data beside the project (../shared/data)"
        )
    return folder


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch, tmp_path_factory) -> None:
    """Every test reads the mirror, caches into a private folder and never goes online.

    The settings attributes are what the library reads; the environment variables are
    set too, for the subprocesses (CLI, notebook kernels) a test starts.
    """
    cache = tmp_path_factory.getbasetemp() / "cache"
    monkeypatch.setattr(settings, "data_dir", _mirror())
    monkeypatch.setattr(settings, "cache_dir", cache)
    monkeypatch.setattr(settings, "offline", True)
    monkeypatch.setenv(settings.DATA_DIR_ENV, str(_mirror()))
    monkeypatch.setenv(settings.CACHE_DIR_ENV, str(cache))
    monkeypatch.setenv(settings.OFFLINE_ENV, "1")


CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL_CHROMIUM = (
    "apt-get update && apt-get install -y chromium chromium-driver ; pip install selenium"
)


def start_chromium(profile: Path, downloads: Path | None = None) -> Any:
    """A headless Chromium driven by selenium; fails with the install command when absent.

    Parameters
    ----------
    profile : pathlib.Path
        Private profile folder.
    downloads : pathlib.Path, optional
        Folder where downloads are saved without asking.
    """
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail(f"selenium is not installed: {INSTALL_CHROMIUM}")
    if not Path(CHROMEDRIVER).is_file() or not shutil.which("chromium"):
        pytest.fail(f"Chromium or chromedriver missing: {INSTALL_CHROMIUM}")
    options = webdriver.ChromeOptions()
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "safebrowsing.enabled": False,
            },
        )
    return webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options
    )
