"""Testing graphs without a model: a chat model whose replies are scripted.

This module owns :class:`ScriptedChatModel`, a LangChain ``BaseChatModel`` with no
network and no weights. Give it to your graph (``DialogueRunner(chat_model=...)``, or a
node's ``model=``) and every node answers from your script through the very same
:func:`dialogllm.llm.ask` path a real model takes: typed replies, retries, metrics.
The project's own tests, examples and benchmarks use it too.

The rule: it is never a default; a scripted model is always chosen explicitly and says
so in its name (``model_name="scripted"``).

>>> from dialogllm.llm.testing import ScriptedChatModel
>>> model = ScriptedChatModel(replies=['{"message": "Hi."}', TimeoutError("slow")])
>>> model.invoke("hello").content
'{"message": "Hi."}'
>>> model.invoke("again")
Traceback (most recent call last):
...
TimeoutError: slow
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = ["Reply", "ReplyFn", "ScriptedChatModel"]

#: One scripted item: a text, a full ``AIMessage`` (tool calls, metadata), or an
#: exception instance, raised when its turn comes (to test retries and fallbacks).
Reply = BaseException | str | AIMessage
#: Computes a reply from the call's messages.
ReplyFn = Callable[[Sequence[BaseMessage]], str | AIMessage]


class ScriptedChatModel(BaseChatModel):
    """Answers each call with the next item of ``replies``, or ``reply_fn(messages)``.

    Options:

    - ``replies``: texts, ``AIMessage`` objects, or exception instances (raised in
      their turn, the call still counted in :attr:`calls`);
    - when the script runs out: a ``RuntimeError`` (default), or start again
      (``cycle=True``), or keep answering with the last item (``repeat_last=True``);
    - ``reply_fn``: compute the reply from the messages instead (``replies`` ignored);
    - ``usage``: the ``(input_tokens, output_tokens)`` every reply reports (default: an
      estimate, one token per four characters); a scripted ``AIMessage`` that has
      ``usage_metadata`` keeps its own;
    - ``delay_s``: seconds each call takes, to simulate a slow model;
    - ``model_name``: the name metrics and replies carry.

    >>> model = ScriptedChatModel(replies=["a", "b"], repeat_last=True, usage=(10, 5))
    >>> [model.invoke("x").content for _ in range(3)]
    ['a', 'b', 'b']
    >>> model.invoke("x").usage_metadata["total_tokens"]
    15
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Annotated[Reply, Field(union_mode="left_to_right")]] = Field(
        default_factory=list
    )
    reply_fn: ReplyFn | None = None
    cycle: bool = False
    repeat_last: bool = False
    usage: tuple[int, int] | None = None
    delay_s: float = 0.0
    model_name: str = "scripted"
    _cursor: int = PrivateAttr(default=0)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every call, in order (calls that raised included)."""
        return self._calls

    def _scripted(self) -> str | AIMessage:
        if not self.replies:
            raise RuntimeError("ScriptedChatModel has no replies")
        index = self._cursor
        if index >= len(self.replies):
            if self.cycle:
                index %= len(self.replies)
            elif self.repeat_last:
                index = len(self.replies) - 1
            else:
                raise RuntimeError(
                    f"ScriptedChatModel ran out of its {len(self.replies)} replies"
                )
        self._cursor += 1
        item = self.replies[index]
        if isinstance(item, BaseException):
            raise item
        return item

    def _next(self, messages: Sequence[BaseMessage]) -> AIMessage:
        self._calls.append(list(messages))
        reply = self.reply_fn(messages) if self.reply_fn else self._scripted()
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=reply)
        if message.usage_metadata is None:
            if self.usage is not None:
                prompt, completion = self.usage
            else:
                prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
                completion = len(str(message.content)) // 4 + 1
            message = message.model_copy(
                update={
                    "usage_metadata": {
                        "input_tokens": prompt,
                        "output_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                    "response_metadata": {
                        "model_name": self.model_name,
                        **message.response_metadata,
                    },
                }
            )
        return message

    # stop sequences and callbacks do not change a scripted reply: both twins take
    # LangChain's arguments as they come and answer the next reply
    def _generate(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept tools (scripted replies carry their own ``tool_calls``)."""
        return self
