"""Command line interface ``territoires``, built with typer.

The commands only parse arguments, call the library and print its results: no business
logic lives here. Every :class:`territoires.TerritoiresError` raised by a command, of this
module or added later to :data:`app`, is printed in red on stderr and ends the run with
exit code 1 (see :class:`TerritoiresGroup`).
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup

from . import (
    __version__,
    _cli_french,
    _gc,
    bilan,
    catalogue,
    eligibility,
    export,
    french,
    geocode,
    loaders,
    outputs,
    places,
    prepared,
    settings,
)
from ._errors import DataNotFoundError, InputError, OutputError, RulesError, TerritoiresError
from .catalogue import Dataset
from .rules import CGI_278_SEXIES, DEFAULT_PRESET, PRESETS, URBAN_RULES, VERDICTS, Rules, preset

#: Kinds (and vintage) that ``territoires data fetch`` gets when no dataset is named: the
#: current QPV geography (2024; ``load_qpv()`` without a vintage reads the 2015 one of
#: the default rules) and the commune layers ``load_communes()`` reads by default.
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


#: Library argument names written in error messages (``lon=``), and the option a user of
#: the command types instead.
_OPTIONS = {
    "lon": "--lon",
    "lat": "--lat",
    "crs": "--crs",
    "input_crs": "--crs",
    "nom": "--nom",
    "sheet": "--feuille",
}
_ARGUMENT = re.compile(r"(?<![\w-])(" + "|".join(_OPTIONS) + r")=(?![\d.+-])")


def cli_message(message: str) -> str:
    """Word a library error for the command line: ``lon=`` becomes ``--lon``.

    Values such as ``lon=2.35`` (coordinates quoted in a message) are left as they are.
    """
    return _ARGUMENT.sub(
        lambda match: _OPTIONS[match.group(1)] + (" " if match.end() < len(message) else ""),
        message,
    ).replace("  ", " ")


#: Exceptions that typer reports with its rich help machinery, in French once
#: :func:`territoires._cli_french.install` has run (imported only when one occurs).
_TYPER_REPORTS = (ClickException, typer.Abort, EOFError)


class TerritoiresGroup(_cli_french.FrenchHelp, TyperGroup):
    """Command group that speaks French and turns every :class:`TerritoiresError` into a
    clear failure.

    Help pages and usage errors are in French (:mod:`territoires._cli_french`). A library
    error is printed in red on stderr, with the options of the command named as the user
    types them, and the process exits with code 1, without a traceback. Sub-groups and
    commands added later inherit this behaviour, since they all run through the root group;
    declare commands with ``cls=TerritoiresCommand`` so that their help is French too.
    """

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the global options, reporting usage errors in French."""
        try:
            return super().make_context(*args, **kwargs)
        except NoArgsIsHelpError as error:  # the help is drawn already: no empty « Erreur »
            raise typer.Exit(code=2) from error
        except UsageError as error:
            _cli_french.install()
            raise _french_usage_error(error) from error
        except _TYPER_REPORTS:
            _cli_french.install()
            raise

    def invoke(self, ctx: typer.Context) -> Any:
        """Run the command, reporting library errors instead of raising them."""
        try:
            return super().invoke(ctx)
        except TerritoiresError as error:
            print_error(cli_message(str(error)))
            raise typer.Exit(code=1) from error
        except UsageError as error:
            _cli_french.install()
            raise _french_usage_error(error) from error
        except BrokenPipeError:  # the reader stopped reading (`| head`): click exits quietly
            raise
        except OSError as error:  # a file the system refuses: permission, full disk…
            where = f"{error.filename} : " if error.filename else ""
            print_error(f"{where}{error.strerror or error} (erreur système)")
            raise typer.Exit(code=1) from error
        except _TYPER_REPORTS:
            _cli_french.install()
            raise


class TerritoiresCommand(_cli_french.FrenchHelp, TyperCommand):
    """A command of ``territoires``: help page in French."""


def _french_usage_error(error: UsageError) -> UsageError:
    """The same usage error (exit code 2, help hint) with its message in French."""
    french = UsageError(_cli_french.translate_error(error.format_message()), ctx=error.ctx)
    french.exit_code = error.exit_code
    return french


