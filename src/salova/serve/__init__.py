"""The HTTP server: upload and index videos, ask about them, OpenAI-compatible chat, a web page.

Public entry points: :func:`create_app` (a FastAPI app; run it with uvicorn, or ``salova serve``)
and :class:`ServerSettings`. Needs the ``serve`` extra: ``fastapi``, ``uvicorn``, ``python-multipart``.

Example:
    >>> import uvicorn
    >>> from salova.serve import ServerSettings, create_app
    >>> app = create_app(ServerSettings(model="tiny", api_key="secret"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from salova.serve.app import API_PREFIX, create_app
from salova.serve.config import DEFAULT_HOST, DEFAULT_PORT, ServerSettings

__all__ = ["API_PREFIX", "DEFAULT_HOST", "DEFAULT_PORT", "ServerSettings", "create_app"]
