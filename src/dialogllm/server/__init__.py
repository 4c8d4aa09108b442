"""``dialogllm serve``: LangGraph's HTTP API (what ``langgraph-sdk``, ``RemoteGraph``
and agent UIs speak) on the queue, workers and checkpointer, on plain Redis.

- :func:`create_app` builds the ASGI app; ``dialogllm.server:app`` is one built from
  the environment (``DIALOGLLM_SERVER_CONFIG``, default ``./langgraph.json``;
  ``DIALOGLLM_SERVER_API_KEY``), for ``uvicorn dialogllm.server:app``.
- :mod:`~dialogllm.server.assistants`, :mod:`~dialogllm.server.threads`,
  :mod:`~dialogllm.server.runs`: the routes; :mod:`~dialogllm.server.storage`: the
  server's own Redis records; :mod:`~dialogllm.server.wire`: LangGraph's JSON shapes.

>>> from langgraph_sdk import get_client
>>> client = get_client(url="http://127.0.0.1:2024")            # doctest: +SKIP
>>> await client.runs.wait(None, "debate", input={"motion": "Tea"})  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

# the module is ``application``, not ``app``: ``app`` is the ASGI app's name here
# (a submodule called ``app`` would be bound to it on import and hide it)
from dialogllm.server.application import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """``app``: an app built from the environment, made on first access (importing
    this package has no side effects); ``DIALOGLLM_SERVER_API_KEY`` requires the key,
    as it does for ``dialogllm serve``."""
    if name == "app":
        return create_app(
            os.environ.get("DIALOGLLM_SERVER_CONFIG", "langgraph.json"),
            api_key=os.environ.get("DIALOGLLM_SERVER_API_KEY") or None,
        )
    raise AttributeError(name)
