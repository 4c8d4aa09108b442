"""A scripted chat model: replies from a list or a function, no network, no weights.

:class:`ScriptedChatModel` is a LangChain ``BaseChatModel`` whose answers are written
in advance. Unit tests, examples and the benchmark use it through the very same
:func:`dialogllm.llm.ask` path as a real model. The rule: it is never a default; a
scripted model is always chosen explicitly and says so in its name.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field, PrivateAttr

__all__ = ["ScriptedChatModel"]

Reply = str | AIMessage
ReplyFn = Callable[[Sequence[BaseMessage]], Reply]


class ScriptedChatModel(BaseChatModel):
    """Answers with the next scripted reply (cycling when ``cycle=True``), or with
    ``reply_fn(messages)``; ``delay_s`` simulates a slow model.

    >>> model = ScriptedChatModel(replies=['{"message": "Hi."}'])
    >>> model.invoke("hello").content
    '{"message": "Hi."}'
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Reply] = Field(default_factory=list)
    reply_fn: ReplyFn | None = None
    cycle: bool = False
    delay_s: float = 0.0
    model_name: str = "scripted"
    _cursor: int = PrivateAttr(default=0)
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every call, in order."""
        return self._calls

    def _next(self, messages: Sequence[BaseMessage]) -> AIMessage:
        self._calls.append(list(messages))
        if self.reply_fn is not None:
            reply = self.reply_fn(messages)
        else:
            if not self.replies:
                raise RuntimeError("ScriptedChatModel has no replies")
            if self._cursor >= len(self.replies) and not self.cycle:
                raise RuntimeError(
                    f"ScriptedChatModel ran out of its {len(self.replies)} replies"
                )
            reply = self.replies[self._cursor % len(self.replies)]
            self._cursor += 1
        message = reply if isinstance(reply, AIMessage) else AIMessage(content=reply)
        if message.usage_metadata is None:
            prompt = sum(len(str(m.content)) for m in messages) // 4 + 1
            completion = len(str(message.content)) // 4 + 1
            message = message.model_copy(
                update={
                    "usage_metadata": {
                        "input_tokens": prompt,
                        "output_tokens": completion,
                        "total_tokens": prompt + completion,
                    },
                    "response_metadata": {"model_name": self.model_name},
                }
            )
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self._next(messages))])

    def bind_tools(
        self, tools: Sequence[Any], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Accept tools (scripted replies carry their own ``tool_calls``)."""
        return self
