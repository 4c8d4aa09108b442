"""The webhook SSRF policy: which URLs and addresses a webhook may reach, and the
pinned transport that checks again at delivery. DNS answers come from a stand-in
resolver (``dns``) so each case names the address a host resolves to."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from dialogllm.errors import ConfigError, WebhookBlockedError
from dialogllm.server.webhook_policy import PinnedTransport, WebhookPolicy
from dialogllm.server.webhooks import WebhookConfig


def dns(*answers: str) -> object:
    """A resolver answering ``answers`` for every host, recording what it was asked."""
    asked: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return list(answers)

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


DEFAULT = WebhookPolicy()
LOOPBACK_OK = WebhookPolicy(disable_loopback=False)
STRICT = WebhookPolicy(disable_private_ips=True)


@pytest.mark.parametrize(
    ("policy", "url", "address", "reason"),
    [
        (DEFAULT, "http://127.0.0.1:8000/h", "127.0.0.1", "loopback IP range"),
        (DEFAULT, "http://[::1]/h", "::1", "loopback IP range"),
        (DEFAULT, "http://localhost/h", "127.0.0.1", "localhost address"),
        (DEFAULT, "http://api.localhost/h", "127.0.0.1", "localhost address"),
        # a public-looking name that resolves to loopback (DNS rebinding)
        (DEFAULT, "http://rebind.example.com/h", "127.0.0.5", "loopback IP range"),
        (DEFAULT, "http://x.example.com/h", "::ffff:127.0.0.1", "loopback IP range"),
        (DEFAULT, "http://x.example.com/h", "2002:7f00:1::", "loopback IP range"),
        (DEFAULT, "http://x.example.com/h", "64:ff9b::7f00:1", "loopback IP range"),
        (LOOPBACK_OK, "http://x.example.com/h", "169.254.169.254", "blocked IP range"),
        (LOOPBACK_OK, "http://x.example.com/h", "fe80::1%eth0", "blocked IP range"),
        (LOOPBACK_OK, "http://x.example.com/h", "0.0.0.0", "blocked IP range"),
        (LOOPBACK_OK, "http://x.example.com/h", "224.0.0.1", "blocked IP range"),
        (DEFAULT, "http://x.example.com/h", "100.100.100.200", "cloud metadata"),
        (LOOPBACK_OK, "http://metadata.google.internal/", "8.8.8.8", "cloud metadata"),
        (STRICT, "http://x.example.com/h", "10.1.2.3", "private IP range"),
        (STRICT, "http://x.example.com/h", "192.168.0.9", "private IP range"),
        (STRICT, "http://x.example.com/h", "100.64.1.1", "private IP range"),
        (STRICT, "http://x.example.com/h", "fd12::1", "private IP range"),
        (STRICT, "http://hook.ns.svc.cluster.local/h", "8.8.8.8", "Kubernetes"),
    ],
)
async def test_refused_targets_name_why(
    policy: WebhookPolicy, url: str, address: str, reason: str
) -> None:
    with pytest.raises(WebhookBlockedError, match="Webhook host blocked") as refused:
        await policy.check(url, resolver=dns(address))  # type: ignore[arg-type]
    assert reason in refused.value.reason


@pytest.mark.parametrize(
    ("policy", "url", "address"),
    [
        (DEFAULT, "https://hooks.example.com/h", "93.184.216.34"),
        (DEFAULT, "http://hooks.internal:8080/h", "10.0.0.7"),  # private: allowed
        (DEFAULT, "http://hooks.example.com/h", "2606:4700::1111"),
        (LOOPBACK_OK, "http://127.0.0.1:9999/h", "127.0.0.1"),
        (LOOPBACK_OK, "http://localhost:9999/h", "127.0.0.1"),
    ],
)
async def test_allowed_targets_pass(
    policy: WebhookPolicy, url: str, address: str
) -> None:
    assert await policy.check(url, resolver=dns(address)) == url  # type: ignore[arg-type]


async def test_every_address_a_host_resolves_to_is_checked() -> None:
    with pytest.raises(WebhookBlockedError, match="loopback"):
        await DEFAULT.check(
            "http://h.example.com/", resolver=dns("8.8.8.8", "127.0.0.1")
        )  # type: ignore[arg-type]


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    async def fails(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(WebhookBlockedError, match="DNS resolution failed"):
        await DEFAULT.check("http://nowhere.invalid/", resolver=fails)
    with pytest.raises(WebhookBlockedError, match="DNS resolution failed"):
        await DEFAULT.check("http://empty.example.com/", resolver=dns())  # type: ignore[arg-type]


async def test_the_system_resolver_is_used_by_default() -> None:
    with pytest.raises(WebhookBlockedError, match="loopback IP range"):
        await DEFAULT.check("http://127.0.0.1:1/h")
    assert await LOOPBACK_OK.check("http://127.0.0.1:1/h")


async def test_url_shape_port_scheme_and_length_rules() -> None:
    public = dns("93.184.216.34")
    for url in ("file:///etc/passwd", "ftp://x/y", "/runs/internal", "http:///x"):
        with pytest.raises(WebhookBlockedError, match="absolute http"):
            await DEFAULT.check(url, resolver=public)  # type: ignore[arg-type]
    with pytest.raises(WebhookBlockedError, match="invalid port"):
        await DEFAULT.check("http://x.example.com:99999/", resolver=public)  # type: ignore[arg-type]
    https_only = WebhookPolicy(require_https=True, allowed_ports=(443,))
    with pytest.raises(WebhookBlockedError, match="must use https"):
        await https_only.check("http://x.example.com/", resolver=public)  # type: ignore[arg-type]
    with pytest.raises(WebhookBlockedError, match="port 8443 not allowed"):
        await https_only.check("https://x.example.com:8443/", resolver=public)  # type: ignore[arg-type]
    assert await https_only.check("https://x.example.com/h", resolver=public)  # type: ignore[arg-type]
    short = WebhookPolicy(max_url_length=30)
    with pytest.raises(WebhookBlockedError, match="longer than 30"):
        await short.check("https://x.example.com/" + "a" * 20, resolver=public)  # type: ignore[arg-type]


async def test_allowed_domains_limit_hosts_and_may_be_loopback_never_metadata() -> None:
    policy = WebhookPolicy(allowed_domains=("hooks.corp.test", "*.example.org"))
    for url in ("http://evil.test/", "http://example.org/", "http://xhooks.corp.test/"):
        with pytest.raises(WebhookBlockedError, match="domain not allowed"):
            await policy.check(url, resolver=dns("93.184.216.34"))  # type: ignore[arg-type]
    # the operator named these hosts: loopback and private are their choice
    assert await policy.check("http://a.b.example.org/", resolver=dns("127.0.0.1"))  # type: ignore[arg-type]
    assert await policy.check("http://HOOKS.corp.test./", resolver=dns("10.0.0.1"))  # type: ignore[arg-type]
    with pytest.raises(WebhookBlockedError, match="blocked IP range"):
        await policy.check("http://hooks.corp.test/", resolver=dns("169.254.169.254"))  # type: ignore[arg-type]


def test_the_policy_reads_langgraph_json_keys() -> None:
    assert WebhookPolicy.from_config(None) == DEFAULT
    assert WebhookPolicy.from_config({}) == DEFAULT
    read = WebhookPolicy.from_config(
        {
            "url": {
                "disable_loopback": False,
                "disable_private_ips": True,
                "allowed_domains": ["Hooks.Example.com", "*.corp.test"],
                "allowed_ports": [443, 8443],
                "require_https": True,
                "max_url_length": 512,
            },
            "headers": {},  # other LangGraph webhook keys are not the policy's
        }
    )
    assert read == WebhookPolicy(
        disable_loopback=False,
        disable_private_ips=True,
        allowed_domains=("hooks.example.com", "*.corp.test"),
        allowed_ports=(443, 8443),
        require_https=True,
        max_url_length=512,
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("yes", '"webhooks" in langgraph.json must be an object'),
        ({"url": []}, '"webhooks.url" in langgraph.json must be an object'),
        ({"url": {"disable_loopbak": False}}, 'unknown "webhooks.url" keys'),
        ({"url": {"disable_loopback": "no"}}, "must be true or false"),
        ({"url": {"allowed_domains": "x.com"}}, "list of non-empty strings"),
        ({"url": {"allowed_domains": [""]}}, "list of non-empty strings"),
        ({"url": {"allowed_domains": ["a.*.com"]}}, "a wildcard may only begin"),
        ({"url": {"allowed_ports": [0]}}, "list of ports"),
        ({"url": {"allowed_ports": [True]}}, "list of ports"),
        ({"url": {"max_url_length": 0}}, "positive int"),
    ],
)
def test_bad_policy_values_are_config_errors_naming_the_key(
    section: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        WebhookPolicy.from_config(section)  # type: ignore[arg-type]


async def test_the_transport_connects_to_the_address_it_checked() -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    transport = PinnedTransport(
        DEFAULT,
        resolver=dns("93.184.216.34"),
        inner=httpx.MockTransport(answer),  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.post("https://hooks.example.com/h?x=1")).status_code == 200
    [request] = sent
    assert request.url == "https://93.184.216.34/h?x=1"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_the_transport_refuses_a_host_that_now_resolves_to_loopback() -> None:
    # accepted when the run took it; at delivery the name points at loopback
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> list[str]:
        return next(answers)

    url = "http://hooks.example.com/h"
    assert await DEFAULT.check(url, resolver=rebinding)
    sent: list[httpx.Request] = []
    transport = PinnedTransport(
        DEFAULT,
        resolver=rebinding,
        inner=httpx.MockTransport(lambda r: sent.append(r) or httpx.Response(200)),  # type: ignore[func-returns-value]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(WebhookBlockedError, match="loopback IP range"):
            await client.post(url)
    assert sent == []  # nothing was sent anywhere


def test_serve_refuses_a_bad_webhooks_section_before_it_starts(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dialogllm import cli

    config = tmp_path / "langgraph.json"
    config.write_text(json.dumps({"graphs": {}, "webhooks": {"url": {"x": 1}}}))
    result = CliRunner().invoke(cli.app, ["serve", "--config", str(config)])
    assert result.exit_code == cli.EXIT_BAD_INPUT, result.output
    assert result.output.startswith('error: unknown "webhooks.url" keys')
    assert "Traceback" not in result.output


def test_headers_are_rendered_from_prefixed_variables_once() -> None:
    env = {"LG_WEBHOOK_TOKEN": "t0ken", "HOME": "/root"}
    config = WebhookConfig.from_config(
        {
            "headers": {
                "Authorization": "Bearer ${{ env.LG_WEBHOOK_TOKEN }}",
                "X-Both": "${{env.LG_WEBHOOK_TOKEN}}-${{ env.LG_WEBHOOK_TOKEN }}",
                "X-Plain": "yes",
            }
        },
        environ=env,
    )
    assert dict(config.headers) == {
        "Authorization": "Bearer t0ken",
        "X-Both": "t0ken-t0ken",
        "X-Plain": "yes",
    }
    assert "t0ken" not in repr(config)  # a secret stays out of logs and reprs
    own = WebhookConfig.from_config(
        {"env_prefix": "HOOK_", "headers": {"X": "${{ env.HOOK_A }}"}},
        environ={"HOOK_A": "a"},
    )
    assert dict(own.headers) == {"X": "a"}


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"headers": {"X": "${{ env.HOME }}"}}, "must begin with the env_prefix"),
        (
            {"headers": {"X": "${{ env.LG_WEBHOOK_NONE }}"}},
            "LG_WEBHOOK_NONE is not set",
        ),
        ({"headers": {"X": "${{ HOME }}"}}, "write env.NAME"),
        ({"headers": {"X": "${{ env.A.B }}"}}, "write env.NAME"),
        ({"headers": {"X": 3}}, "map header names to strings"),
        ({"headers": ["X"]}, "map header names to strings"),
        ({"env_prefix": 3}, 'env_prefix" must be a string'),
        ({"allowed_fields": "run_id"}, "must be a list of names"),
        ({"allowed_fields": ["run_id", "secret"]}, "unknown fields ['secret']"),
        ({"sign": True}, "unknown \"webhooks\" keys ['sign']"),
    ],
)
def test_bad_webhook_sections_are_config_errors(section: object, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        WebhookConfig.from_config(section, environ={"HOME": "/root"})  # type: ignore[arg-type]
    assert message in str(refused.value)
    assert "/root" not in str(refused.value)  # no variable's value in a message


def test_allowed_fields_choose_what_the_body_carries() -> None:
    full = {"run_id": "r", "status": "success", "values": {"n": 1}, "kwargs": {}}
    assert WebhookConfig().body(full) == full
    picked = WebhookConfig.from_config({"allowed_fields": ["run_id", "status"]})
    assert picked.body(full) == {"run_id": "r", "status": "success"}
    assert picked.policy == DEFAULT


async def test_at_delivery_a_host_that_does_not_resolve_is_a_connection_error() -> None:
    # DNS may answer again: the delivery's retries treat it as a connection error
    transport = PinnedTransport(
        DEFAULT,
        resolver=dns(),
        inner=httpx.MockTransport(lambda r: httpx.Response(200)),  # type: ignore[arg-type]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.ConnectError, match="DNS resolution failed"):
            await client.post("http://hooks.example.com/h")
