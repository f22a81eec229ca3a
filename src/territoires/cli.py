"""Command line interface ``territoires``, built with typer.

The commands only parse arguments, call the library and print its results: no business
logic lives here. Every :class:`territoires.TerritoiresError` raised by a command, of this
module or added later to :data:`app`, is printed in red on stderr and ends the run with
exit code 1 (see :class:`TerritoiresGroup`).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from . import catalogue, loaders, settings
from ._errors import DataNotFoundError, TerritoiresError
from .catalogue import Dataset

#: Kinds (and vintage) read by ``load_qpv()`` and ``load_communes()`` with their defaults.
_NEEDED: tuple[tuple[str, int | None], ...] = (
    ("qpv", 2024),
    ("communes_contours", None),
    ("populations", None),
    ("densite", None),
    ("zonages", None),
)


def print_error(message: str) -> None:
    """Print an error message in red on stderr.

    Parameters
    ----------
    message : str
        What went wrong and what to do, in French.
    """
    typer.secho(f"Erreur : {message}", fg=typer.colors.RED, err=True)


class TerritoiresGroup(TyperGroup):
    """Command group that turns every :class:`TerritoiresError` into a clear failure.

    The error message is printed in red on stderr and the process exits with code 1,
    without a traceback. Sub-groups and commands added later inherit this behaviour,
    since their exceptions all pass through the root group.
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, reporting library errors instead of raising them."""
        try:
            return super().invoke(ctx)
        except TerritoiresError as error:
            print_error(str(error))
            raise typer.Exit(code=1) from error


app = typer.Typer(
    name="territoires",
    cls=TerritoiresGroup,
    help=(
        "Éligibilité des tiers-lieux (QPV, hors grands centres urbains) et couverture des "
        "territoires, avec les données publiques officielles."
    ),
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(
    help="Jeux de données de référence : catalogue, téléchargement, description.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


def _restore_env(name: str, value: str | None) -> None:
    """Put an environment variable back to `value` (unset it when `value` is None)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


@app.callback()
def _options(
    ctx: typer.Context,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help=(
                f"Dossier miroir des données de référence ; remplace {settings.DATA_DIR_ENV} "
                "le temps de la commande."
            ),
            exists=True,
            file_okay=False,
            dir_okay=True,
            resolve_path=True,
        ),
    ] = None,
) -> None:
    """Apply the global options for the duration of the command."""
    if data_dir is not None:
        ctx.call_on_close(
            partial(_restore_env, settings.DATA_DIR_ENV, os.environ.get(settings.DATA_DIR_ENV))
        )
        os.environ[settings.DATA_DIR_ENV] = str(data_dir)


def _on_disk(dataset: Dataset) -> tuple[str, Path | None]:
    """Return where the file of a dataset lies (``miroir``, ``cache``, ``absent``) and its path."""
    mirrored = dataset.mirror_path()
    if mirrored is not None:
        return "miroir", mirrored
    if dataset.cache_path.is_file():
        return "cache", dataset.cache_path
    return "absent", None


@data_app.command("list")
def list_datasets() -> None:
    """Liste les jeux de données du catalogue et indique s'ils sont sur le disque."""
    table = Table(title="Catalogue des sources officielles", box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("jeu", "type", "millésime", "disque"):
        table.add_column(header, no_wrap=True)
    table.add_column("éditeur")
    for dataset in catalogue.datasets().values():
        table.add_row(
            dataset.name,
            dataset.kind,
            str(dataset.vintage),
            _on_disk(dataset)[0],
            escape(dataset.publisher),
        )
    Console().print(table)


def _needed_datasets() -> tuple[list[Dataset], list[str]]:
    """Return the datasets read by default by the loaders, and why others cannot be had."""
    found, errors = [], []
    for kind, vintage in _NEEDED:
        try:
            found.append(catalogue.choose(kind, vintage))
        except DataNotFoundError as error:
            errors.append(str(error))
    return found, errors


@data_app.command("fetch")
def fetch(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=(
                "Noms des jeux à obtenir (voir « territoires data list ») ; par défaut, ceux "
                "que lisent load_qpv() et load_communes()."
            ),
            show_default=False,
        ),
    ] = None,
    all_datasets: Annotated[
        bool, typer.Option("--all", help="Obtenir tous les jeux téléchargeables du catalogue.")
    ] = False,
) -> None:
    """Obtient des jeux de données (miroir, cache ou téléchargement) et affiche leur chemin."""
    if names and all_datasets:
        raise typer.BadParameter("donnez des noms de jeux ou --all, pas les deux")
    errors: list[str] = []
    if all_datasets:
        targets = [ds for ds in catalogue.datasets().values() if ds.downloadable]
    elif names:
        targets = [catalogue.get(name) for name in names]
    else:
        targets, errors = _needed_datasets()
    for dataset in targets:
        try:
            path = catalogue.fetch(dataset, progress=True)
        except TerritoiresError as error:
            errors.append(str(error))
            continue
        typer.echo(f"{dataset.name} : {path}")
    for message in errors:
        print_error(message)
    if errors:
        raise typer.Exit(code=1)


@data_app.command("info")
def info(
    name: Annotated[str, typer.Argument(help="Nom du jeu dans le catalogue.", show_default=False)],
) -> None:
    """Décrit un jeu de données : provenance, fichier local, empreinte, nombre de lignes."""
    dataset = catalogue.get(name)
    where, path = _on_disk(dataset)
    if dataset.url:
        source = dataset.url
    elif dataset.datagouv:
        source = (
            f"data.gouv.fr, jeu {dataset.datagouv['dataset']}, "
            f"ressource {dataset.datagouv['resource']}"
        )
    else:
        source = "aucune (miroir seulement)"
    coverage = dataset.coverage
    if dataset.departements:
        coverage += f" (départements {', '.join(dataset.departements)})"
    lines: list[tuple[str, object]] = [
        ("jeu", dataset.name),
        ("titre", dataset.title),
        ("type", dataset.kind),
        ("millésime", dataset.vintage),
        ("éditeur", dataset.publisher),
        ("licence", dataset.licence),
        ("couverture", coverage),
        ("format", dataset.format),
        ("source", source),
        ("page", dataset.page or "—"),
        ("fichier local", f"{path} ({where})" if path else "absent"),
        ("sha256 attendu", dataset.sha256 or "non publié"),
    ]
    if path is None:
        lines += [
            ("sha256 obtenu", "—"),
            ("lignes", f"inconnu : fichier absent (territoires data fetch {dataset.name})"),
        ]
    else:
        frame, read_from = loaders.read(dataset)
        actual = read_from["sha256"]
        if dataset.sha256:
            actual += " (conforme)" if actual == dataset.sha256 else " (DIFFÉRENTE du catalogue)"
        lines += [("sha256 obtenu", actual), ("lignes", len(frame))]
    width = max(len(key) for key, _ in lines)
    for key, value in lines:
        typer.echo(f"{key:<{width}} : {value}")


def main() -> None:
    """Run the ``territoires`` command."""
    app()
