"""A small real HTTP server on 127.0.0.1 that answers like an OpenAI endpoint.

Each POST to ``/v1/chat/completions`` takes the next scripted :class:`Step` (the
last one repeats) and records the request body and headers, so tests can check what
was sent and how often.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted answer: a status, headers, a body, or a hang of ``hang_s``."""

    status: int = 200
    content: str | None = None
    tool_args: dict[str, Any] | None = None
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0
    finish_reason: str = "stop"


def completion(step: Step, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.content}
    if step.tool_args is not None:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "Reply", "arguments": json.dumps(step.tool_args)},
            }
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": step.finish_reason}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


class FakeOpenAI:
    """Serve scripted steps; use as a context manager."""

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.times: list[float] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with outer._lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    outer.times.append(time.monotonic())
                    index = min(len(outer.requests) - 1, len(outer.steps) - 1)
                    step = outer.steps[index]
                if step.hang_s:
                    time.sleep(step.hang_s)
                    return
                if step.status == 200:
                    payload = completion(step, str(body.get("model")))
                else:
                    payload = {
                        "error": {
                            "message": step.error or f"status {step.status}",
                            "type": "error",
                            "code": step.status,
                        }
                    }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in step.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