class _EchoHandler(logging.Handler):
    """Log records of territoires printed on the current stderr, one dim line each."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.secho(self.format(record), dim=True, err=True)


_LOG_HANDLER = _EchoHandler()
_CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="territoires",
    cls=TerritoiresGroup,
    help=(
        "Éligibilité des tiers-lieux (QPV, hors grands centres urbains) et couverture des "
        "territoires, avec les données publiques officielles."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings=_CONTEXT,
    options_metavar="[OPTIONS]",
    subcommand_metavar="COMMANDE [ARGUMENTS]...",
)
data_app = typer.Typer(
    cls=TerritoiresGroup,
    help="Jeux de données de référence : catalogue, téléchargement, description.",
    no_args_is_help=True,
    context_settings=_CONTEXT,
    subcommand_metavar="COMMANDE [ARGUMENTS]...",
)
app.add_typer(data_app, name="data")


def _restore_data_dir(value: Path | None) -> None:
    """Put :data:`territoires.settings.data_dir` back to `value` once the command is over."""
    settings.data_dir = value


def _print_version(value: bool) -> None:
    """``--version``: print the version and stop."""
    if value:
        typer.echo(f"territoires {__version__}")
        raise typer.Exit()


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
            metavar="DOSSIER",
            exists=True,
            file_okay=False,
            dir_okay=True,
            resolve_path=True,
        ),
    ] = None,
    accept_modified: Annotated[
        bool,
        typer.Option(
            "--accepter-modifie",
            help=(
                "Lire un fichier de référence dont la somme de contrôle diffère du catalogue "
                "(fichier modifié exprès) au lieu de le refuser ; c'est noté dans la provenance "
                f"des résultats ({settings.ACCEPT_MODIFIED_ENV}=1)."
            ),
            metavar="",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "-v",
            "--verbose",
            help="Afficher aussi le détail des traitements (ex. codes commune non appariés).",
            metavar="",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Affiche la version de territoires et s'arrête.",
            metavar="",
            is_eager=True,
            callback=_print_version,
        ),
    ] = False,
) -> None:
    """Apply the global options for the duration of the command."""
    if data_dir is not None:
        ctx.call_on_close(partial(_restore_data_dir, settings.data_dir))
        settings.data_dir = data_dir
    if accept_modified:
        ctx.call_on_close(partial(setattr, settings, "accept_modified", settings.accept_modified))
        settings.accept_modified = True
    logger = logging.getLogger("territoires")
    if _LOG_HANDLER not in logger.handlers:
        logger.addHandler(_LOG_HANDLER)
    _LOG_HANDLER.setLevel(logging.INFO if verbose else logging.WARNING)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def _on_disk(dataset: Dataset) -> tuple[str, Path | None]:
    """Return where the file of a dataset lies (``miroir``, ``cache``, ``absent``) and its path."""
    mirrored = dataset.mirror_path()
    if mirrored is not None:
        return "miroir", mirrored
    if dataset.cache_path.is_file():
        return "cache", dataset.cache_path
    return "absent", None


def _short_coverage(dataset: Dataset) -> str:
    """Territory of a dataset in a few words: « France », « région Occitanie seulement »."""
    return re.split(r"\s*[(,]", dataset.coverage, maxsplit=1)[0]


@data_app.command("list", cls=TerritoiresCommand)
def list_datasets() -> None:
    """Liste les jeux de données du catalogue, leur couverture et s'ils sont sur le disque."""
    from rich.console import Console  # imported here: `territoires check` starts faster
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title="Catalogue des sources officielles",
        box=None,
        pad_edge=False,
        header_style="bold underline",
    )
    for header in ("jeu", "type", "millésime", "disque"):
        table.add_column(header, no_wrap=True)
    table.add_column("couverture", min_width=10)
    for dataset in catalogue.datasets().values():
        table.add_row(
            dataset.name,
            dataset.kind,
            str(dataset.vintage),
            _on_disk(dataset)[0],
            escape(_short_coverage(dataset)),
        )
    Console().print(table)
    typer.echo("Éditeur, licence et source d'un jeu : territoires data info JEU")


def _needed_datasets() -> tuple[list[Dataset], list[str]]:
    """Return the datasets read by default by the loaders, and why others cannot be had."""
    found, errors = [], []
    for kind, vintage in _NEEDED:
        try:
            found.append(catalogue.choose(kind, vintage))
        except DataNotFoundError as error:
            errors.append(str(error))
    return found, errors


@data_app.command("fetch", cls=TerritoiresCommand)
def fetch(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help=(
                "Noms des jeux à obtenir (voir « territoires data list ») ; par défaut, ceux "
                "qu'utilisent les commandes check, classify, map et coverage."
            ),
            metavar="JEU",
            show_default=False,
        ),
    ] = None,
    all_datasets: Annotated[
        bool,
        typer.Option(
            "--all", help="Obtenir tous les jeux téléchargeables du catalogue.", metavar=""
        ),
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
            path = loaders.fetch(dataset, progress=True)
        except TerritoiresError as error:
            errors.append(str(error))
            continue
        typer.echo(f"{dataset.name} : {path}")
    for message in errors:
        print_error(message)
    if errors:
        raise typer.Exit(code=1)


@data_app.command("info", cls=TerritoiresCommand)
def info(
    name: Annotated[
        str,
        typer.Argument(
            help="Nom du jeu dans le catalogue (voir « territoires data list »).",
            metavar="JEU",
            show_default=False,
        ),
    ],
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


# --- eligibility -------------------------------------------------------------------

_VERDICT_COLOURS = {
    "qpv": typer.colors.GREEN,
    "proximite_qpv": typer.colors.GREEN,
    "incertain": typer.colors.YELLOW,
    "hors_grands_centres_urbains": typer.colors.GREEN,
    "non_eligible": typer.colors.YELLOW,
    "indetermine": typer.colors.YELLOW,
    "invalide": typer.colors.RED,
}


#: End of the help of the commands that apply rules: the names a user may type, each
#: on its own line at full width, so that none is ever cut.
_RULE_NAMES = (
    f"Jeux de règles (--regles) : {', '.join(PRESETS)}.\n\n"
    f"Règles « hors grands centres urbains » (--regle-urbaine) : {', '.join(URBAN_RULES)}."
    "\n\nDétail des règles et de leurs textes : territoires regles"
)


Preset = Annotated[
    str,
    typer.Option(
        "--regles",
        help="Jeu de règles nommé (liste en fin d'aide).",
        metavar="NOM",
    ),
]
Distance = Annotated[
    float | None,
    typer.Option(
        "--distance",
        help=(
            "Distance de « proximité immédiate » d'un QPV : un lieu à cette distance ou "
            "moins est à proximité (défaut : celle du jeu de règles)."
        ),
        metavar="MÈTRES",
        min=0,
    ),
]
UrbanRule = Annotated[
    str | None,
    typer.Option(
        "--regle-urbaine",
        help="Règle « hors grands centres urbains » (liste en fin d'aide).",
        metavar="NOM",
    ),
]
Npnru = Annotated[
    Path | None,
    typer.Option(
        "--npnru",
        help=(
            "Liste des QPV en renouvellement urbain (NPNRU, liste de l'ANRU : CSV avec une "
            "colonne code_qp, ou un code par ligne) : proximité "
            f"{french.within(PRESETS[DEFAULT_PRESET].npnru_distance_m)} autour de ces QPV, "
            "la distance du jeu de règles ailleurs (CGI, art. 278 sexies)."
        ),
        metavar="FICHIER",
        exists=True,
        dir_okay=False,
    ),
]
QpvVintage = Annotated[
    str | None,
    typer.Option(
        "--qpv",
        help=(
            "Géographie prioritaire : 2015 ou 2024 (défaut : celle du jeu de règles) ; "
            "avec check et classify, 2015,2024 classe sous les deux, côte à côte "
            "(colonnes _2015 et _2024)."
        ),
        metavar="ANNÉE",
    ),
]
Precision = Annotated[
    float | None,
    typer.Option(
        "--precision",
        help=(
            "Précision des points en mètres, pour ceux sans colonne precision_m "
            "renseignée (ex. 30 pour un point placé à la main) : verdict « incertain » "
            "si la limite d'un QPV ou le seuil de proximité est plus proche."
        ),
        min=0,
        metavar="MÈTRES",
    ),
]
InputFile = Annotated[
    Path,
    typer.Argument(
        help="Fichier des lieux : CSV, XLSX, GeoJSON ou GeoPackage.",
        metavar="FICHIER",
        exists=True,
        dir_okay=False,
        show_default=False,
    ),
]
LonColumn = Annotated[
    str | None,
    typer.Option("--lon", help="Colonne des longitudes (si non détectée).", metavar="COLONNE"),
]
LatColumn = Annotated[
    str | None,
    typer.Option("--lat", help="Colonne des latitudes (si non détectée).", metavar="COLONNE"),
]
Sheet = Annotated[
    str | None,
    typer.Option(
        "--feuille",
        help="Feuille d'un classeur XLSX à lire (défaut : la première).",
        metavar="NOM",
    ),
]
LayerName = Annotated[
    str | None,
    typer.Option(
        "--couche",
        help="Couche d'un GeoPackage à lire (défaut : la première).",
        metavar="NOM",
    ),
]
InputCrs = Annotated[
    str | None,
    typer.Option(
        "--crs",
        help="Système de coordonnées des colonnes x/y, ex. 2154 (Lambert-93).",
        metavar="CODE",
    ),
]
NameColumn = Annotated[
    str | None,
    typer.Option(
        "--nom",
        help=(
            "Colonne du nom des lieux (défaut : détectée parmi nom, nom du lieu, libellé, "
            "raison sociale, structure, name, etc.)."
        ),
        metavar="COLONNE",
    ),
]
Offline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="Carte autonome : Leaflet inclus dans le fichier (réseaux qui bloquent les CDN).",
        metavar="",
    ),
]
MinScore = Annotated[
    float | None,
    typer.Option(
        "--score-min",
        help=(
            "Score minimal (0 à 1) d'une adresse géocodée pour être placée "
            f"(défaut : {french.number(settings.geocoder_min_score, None)})."
        ),
        metavar="SCORE",
        min=0,
        max=1,
    ),
]
GeocodeOffline = Annotated[
    bool,
    typer.Option(
        "--offline",
        help=(
            "Sans réseau : adresses géocodées depuis le cache seulement (les adresses "
            "absentes du cache sont signalées)."
        ),
        metavar="",
    ),
]


