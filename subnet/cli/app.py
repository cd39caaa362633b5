"""The root `subnet` typer app that every command module adds its commands to."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="subnet",
    help="Run the subnet: miners build and commit Actor images; validators verify them and set weights.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Miners build and commit Actor images; validators verify them and set weights."""
