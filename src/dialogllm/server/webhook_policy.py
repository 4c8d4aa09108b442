"""Which hosts a webhook may reach: the server's guard against server-side request
forgery (SSRF).

A webhook URL comes from the client, and the server POSTs to it: unguarded, any
caller could make the server reach its own loopback services, a cloud metadata
endpoint or a private network. The policy is LangGraph Platform's, with the same
keys, read from ``langgraph.json``::

    "webhooks": {"url": {
        "disable_loopback": true,      # 127.0.0.0/8, ::1, localhost (default: true)
        "disable_private_ips": false,  # 10/8, 172.16/12, 192.168/16, 100.64/10,
                                       # fc00::/7, *.svc.cluster.local (default: false)
        "allowed_domains": ["hooks.example.com", "*.example.org"],  # default: any
        "allowed_ports": [443],        # default: any
        "require_https": false,        # default: false
        "max_url_length": 4096
    }}

Always refused: link-local addresses (169.254.0.0/16, where cloud metadata lives,
and fe80::/10), cloud metadata hosts, unspecified, multicast, reserved and
documentation ranges, and IPv6 forms that embed a refused IPv4 address.

A URL is checked when a run or cron takes it (the client gets 422 ``Webhook host
blocked: <reason>``, as from LangGraph's server), and again at each delivery: the
host is resolved, every address checked, and the POST goes to a checked address
(:class:`PinnedTransport`), so a name that resolves elsewhere later (DNS rebinding)
reaches nothing it should not. A host named in ``allowed_domains`` is the operator's
choice and may be loopback or private, never link-local or metadata.

>>> policy = WebhookPolicy.from_config({"url": {"disable_loopback": False}})
>>> await policy.check("http://127.0.0.1:9000/hook")          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from dialogllm.errors import ConfigError, WebhookBlockedError

__all__ = ["PinnedTransport", "Resolver", "WebhookPolicy"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port)`` to the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

_NETWORKS = ipaddress.ip_network
_ALWAYS_REFUSED = tuple(
    _NETWORKS(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "169.254.0.0/16",  # link-local: cloud metadata (169.254.169.254)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/128",  # unspecified
        "fe80::/10",  # link-local
        "ff00::/8",  # multicast
        "2001:db8::/32",  # documentation
        "64:ff9b:1::/48",  # local NAT64 (its IPv4 is not where we can check it)
    )
)
_LOOPBACK = tuple(_NETWORKS(n) for n in ("127.0.0.0/8", "::1/128"))
_PRIVATE = tuple(
    _NETWORKS(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT
        "fc00::/7",  # unique local
    )
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254")
)
_METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.amazonaws.com", "instance-data"}
)
_LOCALHOST_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "host.docker.internal"}
)
_NAT64 = _NETWORKS("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4 or NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(address.packed[-4:])
    return None


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f'"webhooks.url.{name}" must be a list of non-empty strings')
    return tuple(v.strip().lower() for v in value)


@dataclass(frozen=True)
class WebhookPolicy:
    """Which webhook URLs the server accepts and POSTs to (see the module doc)."""

    disable_loopback: bool = True
    disable_private_ips: bool = False
    allowed_domains: tuple[str, ...] = ()
    allowed_ports: tuple[int, ...] = ()
    require_https: bool = False
    max_url_length: int = 4096

    @classmethod
    def from_config(cls, webhooks: Mapping[str, Any] | None) -> WebhookPolicy:
        """The policy of a ``langgraph.json``'s ``"webhooks"`` section (``None``:
        the defaults). A bad value is a :class:`ConfigError` naming the key.

        >>> WebhookPolicy.from_config({"url": {"allowed_ports": [443]}}).allowed_ports
        (443,)
        """
        if webhooks is None:
            return cls()
        if not isinstance(webhooks, Mapping):
            raise ConfigError('"webhooks" in langgraph.json must be an object')
        url = webhooks.get("url", {})
        if not isinstance(url, Mapping):
            raise ConfigError('"webhooks.url" in langgraph.json must be an object')
        known = {f: getattr(cls, f) for f in cls.__dataclass_fields__}
        unknown = sorted(set(url) - set(known))
        if unknown:
            raise ConfigError(
                f'unknown "webhooks.url" keys {unknown} in langgraph.json; known: '
                f"{sorted(known)}"
            )
        for flag in ("disable_loopback", "disable_private_ips", "require_https"):
            if not isinstance(url.get(flag, False), bool):
                raise ConfigError(f'"webhooks.url.{flag}" must be true or false')
        domains = _strings(url.get("allowed_domains", []), "allowed_domains")
        for domain in domains:
            if "*" in domain.removeprefix("*."):
                raise ConfigError(
                    f'"webhooks.url.allowed_domains": {domain!r}: a wildcard may '
                    'only begin a name, as in "*.example.com"'
                )
        ports = url.get("allowed_ports", [])
        if not isinstance(ports, list) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536
            for p in ports
        ):
            raise ConfigError('"webhooks.url.allowed_ports" must be a list of ports')
        length = url.get("max_url_length", cls.max_url_length)
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise ConfigError('"webhooks.url.max_url_length" must be a positive int')
        return cls(
            disable_loopback=url.get("disable_loopback", True),
            disable_private_ips=url.get("disable_private_ips", False),
            allowed_domains=domains,
            allowed_ports=tuple(ports),
            require_https=url.get("require_https", False),
            max_url_length=length,
        )

    def _allowlisted(self, host: str) -> bool:
        return any(
            host.endswith(domain[1:]) if domain.startswith("*.") else host == domain
            for domain in self.allowed_domains
        )

    def _check_parts(self, url: str) -> tuple[str, int, bool]:
        """The host and port of ``url`` and whether the operator allowlisted the
        host, after every check that needs no DNS."""
        if len(url) > self.max_url_length:
            raise WebhookBlockedError(
                f"the URL is longer than {self.max_url_length} characters",
                reason="url too long",
            )
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
        if scheme not in ("http", "https") or not hostname:
            raise WebhookBlockedError(
                "webhook must be an absolute http:// or https:// URL",
                reason="not an http(s) URL",
            )
        if self.require_https and scheme != "https":
            raise WebhookBlockedError("webhook must use https", reason="not https")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise WebhookBlockedError(
                "webhook URL has an invalid port", reason="invalid port"
            ) from None
        if self.allowed_ports and port not in self.allowed_ports:
            raise WebhookBlockedError(
                f"Webhook port {port} not allowed", reason="port not allowed"
            )
        host = hostname.lower().rstrip(".")
        allowlisted = self._allowlisted(host)
        if self.allowed_domains and not allowlisted:
            raise WebhookBlockedError(
                "Webhook domain not allowed", reason="domain not allowed"
            )
        if host in _METADATA_HOSTS:
            raise _blocked("cloud metadata endpoint")
        if not allowlisted:
            if self.disable_loopback and (
                host in _LOCALHOST_NAMES or host.endswith(".localhost")
            ):
                raise _blocked("localhost address")
            if self.disable_private_ips and host.endswith(".svc.cluster.local"):
                raise _blocked("Kubernetes internal DNS")
        return host, port, allowlisted

    def check_address(self, address: str, *, allowlisted: bool = False) -> None:
        """Refuse (:class:`WebhookBlockedError`) an address a webhook must not
        reach; ``allowlisted``: its host is in ``allowed_domains``, so loopback and
        private addresses are the operator's choice.

        >>> WebhookPolicy().check_address("169.254.169.254")
        Traceback (most recent call last):
        ...
        dialogllm.errors.WebhookBlockedError: Webhook host blocked: blocked IP range
        """
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)):
            candidates.append(inner)
        for candidate in candidates:
            if candidate in _METADATA_ADDRESSES:
                raise _blocked("cloud metadata endpoint")
            if any(candidate in net for net in _ALWAYS_REFUSED):
                raise _blocked("blocked IP range")
            if allowlisted:
                continue
            if self.disable_loopback and any(candidate in n for n in _LOOPBACK):
                raise _blocked("loopback IP range")
            if self.disable_private_ips and any(candidate in n for n in _PRIVATE):
                raise _blocked("private IP range")

    async def resolve(self, url: str, *, resolver: Resolver | None = None) -> list[str]:
        """Check ``url`` and every address its host resolves to; those addresses
        (all allowed). :class:`WebhookBlockedError` when one check fails."""
        host, port, allowlisted = self._check_parts(url)
        try:
            addresses = await (resolver or _system_resolver)(host, port)
        except OSError:
            addresses = []
        if not addresses:
            raise _Unresolved("Webhook host blocked: DNS resolution failed")
        for address in addresses:
            self.check_address(address, allowlisted=allowlisted)
        return addresses

    async def check(self, url: str, *, resolver: Resolver | None = None) -> str:
        """``url`` if a webhook may POST to it now; :class:`WebhookBlockedError`
        (the server answers 422) otherwise."""
        await self.resolve(url, resolver=resolver)
        return url


class _Unresolved(WebhookBlockedError):
    """The host did not resolve: refused when a run takes the URL; at delivery a
    connection error like any other (retried), since DNS may answer again."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="DNS resolution failed")


def _blocked(reason: str) -> WebhookBlockedError:
    return WebhookBlockedError(f"Webhook host blocked: {reason}", reason=reason)


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks each request's URL with a
    :class:`WebhookPolicy` and connects to an address it checked (the request keeps
    its ``Host`` header and TLS server name), so DNS cannot move a checked webhook
    to a refused address between the check and the connection.

    >>> client = httpx.AsyncClient(transport=PinnedTransport(WebhookPolicy()))
    """

    def __init__(
        self,
        policy: WebhookPolicy,
        *,
        resolver: Resolver | None = None,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.policy = policy
        self._resolver = resolver
        self._inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check, pin to a checked address, send (a host that does not resolve is an
        :class:`httpx.ConnectError`, retried as one)."""
        host = request.url.host
        try:
            addresses = await self.policy.resolve(
                str(request.url), resolver=self._resolver
            )
        except _Unresolved as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        request.url = request.url.copy_with(host=addresses[0])
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the connections of the inner transport."""
        await self._inner.aclose()
