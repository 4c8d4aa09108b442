"""The dialogue-quality benchmark's measures (benchmarks/dialogue_quality.py) on the
defects a new user met, verbatim, and on sound text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "dialogue_quality.py"


@pytest.fixture(scope="module")
def dq() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dialogue_quality", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dialogue_quality"] = module
    spec.loader.exec_module(module)
    return module


def test_echo_and_loop(dq: ModuleType) -> None:
    first = "Cities should ban cars because the air in the centre is unhealthy."
    assert dq.echoes(first.replace("should", "must"), [first])
    assert not dq.echoes("Shops would lose customers who drive in.", [first])
    assert dq.echoes("hello", ["Hello!"]) and not dq.echoes("hello", [])
    assert dq.loops("I have no money, I have no money, I have no money, I have")
    assert not dq.loops(first)


@pytest.mark.parametrize(
    "text",
    [
        "reason_116",
        "2026-11-30 12:00",
        "<start_of_image><start_of_image>Please,",
        "A",
        "Note that.</b></font></center><br />",
    ],
)
def test_junk(dq: ModuleType, text: str) -> None:
    assert dq.is_junk(text)


def test_sound_text_is_not_junk_nor_cut(dq: ModuleType) -> None:
    text = 'Bikes are cheaper to run, and "cheap" matters here.'
    assert not dq.is_junk(text) and not dq.is_cut(text)
    assert not dq.is_cut("Is that fair (for everyone)?")


def test_cut_and_copies(dq: ModuleType) -> None:
    assert dq.is_cut("Should cities ban cars from a")
    assert dq.is_cut("…how you can,")
    turn = "We agreed that trains beat cars for commuting in big cities."
    assert dq.copies(turn, [turn]) and not dq.copies("Trains won.", [turn])


def test_score_and_totals(dq: ModuleType) -> None:
    said = "Cars make the centre loud and the air dirty, so ban them."
    entries = [
        {"kind": "persona", "speaker": "Proposition", "text": said},
        {"kind": "persona", "speaker": "Opposition", "text": said},
        {"kind": "judge", "speaker": "Judge", "text": "Proposition wins."},
    ]
    state = {"verdict": {"winner": "Proposition", "reasons": ["reason_116"]}}
    scored = dq.score("debate", "cars", "t", entries, state, 2, "done")
    assert (scored.turns, scored.echo, scored.completed) == (2, 1, True)
    assert scored.junk == 1 and scored.typed == 1
    figures = dq.totals([scored])
    assert figures["echo_pct"] == 50.0 and figures["completion_pct"] == 100.0
    short = dq.score("debate", "cars", "t", entries[:1], {}, 2, "done")
    assert not short.completed


def test_a_directed_dialogue_ended_early_is_not_complete(dq: ModuleType) -> None:
    entries = [
        {"kind": "persona", "speaker": "Ana", "text": "Trains are faster."},
        {"kind": "persona", "speaker": "Ben", "text": "Buses reach more streets."},
    ]
    state = {"conclusion": "They agreed.", "analysis": {"claims_to_check": []}}
    early = dq.score("directed_dialogue", "t", "t", entries, state, 4, "done")
    assert not early.completed
    assert dq.score("directed_dialogue", "t", "t", entries * 2, state, 4, "x").completed
