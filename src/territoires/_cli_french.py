"""French for what typer writes itself: help page furniture and usage errors.

Typer draws help pages with rich and checks the command line with its own copy of
click, whose strings are English literals (« Usage: », « Show this message and exit. »,
« Missing argument 'FICHIER'. », « Invalid value for '--distance': … »). This module
gives their French text: :func:`install` sets typer's panel titles and markers,
:class:`FrenchHelp` (mixed into the command classes of the CLI) rewrites the usage
line and the help option, and :func:`translate_error` rewrites a usage error message.

Typer's rich help machinery (``typer.rich_utils``, rich's markdown and syntax
highlighting) takes a tenth of a second to import: it is imported by :func:`install`
only when a help page or a usage error is drawn, never by a command that succeeds.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

#: Help text of ``-h``/``--help``.
HELP_OPTION_TEXT = "Affiche cette aide et s'arrête."
#: Typer's rich help and error strings (module constants of ``typer.rich_utils``).
_RICH_CONSTANTS: dict[str, str] = {
    "DEPRECATED_STRING": "(obsolète) ",
    "DEFAULT_STRING": "[défaut : {}]",
    "ENVVAR_STRING": "[variable d'environnement : {}]",
    "REQUIRED_LONG_STRING": "[obligatoire]",
    "ARGUMENTS_PANEL_TITLE": "Arguments",
    "OPTIONS_PANEL_TITLE": "Options",
    "COMMANDS_PANEL_TITLE": "Commandes",
    "ERRORS_PANEL_TITLE": "Erreur",
    "ABORTED_TEXT": "Interrompu.",
    "RICH_HELP": "Aide : [blue]{command_path} {help_option}[/]",
}
_PATH_KINDS = {"file": "fichier", "directory": "dossier", "path": "chemin"}
_PATH_STATES = {
    "a directory": "est un dossier",
    "a file": "est un fichier",
    "not readable": "est illisible (droits)",
    "not writable": "n'est pas modifiable (droits)",
}
_NUMBER_KINDS = {
    "float": "un nombre",
    "number": "un nombre",
    "int": "un nombre entier",
    "integer": "un nombre entier",
}


def _near(prefix: str, near: str | None) -> str:
    return f" ; {prefix} {near}" if near else ""


#: Usage errors of typer (and of pydantic, which checks values for it): an English
#: message pattern and the French text of its named groups.
_ERRORS: list[tuple[re.Pattern[str], Callable[[dict[str, Any]], str]]] = [
    (
        re.compile(r"^Invalid value for (?P<hint>.+?): (?P<rest>.*)$", re.S),
        lambda g: f"Valeur invalide pour {g['hint']} : {translate_error(g['rest'])}",
    ),
    (
        re.compile(r"^Invalid value: (?P<rest>.*)$", re.S),
        lambda g: f"Valeur invalide : {translate_error(g['rest'])}",
    ),
    (
        re.compile(r"^Missing argument (?P<name>.+?)\.(?P<rest>.*)$", re.S),
        lambda g: f"Argument manquant : {g['name']}.{g['rest']}",
    ),
    (
        re.compile(r"^Missing option (?P<name>.+?)\.(?P<rest>.*)$", re.S),
        lambda g: f"Option manquante : {g['name']}.{g['rest']}",
    ),
    (
        re.compile(r"^Missing parameter: (?P<name>.+)$"),
        lambda g: f"Paramètre manquant : {g['name']}",
    ),
    (re.compile(r"^Missing command\.$"), lambda g: "Commande manquante."),
    (
        re.compile(r"^No such option: (?P<name>\S+)(?: \(Possible options: (?P<near>.+)\))?$"),
        lambda g: f"Option inconnue : {g['name']}{_near('options proches :', g['near'])}",
    ),
    (
        re.compile(r"^No such command (?P<name>.+?)\.(?: Did you mean (?P<near>.+)\?)?$"),
        lambda g: f"Commande inconnue : {g['name']}{_near('vouliez-vous dire', g['near'])}",
    ),
    (
        re.compile(r"^Got unexpected extra argument\(s\) \((?P<args>.*)\)$", re.S),
        lambda g: f"Argument(s) en trop : {g['args']}",
    ),
    (
        re.compile(r"^Option (?P<name>.+) requires an argument\.$"),
        lambda g: f"L'option {g['name']} attend une valeur.",
    ),
    (
        re.compile(r"^Option (?P<name>.+) requires (?P<n>\d+) arguments\.$"),
        lambda g: f"L'option {g['name']} attend {g['n']} valeurs.",
    ),
    (
        re.compile(r"^Option (?P<name>.+) does not take a value\.$"),
        lambda g: f"L'option {g['name']} ne prend pas de valeur.",
    ),
    (
        re.compile(r"^Value (?P<value>.+) is not a valid (?P<kind>\w+)\.$", re.S),
        lambda g: f"{g['value']} : {_NUMBER_KINDS.get(g['kind'], g['kind'])} est attendu",
    ),
    (
        re.compile(r"^(?P<kind>file|directory|path) (?P<name>.+) does not exist\.$", re.S | re.I),
        lambda g: f"{_PATH_KINDS[g['kind'].lower()]} introuvable : {g['name']}",
    ),
    (
        re.compile(
            r"^(?P<kind>file|directory|path) (?P<name>.+) is (?P<state>a directory|a file|"
            r"not readable|not writable)\.$",
            re.S | re.I,
        ),
        lambda g: f"{_PATH_KINDS[g['kind'].lower()]} {g['name']} {_PATH_STATES[g['state']]}",
    ),
    (
        re.compile(r"^Input should be greater than or equal to (?P<n>\S+)$"),
        lambda g: f"valeur attendue supérieure ou égale à {g['n']}",
    ),
    (
        re.compile(r"^Input should be less than or equal to (?P<n>\S+)$"),
        lambda g: f"valeur attendue inférieure ou égale à {g['n']}",
    ),
    (
        re.compile(r"^Input should be a valid (?P<kind>number|integer).*$", re.S),
        lambda g: f"{_NUMBER_KINDS[g['kind']]} est attendu",
    ),
]


def translate_error(message: str) -> str:
    """Return the French text of a usage error message written by typer.

    Parameters
    ----------
    message : str
        Message of a usage error (``UsageError.format_message()``).

    Returns
    -------
    str
        Its French text; a message already in French (written by territoires, e.g. for
        ``typer.BadParameter``) keeps its own wording inside the French frame.
    """
    for pattern, french in _ERRORS:
        match = pattern.match(message)
        if match:
            return french(match.groupdict())
    return message


def usage(line: str) -> str:
    """Usage line in French: ``Utilisation : territoires …``."""
    return re.sub(r"^(\s*)Usage:", r"\1Utilisation :", line, count=1)


def install() -> None:
    """Set typer's help panel titles and markers in French (idempotent).

    Typer reads these module constants each time it draws a help page or an error:
    call this before either is drawn (:meth:`FrenchHelp.format_help` does for help
    pages, the command group of the CLI for errors).
    """
    rich_utils = importlib.import_module("typer.rich_utils")
    for name, value in _RICH_CONSTANTS.items():
        setattr(rich_utils, name, value)


def _no_type(ctx: Any) -> None:
    """No type marker (``<file>``, ``<list[str]>``): an argument's name says what to type."""


class FrenchHelp:
    """Mixin for typer's command classes: French usage line and help option."""

    def get_params(self, ctx: Any) -> list[Any]:
        """Parameters, arguments shown by their French name only."""
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if param.param_type_name == "argument":
                param.display_type_rich = _no_type
        return params

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Help page, with typer's panel titles and markers in French."""
        install()
        super().format_help(ctx, formatter)  # type: ignore[misc]

    def get_usage(self, ctx: Any) -> str:
        """Usage line, in French."""
        return usage(super().get_usage(ctx))  # type: ignore[misc]

    def get_help_option(self, ctx: Any) -> Any:
        """The ``--help`` option, described in French and without a type marker."""
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.help = HELP_OPTION_TEXT
            option.metavar = ""
        return option