def _check_output(
    path: Path, formats: dict[str, str], option: str = "-o", source: Path | None = None
) -> None:
    """Refuse an output path before any work (the library's check, as a usage error).

    The output may be neither the input file ``source`` nor under a file, nor an existing
    folder, nor in a folder that does not exist: the command creates no folder (a typo in
    the path would create a tree of them), unlike the library's writers.
    """
    try:
        outputs.check_path(path, formats, [] if source is None else [source])
    except OutputError as error:
        raise typer.BadParameter(str(error), param_hint=option) from error
    if path.is_dir() and path.suffix.lower() != ".parquet":  # parts: a folder, replaced
        raise typer.BadParameter(
            f"{path} est un dossier : donnez le chemin d'un fichier (ex. {path / 'resultats.csv'})",
            param_hint=option,
        )
    folder = path.absolute().parent
    if not folder.is_dir():
        missing = next(parent for parent in [folder, *folder.parents] if parent.parent.is_dir())
        raise typer.BadParameter(
            f"le dossier {missing} n'existe pas : corrigez le chemin de {path}, ou créez "
            f"d'abord le dossier (mkdir -p {path.parent})",
            param_hint=option,
        )


def _vintages(qpv: str | None) -> list[int]:
    """QPV vintages of ``--qpv`` (``2024``, ``2015,2024``), in the order given."""
    if qpv is None:
        return []
    try:
        vintages = [int(part) for part in qpv.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        vintages = []
    if not vintages or any(vintage not in (2015, 2024) for vintage in vintages):
        raise typer.BadParameter(f"{qpv!r} : attendu 2015, 2024 ou 2015,2024", param_hint="--qpv")
    return list(dict.fromkeys(vintages))


def _rules(
    name: str,
    distance: float | None,
    urban: str | None,
    qpv: str | None,
    npnru: Path | None = None,
    several: bool = False,
) -> Rules:
    """Build the rule set asked for on the command line (errors as BadParameter).

    With several ``--qpv`` vintages (accepted only where ``several``: ``check`` and
    ``classify`` put them side by side), the rule set has the first one.
    """
    if not several and qpv is not None and len(_vintages(qpv)) > 1:
        raise typer.BadParameter(
            f"{qpv} : un seul millésime pour cette commande (plusieurs seulement avec check "
            "et classify, côte à côte) ; relancez-la une fois par millésime, ex. --qpv 2024",
            param_hint="--qpv",
        )
    overrides: dict[str, Any] = {}
    if distance is not None:
        overrides["near_distance_m"] = distance
    if urban is not None:
        overrides["urban"] = urban
    if qpv is not None:
        overrides["qpv_vintage"] = _vintages(qpv)[0]
    try:
        rules = preset(name, **overrides)
        return rules.with_npnru(loaders.load_npnru(npnru)) if npnru is not None else rules
    except RulesError as error:
        raise typer.BadParameter(str(error)) from error


def _classify(
    source: Path,
    rules: Rules,
    lon: str | None,
    lat: str | None,
    crs: str | None,
    min_score: float | None,
    offline: bool,
    sheet: str | None = None,
    layer: str | None = None,
    nom: str | None = None,
    precision: float | None = None,
    qpv: str | None = None,
    output: Path | None = None,
) -> Any:
    """Classify a file; the file is read (and rejected if unusable) before the reference,
    and refused at once if it has more places than ``output`` can show."""
    if sheet is not None and layer is not None:
        raise typer.BadParameter("--feuille (XLSX) ou --couche (GeoPackage), pas les deux")
    typer.echo(f"Lecture de {source} puis des données de référence…", err=True)
    result = eligibility.classify(
        source,
        rules,
        lon=lon,
        lat=lat,
        input_crs=crs,
        sheet=sheet if sheet is not None else layer,
        progress=True,
        min_score=min_score,
        offline=offline or None,
        precision=precision,
        qpv_vintages=_vintages(qpv),
        on_read=None if output is None else partial(export.check_rows, output),
    )
    _geocoding_summary(result.attrs.get("geocodage"))
    places.name_column(result.columns, nom)  # an unknown --nom fails before any output
    return result


def _geocoding_summary(provenance: dict[str, Any] | None) -> None:
    """Say how many addresses were geocoded, from where (nothing when none was)."""
    if not provenance:
        return
    typer.echo(
        f"Géocodage de {french.count(provenance['adresses'], 'adresse', 'adresses')} "
        f"({provenance['source']}) : {french.number(provenance['depuis_cache'])} depuis le "
        f"cache, {french.count(provenance['requetes'], 'requête', 'requêtes')}.",
        err=True,
    )


def _place(words: list[str]) -> tuple[float, float] | str:
    """Coordinates when the words are a point (:func:`territoires.places.read_place`: two
    numbers, decimal comma accepted, or a « lat, lon » pair), else an address.

    Text meant as coordinates but unreadable (one number, ``abc 43.5``, degrees minutes
    seconds) is an :class:`InputError` at once, never sent to the geocoder.
    """
    try:
        return places.read_place(" ".join(words))
    except ValueError as error:
        raise InputError(str(error)) from None


def _summary(result: Any) -> None:
    """Print the count per verdict of a classified frame (or of a partitioned run).

    Side-by-side QPV vintages print one block per vintage.
    """
    counts = result["verdicts"] if isinstance(result, dict) else result.attrs["verdicts"]
    blocks = counts if counts and isinstance(next(iter(counts.values())), dict) else {"": counts}
    for vintage, block in blocks.items():
        if vintage:
            typer.echo(f"  Géographie prioritaire {vintage} :", err=True)
        for verdict, count in sorted(block.items(), key=lambda item: -item[1]):
            typer.secho(
                f"  {VERDICTS[verdict]} : {french.number(count)}",
                fg=_VERDICT_COLOURS[verdict],
                err=True,
            )


def _none_classified(rows: int, verdicts: dict[str, Any]) -> bool:
    """Whether a run of ``rows`` rows classified none: every one ``invalide``.

    Side-by-side vintages (``verdicts`` per vintage) have the same invalid rows: the
    first one decides.
    """
    if verdicts and isinstance(next(iter(verdicts.values())), dict):
        verdicts = next(iter(verdicts.values()))
    return rows > 0 and verdicts.get("invalide", 0) == rows


def _stop_none_classified(rows: int, problems: dict[str, dict[str, Any]], written: str) -> None:
    """End a run that classified no row with exit code 1 and a message saying why.

    The message names the most frequent problem (``problems``: invalid rows by kind, most
    frequent first, see :func:`territoires.places.problem_tally`) and ends with
    ``written``: what the command wrote all the same, and where each row's motif is read.
    """
    kind, worst = next(iter(problems.items()))
    if rows == 1:
        what = f"la seule ligne est invalide : {worst['exemple']}"
    else:
        what = (
            f"les {french.number(rows)} lignes sont invalides ; problème le plus fréquent : "
            f"« {kind} » ({french.count(worst['lignes'], 'ligne', 'lignes')} sur "
            f"{french.number(rows)}), par ex. {worst['exemple']}"
        )
    print_error(cli_message(f"aucun lieu n'a pu être classé : {what} ; {written}"))
    raise typer.Exit(code=1)


def _stop_if_none_classified(result: Any, written: str, suffix: str = "") -> None:
    """End with exit code 1 (:func:`_stop_none_classified`) when every row of a
    classified frame is ``invalide``; ``suffix`` names the columns of the first QPV
    vintage when several sit side by side (``_2015``)."""
    if _none_classified(len(result), result.attrs["verdicts"]):
        tally = places.problem_tally(result, suffix).to_dict("index")
        _stop_none_classified(len(result), tally, written)


def _motifs_by_classify(source: Path) -> str:
    """End of the message of a command that classified no row and writes no motif."""
    return f"le motif de chaque ligne : territoires classify {source} -o resultats.csv"


@app.command("regles", cls=TerritoiresCommand)
def list_rules() -> None:
    """Liste les jeux de règles et les règles « hors grands centres urbains », avec leurs textes."""
    for rules in PRESETS.values():
        typer.secho(f"{rules.name} (version {rules.version})", bold=True)
        typer.echo(f"  {rules.title}")
        near = french.within(rules.near_distance_m)
        typer.echo(f"  QPV {rules.qpv_vintage}, proximité immédiate : {near}")
        typer.echo(f"    distance : {rules.near_basis}")
        typer.echo(
            f"    avec --npnru : {french.within(rules.npnru_distance_m)} autour des QPV de "
            f"la liste ANRU ({CGI_278_SEXIES}), {french.within(rules.near_distance_m)} ailleurs"
        )
        typer.echo(f"  règle urbaine {rules.urban.name} : {rules.urban.reading}")
        typer.echo(f"    depuis : {rules.urban.since}")
    typer.echo("")
    for rule in URBAN_RULES.values():
        typer.secho(f"{rule.name} (version {rule.version})", bold=True)
        typer.echo(f"  {rule.description}")
        typer.echo(f"  grand centre urbain si {rule.codes_in_words()}")
        typer.echo(f"  lecture : {rule.reading}")
        typer.echo(f"  depuis : {rule.since}")


@app.command(
    "check",
    cls=TerritoiresCommand,
    epilog=_RULE_NAMES,
    # Negative coordinates (overseas: -52.33 4.93, 55.45 -20.88) are numbers, not options.
    context_settings={"ignore_unknown_options": True},
)
def check(
    lieu: Annotated[
        list[str],
        typer.Argument(
            help=(
                "Longitude puis latitude en degrés WGS84, virgule ou point décimal "
                "(2.3522 48.8566 ou 2,3522 48,8566), un couple « latitude, longitude » "
                'copié d\'une carte en ligne ("48.8566, 2.3522"), ou une adresse '
                '("1 place du Capitole 31000 Toulouse").'
            ),
            metavar="LIEU",
            show_default=False,
        ),
    ],
    regles: Preset = "fabriques-2019",
    distance: Distance = None,
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    npnru: Npnru = None,
    score_min: MinScore = None,
    offline: GeocodeOffline = False,
    precision: Precision = None,
) -> None:
    """Donne le verdict d'éligibilité d'un lieu (coordonnées ou adresse) et son motif.

    Coordonnées négatives acceptées telles quelles : territoires check -52.33 4.93

    Code de sortie : 0 si le lieu est classé, 1 s'il est invalide ou sur erreur.
    """
    place = _place(lieu)
    rules = _rules(regles, distance, regle_urbaine, qpv, npnru, several=True)
    vintages = _vintages(qpv)
    options = {
        "min_score": score_min,
        "offline": offline or None,
        "precision": precision,
        "qpv_vintages": vintages,
    }
    if isinstance(place, str):
        row = eligibility.check(place, None, rules, **options)
    else:
        row = eligibility.check(*place, rules, **options)
    suffixes = [f"_{vintage}" for vintage in vintages] if len(vintages) > 1 else [""]
    for suffix in suffixes:
        verdict = row[f"verdict{suffix}"]
        title = f"QPV {suffix[1:]} : " if suffix else ""
        typer.secho(f"{title}{VERDICTS[verdict]}", fg=_VERDICT_COLOURS[verdict], bold=True)
        typer.echo(row[f"motif{suffix}"])
    label = row.get("geocodage_label")
    if isinstance(place, str) and isinstance(label, str):
        kind = geocode.TYPE_LABELS.get(row["geocodage_type"], row["geocodage_type"])
        score = french.number(row["geocodage_score"], 2)
        typer.echo(f"Adresse trouvée : {label} ({kind}, score {score})")
    if not isinstance(place, str):
        typer.echo(f"Coordonnées lues : longitude {place[0]:g}, latitude {place[1]:g}")
    if row[f"verdict{suffixes[0]}"] == "invalide":
        raise typer.Exit(code=1)


@data_app.command("prepare", cls=TerritoiresCommand, epilog=_RULE_NAMES)
def prepare(
    regles: Preset = "fabriques-2019",
    distance: Distance = None,
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    npnru: Npnru = None,
    reconstruire: Annotated[
        bool,
        typer.Option(
            "--reconstruire", help="Reconstruire même si le cache est à jour.", metavar=""
        ),
    ] = False,
) -> None:
    """Prépare la référence (index, grille des communes) et l'enregistre dans le cache.

    Les commandes suivantes (check, classify, map, etc.) la relisent en une fraction de seconde
    tant que les sources, les règles et la version de territoires sont inchangées.
    """
    rules = _rules(regles, distance, regle_urbaine, qpv, npnru)
    target = prepared.path(rules, None)
    if reconstruire:
        target.unlink(missing_ok=True)
    started = time.perf_counter()
    ref = eligibility.reference(rules)
    if not target.is_file():  # already built in this process, or the cache was not writable
        try:
            prepared.write(target, ref.prepare())
        except OSError as error:
            print_error(f"impossible d'écrire la référence préparée dans {target} : {error}")
            raise typer.Exit(code=1) from error
    elapsed = time.perf_counter() - started
    size = target.stat().st_size / 2**20
    typer.echo(
        f"Référence préparée ({rules.name}) : {target} "
        f"({french.number(size)} Mio, {french.number(elapsed, 1)} s)"
    )


def _write_eligibility_map(
    result: Any, rules: Rules, output: Path, nom: str | None, offline: bool, communes: bool
) -> None:
    """Draw the eligibility map of classified places into one HTML file."""
    from . import maps  # imported here: `territoires check` starts faster

    by_commune = bool(result["localisation"].eq("commune").any())
    boundaries = loaders.load_communes() if communes or by_commune else None
    fmap = maps.eligibility_map(
        result,
        loaders.load_qpv(rules.qpv_vintage),
        communes=boundaries if communes else None,
        place_communes=boundaries,
        outlines=loaders.load_admin("departements"),
        name_column=nom,
        self_contained=offline,
    )
    maps.save(fmap, output, self_contained=offline)
    typer.echo(f"Carte de {french.count(len(result), 'lieu', 'lieux')} → {output}", err=True)


@app.command("classify", cls=TerritoiresCommand, epilog=_RULE_NAMES)
def classify(
    source: InputFile,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help=f"Fichier résultat : {', '.join(export.FORMATS)} (.parquet avec --partitions).",
            metavar="FICHIER",
        ),
    ],
    regles: Preset = "fabriques-2019",
    distance: Distance = None,
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    npnru: Npnru = None,
    lon: LonColumn = None,
    lat: LatColumn = None,
    crs: InputCrs = None,
    feuille: Sheet = None,
    couche: LayerName = None,
    nom: NameColumn = None,
    carte: Annotated[
        Path | None,
        typer.Option(
            "--carte", help="Écrire aussi la carte d'éligibilité (HTML).", metavar="FICHIER"
        ),
    ] = None,
    precision: Precision = None,
    partitions: Annotated[
        bool,
        typer.Option(
            "--partitions",
            help=(
                "Fichier volumineux (CSV ou Parquet) : classer par blocs avec dask, mémoire "
                "bornée ; sortie .parquet ou .csv (extra « dask »)."
            ),
            metavar="",
        ),
    ] = False,
    bloc: Annotated[
        str,
        typer.Option(
            "--bloc", help="Taille des blocs avec --partitions, ex. 16MB.", metavar="TAILLE"
        ),
    ] = "4MB",
    ordonnanceur: Annotated[
        str,
        typer.Option(
            "--ordonnanceur",
            help=(
                "Avec --partitions : « processus » (un processus par cœur, plus rapide sur "
                "les très gros fichiers, plus de mémoire), « threads », ou « auto » : "
                "processus à partir de 128 Mo."
            ),
            metavar="auto|threads|processus",
        ),
    ] = "auto",
    score_min: MinScore = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help=(
                "Sans réseau : adresses géocodées depuis le cache seulement, et carte "
                "(--carte) autonome, Leaflet inclus."
            ),
            metavar="",
        ),
    ] = False,
) -> None:
    """Classe tous les lieux d'un fichier ; chaque ligne ressort avec verdict et motif.

    Code de sortie : 0 si au moins un lieu est classé (lignes invalides comprises,
    avec leur motif) ; 1 si aucun ne l'a été (toutes les lignes invalides : le
    fichier est écrit quand même) ou sur erreur ; 2 pour une option refusée.
    """
    rules = _rules(regles, distance, regle_urbaine, qpv, npnru, several=True)
    if partitions:
        if carte is not None or nom is not None:
            raise typer.BadParameter(
                "--carte et --nom ne s'appliquent pas avec --partitions", param_hint="--partitions"
            )
        if precision is not None or len(_vintages(qpv)) > 1:
            raise typer.BadParameter(
                "--precision et plusieurs --qpv ne s'appliquent pas avec --partitions : "
                "mettez la précision dans une colonne precision_m, un millésime par passage",
                param_hint="--partitions",
            )
        _classify_in_partitions(source, output, rules, bloc, ordonnanceur, lon, lat, crs)
        return
    _check_output(output, export.FORMATS, source=source)
    if carte is not None:
        from . import maps  # imported here: `territoires check` starts faster

        if len(_vintages(qpv)) > 1:
            raise typer.BadParameter(
                "une carte montre une seule géographie prioritaire : relancez avec "
                "--qpv 2015 ou --qpv 2024 pour la carte",
                param_hint="--carte",
            )

        _check_output(carte, maps.MAP_FORMATS, "--carte")
    result = _classify(
        source,
        rules,
        lon,
        lat,
        crs,
        score_min,
        offline,
        feuille,
        couche,
        nom,
        precision,
        qpv,
        output,
    )
    export.write_results(result, output)
    typer.echo(f"{french.count(len(result), 'lieu classé', 'lieux classés')} → {output}", err=True)
    if carte is not None:
        _write_eligibility_map(result, rules, carte, nom, offline, communes=False)
    _summary(result)
    vintages = _vintages(qpv)
    _stop_if_none_classified(
        result,
        f"le motif de chaque ligne est dans {output}",
        f"_{vintages[0]}" if len(vintages) > 1 else "",
    )


