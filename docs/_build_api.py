"""Generate ``docs/api.md`` from the live docstrings and ``docs/donnees.md`` from the catalogue.

Usage::

    python docs/_build_api.py           # (re)write both files
    python docs/_build_api.py --check   # exit 1 when a file is stale

The API reference lists every public module of ``territoires`` with its public classes,
functions and documented constants (a module-level name in capitals, or preceded by a
``#:`` comment), found with :mod:`inspect` and :mod:`ast`: nothing is written by hand, so
the reference stays true to the code. Numpy-style docstring sections are turned into
Markdown lists. The command line is documented from the typer application itself.
``tests/test_docs.py`` fails when the committed files differ from what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

DOCS = Path(__file__).resolve().parent
API = DOCS / "api.md"
DONNEES = DOCS / "donnees.md"

#: Documented modules, in reading order, with a French title.
MODULES: tuple[tuple[str, str], ...] = (
    ("territoires.rules", "Règles d'éligibilité"),
    ("territoires.eligibility", "Classement des lieux"),
    ("territoires.engine", "Moteur spatial"),
    ("territoires.motifs", "Motifs en français"),
    ("territoires.grid", "Grille des communes"),
    ("territoires.prepared", "Référence préparée en cache"),
    ("territoires.places", "Lecture des lieux"),
    ("territoires.geocode", "Géocodage des adresses"),
    ("territoires.communes", "Lieux donnés par leur commune"),
    ("territoires.qpv_reach", "QPV à portée d'un lieu imprécis ou d'une commune"),
    ("territoires.loaders", "Chargement des données de référence"),
    ("territoires.catalogue", "Catalogue des sources"),
    ("territoires.examples", "Lieux d'exemple livrés avec le paquet"),
    ("territoires.coverage", "Analyse de couverture"),
    ("territoires.bilan", "Bilan des enveloppes de l'appel"),
    ("territoires.maps", "Cartes"),
    ("territoires.export", "Écriture des résultats"),
    ("territoires.outputs", "Chemins de sortie"),
    ("territoires.distributed", "Gros volumes avec dask (extra « dask »)"),
    ("territoires.crs", "Systèmes de coordonnées"),
    ("territoires.settings", "Réglages"),
    ("territoires.french", "Nombres en français"),
    ("territoires.nomenclatures", "Nomenclatures INSEE"),
    ("territoires.cli", "Ligne de commande"),
    ("territoires.web.app", "Service web : application, garde-fous (extra « web »)"),
    ("territoires.web.service", "Service web : données chargées une fois, vérifications groupées"),
    ("territoires.web.uploads", "Service web : fichiers reçus"),
)
_SECTIONS = {
    "Parameters": "Paramètres",
    "Returns": "Renvoie",
    "Yields": "Produit",
    "Raises": "Exceptions",
    "Attributes": "Attributs",
    "Examples": "Exemples",
    "Notes": "Notes",
    "See Also": "Voir aussi",
}
_ENTRY_SECTIONS = {"Parameters", "Returns", "Yields", "Raises", "Attributes"}
_ROLE = re.compile(r":(?:py:)?\w+:`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_MAX_VALUE = 90
_MAX_TABLE = 12
_KINDS = {
    "qpv": "Quartiers prioritaires de la politique de la ville (contours)",
    "qpv_indicateurs": "Indicateurs par quartier prioritaire",
    "communes_contours": "Contours des communes",
    "populations": "Communes, populations et anciens codes",
    "densite": "Grille communale de densité",
    "zonages": "Zonages d'étude INSEE (aires d'attraction des villes, unités urbaines)",
    "departements": "Contours des départements",
    "regions": "Contours des régions",
}


# --- docstrings --------------------------------------------------------------------


def inline(text: str) -> str:
    """Turn reST roles and literals into Markdown code spans."""
    return _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", text))


def split_sections(doc: str) -> list[tuple[str | None, list[str]]]:
    """Split a numpy-style docstring into (section title or None, lines)."""
    lines = inspect.cleandoc(doc).splitlines()
    sections: list[tuple[str | None, list[str]]] = [(None, [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and underline and set(underline) == {"-"} and not line.startswith(" "):
            sections.append((line.strip(), []))
            i += 2
            continue
        sections[-1][1].append(line)
        i += 1
    return [(title, body) for title, body in sections if title or any(s.strip() for s in body)]


def _entries(lines: list[str]) -> Iterator[tuple[str, str]]:
    """``(head, description)`` of each entry of a Parameters-like section."""
    head, body = None, []
    for line in lines:
        if line.strip() and not line.startswith(" "):
            if head is not None:
                yield head, " ".join(body)
            head, body = line.strip(), []
        elif line.strip():
            body.append(line.strip())
    if head is not None:
        yield head, " ".join(body)


def _entry(section: str, head: str, description: str) -> str:
    text = f" — {inline(description)}" if description else ""
    if section == "Raises":
        return f"- `{head}`{text}"
    if " : " in head:
        name, kind = head.split(" : ", 1)
        return f"- `{name.strip()}` (*{inline(kind.strip())}*){text}"
    if section in {"Returns", "Yields"}:
        return f"- *{inline(head)}*{text}"
    return f"- `{head}`{text}"


def _prose(lines: list[str]) -> list[str]:
    """Free text: doctest blocks fenced, ``term`` + indented definition as list items."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i].strip() if lines[i].lstrip().startswith(">>>") else lines[i])
                i += 1
            out += ["```pycon", *block, "```"]
            continue
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line.strip() and not line.startswith(" ") and following.startswith("    "):
            definition = []
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                definition.append(lines[i].strip())
                i += 1
            out.append(f"- {inline(line.strip())} : {inline(' '.join(definition))}")
            continue
        out.append(inline(line))
        i += 1
    return out


