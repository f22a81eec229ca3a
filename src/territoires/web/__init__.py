"""``territoires serve``: the open eligibility API and the staff page (FastAPI, uvicorn).

:func:`create_app` builds the ASGI application; :func:`serve` runs it with uvicorn. The
service reuses the library (:func:`territoires.classify`, the rule presets, the
catalogue, the export writers and maps) and loads the reference data once, at start-up.
Requires the ``web`` extra: ``pip install 'territoires[web]'``.
"""

from .app import ServeConfig, create_app
from .server import serve

__all__ = ["ServeConfig", "create_app", "serve"]