def _classify_in_partitions(
    source: Path,
    output: Path,
    rules: Rules,
    blocksize: str,
    scheduler: str,
    lon: str | None,
    lat: str | None,
    crs: str | None,
) -> None:
    """``classify --partitions``: a large file, block by block, with dask."""
    from dask.utils import parse_bytes

    try:
        too_small = parse_bytes(blocksize) < 64 * 2**10
    except (ValueError, TypeError) as error:
        raise typer.BadParameter(
            f"« {blocksize} » : attendu par ex. 4MB", param_hint="--bloc"
        ) from error
    if too_small:  # thousands of tiny blocks would take hours
        raise typer.BadParameter(
            f"« {blocksize} » : au moins 64KB (défaut 4MB)", param_hint="--bloc"
        )
    schedulers = {"auto": "auto", "threads": "threads", "processus": "processes"}
    if scheduler not in schedulers:
        raise typer.BadParameter(
            f"« {scheduler} » : attendu auto, threads ou processus", param_hint="--ordonnanceur"
        )
    if lon or lat or crs:
        raise typer.BadParameter(
            "--lon, --lat et --crs ne s'appliquent pas avec --partitions : nommez les colonnes "
            "lon/lat (ou longitude/latitude) en degrés WGS84",
            param_hint="--partitions",
        )
    try:
        from . import distributed
    except ImportError as error:
        raise typer.BadParameter(
            f"--partitions demande dask : pip install 'territoires[dask]' ({error})",
            param_hint="--partitions",
        ) from error
    _check_output(output, distributed.PARTITION_FORMATS, source=source)
    summary = distributed.classify_file_in_partitions(
        source,
        output,
        blocksize=blocksize,
        rules=rules,
        progress=True,
        scheduler=schedulers[scheduler],
    )
    typer.echo(
        f"{french.count(summary['lignes'], 'lieu classé', 'lieux classés')} en "
        f"{french.count(summary['partitions'], 'bloc', 'blocs')} → {output}",
        err=True,
    )
    _summary(summary)
    if _none_classified(summary["lignes"], summary["verdicts"]):
        _stop_none_classified(
            summary["lignes"], summary["problemes"], f"le motif de chaque ligne est dans {output}"
        )


