"""A library stays silent unless asked: with no logging set up by the application,
DialogueLLM prints no info or debug lines (warnings still reach stderr, as the
standard library does it); once the application configures logging, they appear."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from dialogllm.logging import configure_logging, get_logger

    log = get_logger("dialogllm.demo", run_id="r-1")
    if sys.argv[1] == "configured":
        configure_logging(level="debug", stream=sys.stdout)
    log.info("info line", password="hunter2")
    log.debug("debug line")
    log.bind(node="n").warning("warning line", url="redis://u:hunter2@h/0")
    """
)


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_nothing_below_warning_unless_the_application_asks() -> None:
    quiet = _run("library")
    assert quiet.stdout == ""
    assert "info line" not in quiet.stderr and "debug line" not in quiet.stderr
    assert "warning line" in quiet.stderr and "node=n" in quiet.stderr
    assert "hunter2" not in quiet.stderr


def test_a_configured_application_gets_every_line() -> None:
    loud = _run("configured")
    for line in ("info line", "debug line", "warning line"):
        assert line in loud.stdout
    assert "run_id=r-1" in loud.stdout and "hunter2" not in loud.stdout
