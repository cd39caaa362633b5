"""The `subnet miner` command group, shared by every module that adds a miner command.

Modules decorate `miner_app`; `subnet.cli._register()` attaches it to the root app once.
"""

from __future__ import annotations

import typer

miner_app = typer.Typer(
    help="Miner commands: build, push and publish an Actor image, and commit its digest on chain.",
    no_args_is_help=True,
)


@miner_app.callback()
def _miner() -> None:
    # A callback keeps `miner` a command group even while only one command is defined, so
    # `subnet miner commit ...` parses the same whichever modules are loaded.
    pass