@app.command("map", cls=TerritoiresCommand, epilog=_RULE_NAMES)
def map_command(
    source: InputFile,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Carte HTML à écrire.", metavar="FICHIER")
    ],
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help=(
                "Sans réseau : inclure Leaflet dans le fichier (réseaux qui bloquent les CDN) "
                "et géocoder les adresses depuis le cache seulement."
            ),
            metavar="",
        ),
    ] = False,
    communes: Annotated[
        bool,
        typer.Option(
            "--communes",
            help=(
                "Ajouter la couche (masquée à l'ouverture) des communes par niveau de densité ; "
                "lourde à l'échelle nationale."
            ),
            metavar="",
        ),
    ] = False,
    regles: Preset = "fabriques-2019",
    distance: Distance = None,
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    npnru: Npnru = None,
    lon: LonColumn = None,
    lat: LatColumn = None,
    crs: InputCrs = None,
    score_min: MinScore = None,
    feuille: Sheet = None,
    couche: LayerName = None,
    nom: NameColumn = None,
) -> None:
    """Classe les lieux et écrit la carte d'éligibilité (un seul fichier HTML).

    Code de sortie : 0 si au moins un lieu est classé ; 1 si aucun ne l'a été (toutes
    les lignes invalides : la carte est écrite quand même, sans lieu, et le message
    nomme le problème le plus fréquent) ou sur erreur ; 2 pour une option refusée.
    """
    from . import maps  # imported here: `territoires check` starts faster

    _check_output(output, maps.MAP_FORMATS, source=source)
    rules = _rules(regles, distance, regle_urbaine, qpv, npnru)
    result = _classify(source, rules, lon, lat, crs, score_min, offline, feuille, couche, nom)
    _write_eligibility_map(result, rules, output, nom, offline, communes)
    _summary(result)
    _stop_if_none_classified(
        result, f"carte écrite sans aucun lieu dans {output} ; {_motifs_by_classify(source)}"
    )