def render_doc(doc: str | None) -> list[str]:
    """A docstring as Markdown lines."""
    if not doc:
        return ["*(sans docstring)*"]
    out: list[str] = []
    for title, body in split_sections(doc):
        if title is None:
            out += [*_prose(body), ""]
            continue
        out += [f"**{_SECTIONS.get(title, title)}**", ""]
        if title in _ENTRY_SECTIONS:
            out += [_entry(title, head, text) for head, text in _entries(body)]
        elif title == "Examples":
            code = textwrap.dedent("\n".join(body)).strip("\n")
            out += ["```pycon", code, "```"]
        else:
            out += _prose(body)
        out.append("")
    return out


# --- signatures ----------------------------------------------------------------------


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def signature(name: str, obj: Callable[..., Any], skip_first: bool = False) -> str:
    """``name(params) -> return`` with annotations as written, wrapped at 88 columns."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    params = list(sig.parameters.values())[1 if skip_first else 0 :]
    parts: list[str] = []
    star_done = False
    for position, param in enumerate(params):
        kind = param.kind
        if kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(kind, "")
        star_done |= kind is param.VAR_POSITIONAL
        text = prefix + param.name
        annotation = _annotation(param.annotation)
        if annotation:
            text += f": {annotation}"
        if param.default is not param.empty:
            text += (" = " if annotation else "=") + _value_repr(param.default)
        parts.append(text)
        following = params[position + 1] if position + 1 < len(params) else None
        if kind is param.POSITIONAL_ONLY and (
            following is None or following.kind is not param.POSITIONAL_ONLY
        ):
            parts.append("/")
    returns = _annotation(sig.return_annotation)
    tail = f" -> {returns}" if returns else ""
    one_line = f"{name}({', '.join(parts)}){tail}"
    if len(one_line) <= 88:
        return one_line
    return f"{name}(\n" + "".join(f"    {part},\n" for part in parts) + f"){tail}"


def _value_repr(value: Any) -> str:
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(map(repr, value))) + "}"
    return repr(value)


# --- module members ------------------------------------------------------------------


def documented_constants(module: ModuleType) -> list[tuple[str, str]]:
    """Public module-level constants with their ``#:`` comment, in source order."""
    source = inspect.getsource(module)
    lines = source.splitlines()
    found = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        else:
            continue
        if not isinstance(target, ast.Name) or target.id.startswith("_"):
            continue
        comment = []
        row = node.lineno - 2
        while row >= 0 and lines[row].lstrip().startswith("#:"):
            comment.insert(0, lines[row].lstrip()[2:].strip())
            row -= 1
        if comment or target.id.isupper():
            found.append((target.id, " ".join(comment)))
    return found


