"""French wording of numbers: the one set of rules used by motifs, maps and reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from territoires import french
from territoires.french import NO_BREAK_SPACE, THOUSANDS


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (12345, 0, f"12{THOUSANDS}345"),
        (12345.6, 0, f"12{THOUSANDS}346"),
        (4.25, 1, "4,2"),
        (1234567.891, 2, f"1{THOUSANDS}234{THOUSANDS}567,89"),
        (300.0, None, "300"),
        (250.5, None, "250,5"),
        (-0.2, 0, "0"),
        (None, 0, "n.d."),
        (float("nan"), 0, "n.d."),
        (pd.NA, 1, "n.d."),
    ],
)
def test_number(value, decimals, expected) -> None:
    assert french.number(value, decimals) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "0 lieu classé"),
        (1, "1 lieu classé"),
        (2, "2 lieux classés"),
        (12345, f"12{THOUSANDS}345 lieux classés"),
    ],
)
def test_count_agrees_the_noun(value, expected) -> None:
    assert french.count(value, "lieu classé", "lieux classés") == expected


def test_percent() -> None:
    assert french.percent(0.453) == "45,3 %"
    assert french.percent(0.453, NO_BREAK_SPACE) == "45,3\u00a0%"
    assert french.percent(None) == "n.d."


def test_distances_vectorised_and_scalar_agree() -> None:
    metres = np.array([0.4, 425, 999.4, 999.6, 1500, 4249, 12000, 1234567, np.nan])
    expected = [
        "0 m",
        "425 m",
        "999 m",
        "1,0 km",  # 999,6 m rounds to one kilometre: written in kilometres
        "1,5 km",
        "4,2 km",
        "12,0 km",
        f"1{THOUSANDS}234,6 km",
        None,
    ]
    assert french.distances(metres).to_pylist() == expected
    assert [french.distance(m) for m in metres] == [*expected[:-1], "inconnue"]


def test_distances_in_html_never_wrap() -> None:
    assert french.distance(5200, NO_BREAK_SPACE) == "5,2\u00a0km"
    assert french.distances([10.0], NO_BREAK_SPACE).to_pylist() == ["10\u00a0m"]


def test_distances_of_nothing() -> None:
    assert french.distances(np.array([])).to_pylist() == []