@app.command("coverage", cls=TerritoiresCommand, epilog=_RULE_NAMES)
def coverage_command(
    source: InputFile,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Rapport : .xlsx (une feuille par niveau) ou .gpkg.",
            metavar="FICHIER",
        ),
    ],
    distance_qpv: Annotated[
        float,
        typer.Option(
            help="Un QPV est couvert s'il a un tiers-lieu à cette distance ou moins.",
            metavar="MÈTRES",
            min=0,
        ),
    ] = 1000.0,
    distance_communes: Annotated[
        float,
        typer.Option(
            help="Une commune est couverte si un tiers-lieu est à cette distance ou moins.",
            metavar="MÈTRES",
            min=0,
        ),
    ] = 10_000.0,
    carte: Annotated[
        Path | None,
        typer.Option(
            help="Écrire aussi la carte des territoires sous-desservis.", metavar="FICHIER"
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help=(
                "Sans réseau : carte autonome (Leaflet inclus) et adresses géocodées depuis "
                "le cache seulement."
            ),
            metavar="",
        ),
    ] = False,
    departements: Annotated[
        str | None,
        typer.Option(
            "--departements",
            help="Mesurer ces départements seulement (codes INSEE : 31,32,81).",
            metavar="CODES",
        ),
    ] = None,
    regions: Annotated[
        str | None,
        typer.Option(
            "--regions",
            help="Mesurer ces régions seulement (codes INSEE : 76 pour l'Occitanie).",
            metavar="CODES",
        ),
    ] = None,
    france: Annotated[
        bool,
        typer.Option(
            "--france",
            help=(
                "Mesurer toute la France, même si les lieux sont tous dans une région (sans "
                "--departements, --regions ni --france : la région des lieux s'ils sont tous "
                "dans une, sinon la France)."
            ),
            metavar="",
        ),
    ] = False,
    regles: Preset = "fabriques-2019",
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    lon: LonColumn = None,
    lat: LatColumn = None,
    crs: InputCrs = None,
    score_min: MinScore = None,
    feuille: Sheet = None,
    couche: LayerName = None,
    nom: NameColumn = None,
) -> None:
    """Mesure la couverture des QPV et des communes hors grands centres par les tiers-lieux.

    Code de sortie : 0 si au moins un lieu est classé ; 1 si aucun ne l'a été (toutes
    les lignes invalides : rien n'est mesuré ni écrit, un rapport où tout le territoire
    serait « non couvert » serait faux ; le message nomme le problème le plus fréquent)
    ou sur erreur ; 2 pour une option refusée.
    """
    from . import coverage, maps  # imported here: `territoires check` starts faster

    _check_output(output, export.REPORT_FORMATS, source=source)
    if carte is not None:
        _check_output(carte, maps.MAP_FORMATS, "--carte", source)
    chosen = [
        name
        for name, value in (
            ("--departements", departements),
            ("--regions", regions),
            ("--france", france or None),
        )
        if value is not None
    ]
    if len(chosen) > 1:
        raise typer.BadParameter(
            f"{' et '.join(chosen)} s'excluent : choisissez des départements, des régions ou "
            "la France entière",
            param_hint=chosen[1],
        )
    rules = _rules(regles, None, regle_urbaine, qpv)
    result = _classify(source, rules, lon, lat, crs, score_min, offline, feuille, couche, nom)
    _stop_if_none_classified(
        result, f"couverture non mesurée, aucun rapport écrit ; {_motifs_by_classify(source)}"
    )
    typer.echo("Analyse de la couverture…", err=True)
    layers = coverage.analyse(
        result,
        rules=rules,
        qpv_covered_within_m=distance_qpv,
        commune_covered_within_m=distance_communes,
        geometry=carte is not None or output.suffix.lower() == ".gpkg",
        name_column=nom,
        progress=True,
        departements=departements,
        regions=regions,
        france=france,
    )
    export.write_report(
        output, layers["qpv"], layers["communes"], {"dep": layers["dep"], "reg": layers["reg"]}
    )
    typer.echo(f"Rapport de couverture → {output}", err=True)
    if carte is not None:
        fmap = maps.coverage_map(
            layers["dep"],
            commune_cov=layers["communes"],
            qpv_cov=layers["qpv"],
            qpv=loaders.load_qpv(rules.qpv_vintage),
            places=result,
            name_column=nom,
            self_contained=offline,
        )
        maps.save(fmap, carte, self_contained=offline)
        typer.echo(f"Carte de couverture → {carte}", err=True)
    typer.secho(coverage.summary(layers), bold=True, err=True)
    if layers["communes"].attrs["territoire"]["choix"] != "demande":
        typer.echo(
            "  Pour mesurer un autre territoire : --regions, --departements ou --france.", err=True
        )


