"""The example places ship with the package: found without the repository's layout."""

from __future__ import annotations

from pathlib import Path

import pytest

import territoires
from territoires import examples

REPOSITORY_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lieux_exemple.csv"


def test_example_places_are_the_repository_file():
    found = territoires.examples.path()
    assert found.name == examples.PLACES
    assert found.read_bytes() == REPOSITORY_EXAMPLE.read_bytes()


def test_a_missing_example_is_named_in_french():
    with pytest.raises(
        territoires.DataNotFoundError, match=r"fichier d'exemple 'absent\.csv' introuvable"
    ):
        examples.path("absent.csv")
