"""A run's webhook: POSTed to the client's URL when the run ends, retried when the
receiver fails."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from dialogllm.server.webhook_policy import WebhookPolicy
from dialogllm.server.webhooks import WebhookConfig, deliver
from tests.conftest import REDIS_URL
from tests.integration.server.conftest import APP, Server, start_server
from tests.integration.server.fleet import Fleet, fleet
from tests.integration.server.receiver import Receiver

__all__ = ["fleet"]  # the fixture, imported for pytest

pytestmark = pytest.mark.integration


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(fail_first=2)
    yield found
    found.http.shutdown()


async def test_the_webhook_gets_the_ended_run_after_the_receiver_recovers(
    server: Server, receiver: Receiver
) -> None:
    client = get_client(url=server.url)
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"], "count", input={"steps": 2}, webhook=receiver.url
    )

    [body] = receiver.wait(1)
    assert receiver.statuses == [503, 503, 200]  # retried, then delivered once
    assert body["run_id"] == run["run_id"]
    assert body["thread_id"] == thread["thread_id"]
    assert body["status"] == "success"
    assert body["values"]["n"] == 2


async def test_a_webhook_that_is_not_an_http_url_is_refused(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post(
            "/runs", json={"assistant_id": "count", "webhook": "file:///etc/passwd"}
        )
    assert refused.status_code == 422
    assert "webhook" in refused.json()["detail"]


async def test_a_killed_api_process_leaves_its_webhook_and_clean_up_to_another(
    fleet: Fleet, tmp_path: Path
) -> None:
    quick = {"DIALOGLLM_FOLLOWUP_CLAIM_SECONDS": "1"}
    first, second = fleet.api(env=quick), fleet.api(env=quick)
    fleet.worker()
    receiver = Receiver()
    gate = tmp_path / "gate"
    try:
        run = await get_client(url=first.url).runs.create(
            None,
            "slow",
            input={"steps": 3, "gate": str(gate), "hold_after": 1},
            webhook=receiver.url,
        )  # stateless: its thread is deleted once it ends
        first.kill()  # kill -9: the process that created the run and its follow-up
        gate.touch()
        [body] = receiver.wait(1, timeout=60)
        assert body["run_id"] == run["run_id"] and body["status"] == "success"
        assert body["values"]["n"] == 3
        client = get_client(url=second.url)
        deadline = time.monotonic() + 30
        while True:
            try:
                await client.threads.get(run["thread_id"])
            except NotFoundError:
                break
            assert time.monotonic() < deadline, "the stateless thread was kept"
            await asyncio.sleep(0.1)
        time.sleep(3)  # three more claim periods: nobody sends it again
        assert len(receiver.bodies) == 1, fleet.logs()
        pending = redis.Redis.from_url(REDIS_URL).zcard(f"{fleet.prefix}:srv:followups")
        assert pending == 0  # done, and recorded done
    finally:
        receiver.http.shutdown()


@pytest.fixture(scope="module")
def guarded(
    module_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server whose langgraph.json says nothing of webhooks: the default policy,
    which refuses loopback targets (as LangGraph's server does)."""
    app = APP.parent
    config = tmp_path_factory.mktemp("guarded") / "langgraph.json"
    config.write_text(
        json.dumps(
            {"dependencies": [str(app)], "graphs": {"count": f"{app}/graphs.py:count"}}
        )
    )
    started = start_server(f"{module_prefix}-guarded", config=config)
    yield started
    started.stop()


async def test_loopback_webhooks_are_refused_by_default(
    guarded: Server, receiver: Receiver
) -> None:
    client = get_client(url=guarded.url)
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost")):
        with pytest.raises(UnprocessableEntityError, match="Webhook host blocked"):
            await client.runs.create(None, "count", input={"steps": 1}, webhook=url)
        with pytest.raises(UnprocessableEntityError, match="Webhook host blocked"):
            await client.crons.create("count", schedule="0 9 * * *", webhook=url)
    assert await client.threads.search() == []  # nothing was made
    assert await client.crons.search() == []
    assert receiver.statuses == []


async def test_a_delivery_the_policy_refuses_sends_nothing(receiver: Receiver) -> None:
    async def body() -> dict[str, object]:
        return {"run_id": "r"}

    refused = WebhookConfig(policy=WebhookPolicy())
    sent = await deliver(receiver.url, body, run_id="r", config=refused)
    assert sent is False and receiver.statuses == []  # refused, never retried
    allowed = WebhookConfig(policy=WebhookPolicy(disable_loopback=False))
    assert await deliver(receiver.url, body, run_id="r", config=allowed, base_s=0.01)
    assert receiver.statuses == [503, 503, 200]


async def test_configured_headers_and_fields_are_what_a_webhook_sends(
    module_prefix: str, tmp_path: Path
) -> None:
    app = APP.parent
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "dependencies": [str(app)],
                "graphs": {"count": f"{app}/graphs.py:count"},
                "webhooks": {
                    "url": {"disable_loopback": False},
                    "headers": {
                        "Authorization": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}",
                        "X-Source": "dialogllm",
                    },
                    "allowed_fields": ["run_id", "status", "values", "run_ended_at"],
                },
            }
        )
    )
    secret = f"s3cret-{uuid.uuid4().hex}"
    server = start_server(
        f"{module_prefix}-headers", config=config, env={"LG_WEBHOOK_TOKEN": secret}
    )
    receiver = Receiver()
    try:
        client = get_client(url=server.url)
        run = await client.runs.create(
            None, "count", input={"steps": 1}, webhook=receiver.url
        )
        [body] = await asyncio.to_thread(receiver.wait, 1, 30)
        assert set(body) == {"run_id", "status", "values", "run_ended_at"}
        assert body["run_id"] == run["run_id"] and body["values"]["n"] == 1
        [headers] = receiver.headers
        assert headers["Authorization"] == f"Bearer {secret}"
        assert headers["X-Source"] == "dialogllm"
    finally:
        receiver.http.shutdown()
        server.stop()
    assert secret not in server.output()