@app.command("serve", cls=TerritoiresCommand)
def serve_command(
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Adresse d'écoute ; 127.0.0.1 : seule cette machine peut se connecter.",
            metavar="ADRESSE",
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port d'écoute.", metavar="PORT", min=1, max=65535)
    ] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Processus ; chacun charge sa copie des données de référence.",
            metavar="NOMBRE",
            min=1,
        ),
    ] = 1,
    taille_max: Annotated[
        float,
        typer.Option(
            "--taille-max", help="Taille maximale d'un fichier envoyé.", metavar="MO", min=0
        ),
    ] = 20.0,
    limite_debit: Annotated[
        int,
        typer.Option(
            "--limite-debit",
            help="Requêtes par minute et par client (0 : sans limite).",
            metavar="NOMBRE",
            min=0,
        ),
    ] = 300,
    delai: Annotated[
        float,
        typer.Option("--delai", help="Durée maximale d'une requête.", metavar="SECONDES", min=1),
    ] = 120.0,
    regles: Annotated[
        list[str] | None,
        typer.Option(
            "--regles",
            help=(
                "Jeu de règles préparé au démarrage (répétable ; défaut : "
                f"{DEFAULT_PRESET}) ; les autres le sont à la première demande."
            ),
            metavar="NOM",
        ),
    ] = None,
    journal: Annotated[
        bool,
        typer.Option(
            "--journal/--sans-journal", help="Journal d'accès JSON sur stderr.", metavar=""
        ),
    ] = True,
) -> None:
    """Lance l'API d'éligibilité et la page pour les agents (http://127.0.0.1:8000/)."""
    try:
        from .web import ServeConfig, serve
    except ImportError as error:
        raise typer.BadParameter(
            f"serve demande FastAPI et uvicorn : pip install 'territoires[web]' ({error})"
        ) from error
    for name in regles or []:
        if name not in PRESETS:
            raise typer.BadParameter(
                f"jeu de règles inconnu {name!r} ; connus : {', '.join(PRESETS)}",
                param_hint="--regles",
            )
    config = ServeConfig(
        data_dir=str(settings.data_dir) if settings.data_dir else None,
        max_upload_mb=taille_max,
        rate_limit=limite_debit,
        timeout_s=delai,
        preload=tuple(regles or (DEFAULT_PRESET,)),
    )
    typer.echo(
        f"territoires serve : http://{host}:{port}/ (documentation de l'API : /docs) ; "
        "données de référence en cours de chargement…",
        err=True,
    )
    serve(config, host=host, port=port, workers=workers, access_log=journal)