def _constant(module: ModuleType, name: str, comment: str) -> list[str]:
    value = getattr(module, name)
    text = _value_repr(value)
    out = [f"#### `{module.__name__}.{name}`", ""]
    if comment:
        out += [inline(comment), ""]
    variable = getattr(module, "FROM_ENVIRONMENT", {}).get(name)
    if variable:  # the value depends on who imports: document where it comes from
        return [*out, f"Valeur : lue dans la variable d'environnement `{variable}` à l'import.", ""]
    plain = (str, int, float)
    if (
        isinstance(value, dict)
        and 0 < len(value) <= _MAX_TABLE
        and all(isinstance(k, plain) and isinstance(v, plain) for k, v in value.items())
    ):
        out += ["| clé | valeur |", "|---|---|"]
        out += [f"| `{k!r}` | {_cell(str(v))} |" for k, v in value.items()]
    elif len(text) <= _MAX_VALUE:
        out += [f"Valeur : `{text}`"]
    elif isinstance(value, list | tuple) and all(isinstance(v, plain) for v in value):
        out += [f"Valeur ({type(value).__name__}) : " + ", ".join(f"`{v!r}`" for v in value)]
    elif isinstance(value, dict) and all(isinstance(k, str) for k in value):
        out += [f"Type : `dict` ; clés : {', '.join(f'`{k}`' for k in value)}."]
    else:
        size = f", {len(value)} éléments" if hasattr(value, "__len__") else ""
        out += [f"Type : `{type(value).__name__}`{size}."]
    return [*out, ""]


def _is_routine(obj: Any) -> bool:
    return inspect.isroutine(inspect.unwrap(obj)) if callable(obj) else False


def _members(module: ModuleType, skip: set[Any]) -> tuple[list[str], list[str]]:
    """Public classes and functions defined in ``module``, in source order."""
    classes, functions = [], []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if obj in skip:
            continue
        if inspect.isclass(obj):
            classes.append(name)
        elif _is_routine(obj):
            functions.append(name)

    def line(name: str) -> int:
        try:
            return inspect.getsourcelines(inspect.unwrap(getattr(module, name)))[1]
        except (OSError, TypeError):
            return 0

    return sorted(classes, key=line), sorted(functions, key=line)


def _function(qualified: str, obj: Any, level: str = "###", method: bool = False) -> list[str]:
    short = qualified.rsplit(".", 1)[-1]
    return [
        f"{level} `{qualified}`",
        "",
        "```python",
        signature(short, obj, skip_first=method),
        "```",
        "",
        *render_doc(inspect.getdoc(obj)),
    ]


def _class(qualified: str, cls: type, level: str = "###") -> list[str]:
    short = cls.__name__
    out = [f"{level} `{qualified}`", "", "```python"]
    if issubclass(cls, BaseException) or "__init__" not in vars(cls):
        bases = ", ".join(base.__name__ for base in cls.__bases__)
        out.append(f"class {short}({bases})")
    else:
        out.append("class " + signature(short, cls).removesuffix(" -> None"))
    out += ["```", "", *render_doc(inspect.getdoc(cls))]
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out += [f"#### `{short}.{name}` (propriété)", "", *render_doc(member.__doc__)]
        elif isinstance(member, classmethod | staticmethod):
            function = member.__func__
            out += _function(f"{short}.{name}", function, "####", isinstance(member, classmethod))
        elif inspect.isfunction(member):
            out += _function(f"{short}.{name}", member, "####", method=True)
    return out


