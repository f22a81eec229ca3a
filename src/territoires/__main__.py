"""``python -m territoires …``: the ``territoires`` command, for environments without it on PATH."""

from .cli import main

main()