@app.command("bilan", cls=TerritoiresCommand, epilog=_RULE_NAMES)
def bilan_command(
    source: InputFile,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Classeur .xlsx : feuilles bilan, regions, lieux et regles (facultatif).",
            metavar="FICHIER",
        ),
    ] = None,
    enveloppes: Annotated[
        str | None,
        typer.Option(
            "--enveloppes",
            help=(
                "Enveloppes de l'appel : fichier JSON (voir le guide) ou nom fourni "
                f"(défaut : {bilan.DEFAULT_ENVELOPES})."
            ),
            metavar="FICHIER",
        ),
    ] = None,
    numerique: Annotated[
        str,
        typer.Option(
            "--numerique",
            help="Colonne qui signale une Fabrique numérique (oui/non, 1/0, vrai/faux, x).",
            metavar="COLONNE",
        ),
    ] = bilan.NUMERIQUE_COLUMN,
    regles: Preset = DEFAULT_PRESET,
    distance: Distance = None,
    regle_urbaine: UrbanRule = None,
    qpv: QpvVintage = None,
    npnru: Npnru = None,
    lon: LonColumn = None,
    lat: LatColumn = None,
    crs: InputCrs = None,
    score_min: MinScore = None,
    offline: GeocodeOffline = False,
    feuille: Sheet = None,
    couche: LayerName = None,
    nom: NameColumn = None,
) -> None:
    """Compte les lieux dans les enveloppes de l'appel (150 hors grands centres, 120 + 30 QPV).

    Code de sortie : 0 si au moins un lieu est classé ; 1 si aucun ne l'a été (toutes
    les lignes invalides : le bilan est affiché et le classeur écrit quand même, et le
    message nomme le problème le plus fréquent) ou sur erreur ; 2 pour une option
    refusée.
    """
    if output is not None:
        _check_output(output, export.BILAN_FORMATS, source=source)
    rules = _rules(regles, distance, regle_urbaine, qpv, npnru)
    chosen = bilan.load_envelopes(enveloppes)
    result = _classify(source, rules, lon, lat, crs, score_min, offline, feuille, couche, nom)
    report = bilan.assess(
        result, chosen, numerique=numerique, regions=loaders.admin_names("regions")
    )
    typer.echo(report.resume())
    if output is not None:
        export.write_bilan(report, output)
        typer.echo(f"Bilan → {output}", err=True)
    _stop_if_none_classified(
        result,
        "relancez avec -o bilan.xlsx : sa feuille lieux donne le motif de chaque ligne"
        if output is None
        else f"le motif de chaque ligne est dans {output} (feuille lieux)",
    )


#: Warnings already printed by this run of the command.
_SHOWN: set[str] = set()


def _show_warning(message: Warning | str, *args: Any, **kwargs: Any) -> None:
    """Print library warnings (e.g. a QPV layer of another vintage) as one yellow line.

    A warning is printed once per run: a file read once per QPV vintage (``--qpv
    2015,2024``) warns about its title line once, not twice.
    """
    line = f"Avertissement : {cli_message(str(message))}"
    if line not in _SHOWN:
        _SHOWN.add(line)
        typer.secho(line, fg=typer.colors.YELLOW, err=True)


def main() -> None:
    """Run the ``territoires`` command."""
    warnings.showwarning = _show_warning
    try:
        app()
    finally:  # the process exits (typer ends with SystemExit)
        _gc.freeze_for_exit()
