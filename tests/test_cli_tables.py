"""The command line's tables at 80 columns: every fault with its whole reason, numbers never cut,
and `--help` paragraphs that the terminal wraps (not the source's line breaks)."""

from __future__ import annotations


import pytest
from rich.console import Console
from typer.testing import CliRunner

from subnet.cli import _register, app, reflow
from subnet.cli.tables import fault_text, leaderboard_table, rounds_table, spread_table

OOM = "OOM-killed: the Actor exceeded its 2g memory limit (SUBNET_DOCKER_MEMORY)"
LONG_REF = "registry.example-company.internal.io:5443/team/very-long-repository-name/env:v12@sha256:" + "ab" * 32


def render(table, width: int = 80) -> str:
    console = Console(width=width, record=True)
    console.print(table)
    return console.export_text()


def words(text: str) -> list[str]:
    return text.split()


def test_every_fault_row_shows_its_reason_whole_and_wrapped():
    miners = [
        {"uid": 3, "env": LONG_REF, "verified": 0, "tasks": 8, "latency_ms_p50": None, "score": 0.0, "weight": 0.0,
         "faults": {"unreachable": 8}, "reasons": {"unreachable": OOM}},
        {"uid": 4, "env": "ghcr.io/a/b@sha256:" + "cd" * 32, "verified": 5, "tasks": 8, "latency_ms_p50": 123456.7,
         "score": 0.987654, "weight": 0.5, "faults": {"timeout": 2, "wrong_answer": 1},
         "reasons": {"timeout": "no answer within 30s", "wrong_answer": "row 17: sum 3.2 is not 1.7 (tolerance 1e-3)"}},
        {"uid": 5, "env": "old", "verified": 0, "tasks": 8, "score": 0, "weight": 0, "faults": {"infra": 8},
         "reason": "infrastructure: the registry answered 503"},  # a report stored before per-kind reasons
    ]
    text = render(leaderboard_table(miners, title="leaderboard"))
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(words(text))
    for reason in (OOM, "no answer within 30s", "row 17: sum 3.2 is not 1.7 (tolerance 1e-3)",
                   "infrastructure: the registry answered 503"):
        assert " ".join(words(reason)) in flat, reason  # whole, in order, however it wrapped
    assert "0.988" in text and "0.500" in text and "123457" in text and "@abababab" in text
    assert text.count("…") == 1  # only the deliberately shortened image name


def test_fault_text_names_each_kind_with_its_own_reason():
    assert fault_text({"faults": {}}) == "-"
    assert fault_text({"faults": {"timeout": 2, "copy": 1}, "reasons": {"timeout": "late"}}) == "timeout×2: late; copy×1"


def test_rounds_and_spread_tables_fit_80_columns_without_cutting_numbers():
    rounds = [{"round": 12, "block": 123456, "evaluated": 3, "cached": 250, "started_at": 0,
               "weights": "not set: nobody earned and there is no burn uid (the subnet owner's hotkey 5F… holds no "
                          "uid); set SUBNET_BURN_UID"}]
    text = render(rounds_table(rounds, now=600.0))
    assert max(len(line) for line in text.splitlines()) <= 80 and "set SUBNET_BURN_UID" in " ".join(words(text))
    rows = [{"env": "matrix-chain-numpy", "rounds": 5, "p50_ms_min": 93.1, "p50_ms_median": 1209.2,
             "p50_ms_max": 123456.2, "score_min": 0.716, "score_max": 1.0, "weight_min": 0.4, "weight_max": 0.583,
             "accuracy_min": 0.875}]
    text = render(spread_table(rows))
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    for value in ("93.1", "1209", "123456", "0.716–1.000", "0.400–0.583", "0.88"):
        assert value in text


def _commands(typer_app, prefix=()):
    for command in typer_app.registered_commands:
        yield (*prefix, command.name or command.callback.__name__.replace("_", "-")), command
    for group in typer_app.registered_groups:
        yield from _commands(group.typer_instance, (*prefix, group.name))


def test_help_paragraphs_are_not_hard_wrapped_mid_sentence():
    _register()
    checked = 0
    for path, command in _commands(app):
        doc = command.help or ""
        for paragraph in doc.split("\n\n"):
            for line in paragraph.splitlines()[1:]:
                assert line.startswith((" ", "-", "*")), f"{' '.join(path)}: {line!r} continues a sentence"
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=200).output
        first = doc.split("\n\n")[0]
        assert " ".join(first.split()) in " ".join(shown.split()), path
        checked += 1
    assert checked >= 15  # every subnet command, gpus and doctor included


@pytest.mark.parametrize("doc, expected", [
    ("One line.", "One line."),
    ("First\n    continues here.\n\n    Second paragraph\n    also continues.\n    ",
     "First continues here.\n\nSecond paragraph also continues."),
    ("Intro:\n\n- item one\n- item two", "Intro:\n\n- item one\n- item two"),
])
def test_reflow_joins_paragraph_lines_and_keeps_lists(doc, expected):
    assert reflow(doc) == expected