def _anchor(title: str) -> str:
    """GitHub-style anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", title.lower(), flags=re.UNICODE)
    return text.strip().replace(" ", "-")


# --- command line --------------------------------------------------------------------


def _cli_commands() -> tuple[list[str], set[Any]]:
    """Markdown of every command of the ``territoires`` CLI, and their callbacks."""
    import typer

    from territoires import cli

    root = typer.main.get_command(cli.app)
    out = [
        "### Commandes",
        "",
        "Options globales (avant la commande) :",
        "",
        *_params_table(root.params),
    ]
    callbacks: set[Any] = set()

    def walk(group: Any, path: str) -> None:
        for name, command in group.commands.items():
            full = f"{path} {name}"
            if hasattr(command, "commands"):
                out.extend([f"#### `{full}`", "", inline(command.help or ""), ""])
                walk(command, full)
                continue
            callbacks.add(inspect.unwrap(command.callback))
            arguments = " ".join(
                _argument_usage(p) for p in command.params if p.param_type_name == "argument"
            )
            usage = f"{full} [OPTIONS] {arguments}".rstrip()
            out.extend([f"#### `{full}`", "", "```text", usage, "```", ""])
            out.extend([*_prose(inspect.cleandoc(command.help or "").splitlines()), ""])
            out.extend(_params_table(command.params))

    walk(root, "territoires")
    return out, callbacks


def _argument_usage(param: Any) -> str:
    name = param.name.upper()
    if param.nargs == -1:
        name += "..."
    return name if param.required else f"[{name}]"


def _params_table(params: list[Any]) -> list[str]:
    if not params:
        return []
    rows = ["| paramètre | description | défaut |", "|---|---|---|"]
    for param in params:
        if param.param_type_name == "argument":
            label = f"`{_argument_usage(param)}`"
        else:
            label = ", ".join(f"`{opt}`" for opt in [*param.opts, *param.secondary_opts])
        notes = []
        if param.required:
            notes.append("obligatoire")
        if getattr(param, "is_flag", False):
            notes.append("drapeau")
        if getattr(param, "min", None) is not None:
            notes.append(f"≥ {param.min}")
        help_text = _cell(inline(param.help or ""))
        if notes:
            help_text += f" ({', '.join(notes)})"
        shown = param.default not in (None, False) and not getattr(param, "is_flag", False)
        default = f"`{param.default}`" if shown else ""
        rows.append(f"| {label} | {help_text} | {default} |")
    return [*rows, ""]


# --- documents -----------------------------------------------------------------------


def render_api() -> str:
    """The whole API reference, as Markdown."""
    import territoires

    out = [
        "# Référence de l'API Python",
        "",
        "<!-- Fichier généré par docs/_build_api.py à partir des docstrings : ne pas "
        "modifier à la main. -->",
        "",
        f"`territoires` {territoires.__version__}. Cette page est produite à partir des "
        "docstrings du code (rédigées en anglais, au format numpy) par "
        "`python docs/_build_api.py` ; un test vérifie qu'elle est à jour. Le guide de "
        "l'utilisateur ([guide.md](guide.md)) explique les notions ; le catalogue des "
        "données est dans [donnees.md](donnees.md).",
        "",
        "## Sommaire",
        "",
        "- [Paquet `territoires`](#paquet-territoires)",
    ]
    for name, title in MODULES:
        heading = f"`{name}` — {title}"
        out.append(f"- [{heading}](#{_anchor(heading)})")
    out += ["", "## Paquet `territoires`", "", *render_doc(territoires.__doc__)]
    out += ["Noms exportés par `import territoires` :", ""]
    exceptions = []
    for name in territoires.__all__:
        obj = getattr(territoires, name)
        home = getattr(obj, "__module__", None)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            exceptions.append(name)
            out.append(f"- `territoires.{name}` : exception, voir ci-dessous")
        elif home and (inspect.isclass(obj) or _is_routine(obj)):
            out.append(f"- `territoires.{name}` : `{home}.{name}`")
        else:
            out.append(f"- `territoires.{name}` : constante, voir `territoires.rules.{name}`")
    out += ["", "### Exceptions", ""]
    for name in exceptions:
        out += _class(f"territoires.{name}", getattr(territoires, name), "####")

    for name, title in MODULES:
        module = importlib.import_module(name)
        skip: set[Any] = set()
        extra: list[str] = []
        if name == "territoires.cli":
            extra, skip = _cli_commands()
        out += [f"## `{name}` — {title}", "", *render_doc(module.__doc__), *extra]
        constants = documented_constants(module)
        classes, functions = _members(module, skip)
        if constants:
            out += ["### Constantes", ""]
            for constant, comment in constants:
                out += _constant(module, constant, comment)
        for cls in classes:
            out += _class(f"{name}.{cls}", getattr(module, cls))
        for function in functions:
            out += _function(f"{name}.{function}", getattr(module, function))
    return _tidy(out)


def render_donnees() -> str:
    """The catalogue of reference datasets, as Markdown."""
    from territoires import catalogue

    datasets = list(catalogue.datasets().values())
    out = [
        "# Catalogue des données de référence",
        "",
        "<!-- Fichier généré par docs/_build_api.py à partir de data/*/catalogue.json : "
        "ne pas modifier à la main. -->",
        "",
        "Chaque jeu décrit un fichier d'un éditeur à un millésime. `territoires` le lit "
        "dans le dossier miroir (`TERRITOIRES_DATA_DIR`), sinon dans le cache de "
        "téléchargement, sinon le télécharge chez l'éditeur (sauf si "
        "`TERRITOIRES_OFFLINE=1`). Les jeux d'un même type sont essayés du millésime le "
        "plus récent au plus ancien, puis par priorité croissante : le premier présent sur "
        "le disque est lu, à défaut le premier téléchargeable (pour les zonages, autant de "
        "jeux que nécessaire pour fournir toutes les colonnes). `territoires data list` "
        "indique lesquels sont présents sur le disque ; `territoires data info JEU` affiche "
        "le fichier lu, son empreinte et son nombre de lignes.",
        "",
        "## Vue d'ensemble",
        "",
        "| jeu | type | millésime | couverture | licence | priorité |",
        "|---|---|---|---|---|---|",
    ]
    for ds in datasets:
        out.append(
            f"| [`{ds.name}`](#{_anchor(ds.name)}) | {ds.kind} | {ds.vintage} | "
            f"{_cell(ds.coverage)} | {_cell(ds.licence)} | {ds.priority} |"
        )
    out.append("")
    kinds = list(dict.fromkeys(ds.kind for ds in datasets))
    for kind in kinds:
        out += [f"## {_KINDS.get(kind, kind)} (`{kind}`)", ""]
        for ds in (d for d in datasets if d.kind == kind):
            out += [f"### {ds.name}", "", ds.title, ""]
            rows = [
                ("Millésime", str(ds.vintage)),
                ("Éditeur", ds.publisher),
                ("Licence", ds.licence),
                ("Couverture", ds.coverage),
            ]
            if ds.departements:
                rows.append(("Départements couverts", ", ".join(ds.departements)))
            if ds.url:
                rows.append(("Téléchargement", f"<{ds.url}>"))
            elif ds.datagouv:
                rows.append(
                    (
                        "Téléchargement",
                        f"data.gouv.fr, jeu `{ds.datagouv['dataset']}`, ressource "
                        f"`{ds.datagouv['resource']}` (adresse résolue par l'API data.gouv.fr)",
                    )
                )
            else:
                rows.append(("Téléchargement", "aucun : miroir seulement"))
            if ds.page:
                rows.append(("Page de l'éditeur", f"<{ds.page}>"))
            rows.append(("Format", ds.format + (f", {ds.crs}" if ds.crs else "")))
            if ds.member or ds.sheet:
                rows.append(("Lu dans", " / ".join(filter(None, [ds.member, ds.sheet]))))
            rows.append(("Fichier dans le miroir", " ou ".join(f"`{p}`" for p in ds.mirror)))
            rows.append(("sha256", f"`{ds.sha256}`" if ds.sha256 else "non fixé"))
            columns = ", ".join(f"`{src}` → `{dst}`" for src, dst in ds.columns.items())
            rows.append(("Colonnes lues", columns))
            rows.append(("Priorité", str(ds.priority)))
            out += ["| | |", "|---|---|"]
            out += [f"| {key} | {_cell(value)} |" for key, value in rows]
            out.append("")
    return _tidy(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _tidy(lines: list[str]) -> str:
    """Join lines: no trailing spaces, at most one blank line in a row, final newline."""
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its expected content."""
    return {API: render_api(), DONNEES: render_donnees()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a file is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"écrit : {path}")
    if stale:
        print(f"à régénérer (python docs/_build_api.py) : {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
