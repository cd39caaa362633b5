"""Progress of long steps: log lines by default, a listener's display when one is installed."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.progress import Progress

from subnet.cli.steps import RichSteps
from subnet.util.progress import listening, step


def test_without_a_listener_each_step_is_one_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="subnet.progress"):
        step("pull acme/env@3f2a9c1b0d4e", "pulling: 12 MiB so far")
        step("pull acme/env@3f2a9c1b0d4e", "pulled in 9s", done=True)
    assert [r.getMessage() for r in caplog.records] == ["pull acme/env@3f2a9c1b0d4e: pulling: 12 MiB so far",
                                                         "pull acme/env@3f2a9c1b0d4e: pulled in 9s"]


def test_on_a_terminal_a_job_is_one_live_line_then_one_permanent_line(caplog):
    console = Console(width=80, record=True, force_terminal=True)
    with Progress(console=console, transient=True) as progress, caplog.at_level(logging.INFO, logger="subnet.progress"):
        with listening(RichSteps(progress)):
            step("uid 2 my-env", "Step 1/4 : FROM python:3.11-slim")
            step("uid 2 my-env", "Step 2/4 : COPY . .")
            (task,) = progress.tasks
            assert task.description == "uid 2 my-env: Step 2/4 : COPY . ."
            step("uid 2 my-env", "built subnet-dry-run/uid2:abc in 3s", done=True)
            assert progress.tasks == []
    assert caplog.records == []  # the display owns the output while it listens
    assert "uid 2 my-env: built subnet-dry-run/uid2:abc in 3s" in console.export_text()
