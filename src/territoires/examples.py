"""Example places shipped with territoires (the repository's ``examples/`` folder).

The installed package carries them (``territoires/exemples``, see ``pyproject.toml``), so
that a notebook or a script copied anywhere finds them without the repository::

    territoires.classify(territoires.examples.path())
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ._errors import DataNotFoundError

#: The fictitious places of the guide, the demo and the notebooks.
PLACES = "lieux_exemple.csv"


def path(name: str = PLACES) -> Path:
    """Path of an example file, in the installed package or else in the repository.

    Parameters
    ----------
    name : str, default :data:`PLACES`
        File name inside the examples folder.

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    DataNotFoundError
        No such example file.
    """
    packaged = resources.files("territoires") / "exemples" / name
    found = (
        Path(str(packaged))
        if packaged.is_file()
        else Path(__file__).resolve().parents[2] / "examples" / name
    )
    if not found.is_file():
        raise DataNotFoundError(f"fichier d'exemple {name!r} introuvable (cherché dans {found})")
    return found
