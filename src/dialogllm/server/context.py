"""What every route of one server process shares: its Redis clients, the queue, the
checkpointer, the long-term memory store, the server's records and the graph table.

Built once at start-up (the lifespan of
:func:`dialogllm.server.application.create_app`) and read by the routes with
:func:`request_context` (the context with the request's caller). Assistant
resolution lives here because runs, threads and assistants all need it: an
assistant id is a stored assistant, a system assistant, or (for runs, as
LangGraph's server allows) a graph id.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from fastapi import Request
from langgraph.pregel import Pregel

from dialogllm.checkpoint import AsyncRedisSaver
from dialogllm.queue import Queue
from dialogllm.server.auth import ANONYMOUS, Authorizer, User, matches
from dialogllm.server.errors import not_found
from dialogllm.server.followups import Followups
from dialogllm.server.graphs import GraphTable, system_assistant_id
from dialogllm.server.storage import AssistantRecord, ServerStore
from dialogllm.server.webhooks import WebhookConfig

__all__ = ["RequestContext", "ServerContext", "context_of", "request_context"]


@dataclass
class ServerContext:
    """The shared parts of one server process."""

    queue: Queue
    saver: AsyncRedisSaver
    store: ServerStore
    graphs: GraphTable
    url: str
    followups: Followups
    authorizer: Authorizer = field(default_factory=lambda: Authorizer(None))
    worker: Any = None  # the in-process Worker, when this process runs one
    memory: Any = None  # the long-term memory store (an AsyncRedisStore)
    webhooks: WebhookConfig = field(default_factory=WebhookConfig)

    async def assistant(self, assistant_id: str, *, by_graph: bool) -> AssistantRecord:
        """The assistant ``assistant_id`` names; with ``by_graph`` a graph id names
        its system assistant. 404 when none does."""
        if by_graph and assistant_id in self.graphs.references:
            return self.graphs.system_assistant(assistant_id)  # ids of stored: UUIDs
        stored = await self.store.assistant(assistant_id)
        if stored is not None:
            return stored
        for graph_id in self.graphs.references:
            if assistant_id == system_assistant_id(graph_id) or (
                by_graph and assistant_id == graph_id
            ):
                return self.graphs.system_assistant(graph_id)
        raise not_found(f"Assistant {assistant_id} not found")

    def graph(self, graph_id: str) -> Pregel[Any, Any, Any, Any]:
        """The compiled graph of ``graph_id``, with this server's checkpointer."""
        if graph_id not in self.graphs.references:
            raise not_found(f"Graph {graph_id} not found")
        graph = self.graphs.graph(graph_id)
        return graph.copy(update={"checkpointer": self.saver})


def context_of(request: Request) -> ServerContext:
    """The server context of the app serving ``request``."""
    context: ServerContext = request.app.state.context
    return context


@dataclass
class RequestContext(ServerContext):
    """The server context as one request sees it: with its caller, and the checks
    of the server's ``Auth`` handlers for that caller."""

    user: User = ANONYMOUS

    async def allow(
        self, resource: str, action: str, value: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The caller's filter for ``action`` on ``resource`` (403 if refused);
        the handler may change ``value``."""
        return await self.authorizer.authorize(self.user, resource, action, value)

    @staticmethod
    def sees(metadata: dict[str, Any], condition: dict[str, Any] | None) -> bool:
        """Whether a resource with ``metadata`` passes the caller's filter."""
        return matches(metadata, condition)


async def request_context(request: Request) -> RequestContext:
    """The context of ``request``: the app's, with the caller the middleware
    authenticated. ``async`` although it awaits nothing: FastAPI runs a plain
    ``def`` dependency in a worker thread, a thread hop on every request."""
    shared = context_of(request)
    values = {f.name: getattr(shared, f.name) for f in fields(ServerContext)}
    return RequestContext(**values, user=getattr(request.state, "user", ANONYMOUS))
