"""Pause a dialogue for a person, resume it by thread id. Run:
python examples/resume_interview.py  (Redis + the local model)"""

import asyncio
from typing import Any

from dialogllm.core import DialogueRunner
from dialogllm.logging import configure_logging

ANSWERS = ("I keep AOF on and watch memory.", "Alerts on replication lag.")


async def main(answers: tuple[str, ...] = ANSWERS, **runner_options: Any) -> None:
    async with DialogueRunner(**runner_options) as runner:
        topic = {"topic": "running Redis in production", "questions": len(answers)}
        result = await runner.run("interview", topic)  # pauses at the 1st question
        thread_id = result.thread_id  # keep it: the thread lives in Redis
        for answer in answers:
            asked = result.request  # who is asked, and what
            assert asked is not None
            print(f"{asked.asked_by}: {asked.prompt}")
            # ...the person may answer days later, from another process:
            result = await runner.resume(thread_id, answer)
            print(f"{asked.speaker}: {answer}")
        print(f"{result.status}: {len(result.transcript.turns)} turns ({thread_id})")


if __name__ == "__main__":
    configure_logging(level="warning")  # stdout shows the dialogue only
    asyncio.run(main())
