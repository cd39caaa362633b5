"""The `subnet` command line: one typer app, with a sub-app per audience."""

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


def _register() -> None:
    # Each module adds its commands to `app`; imported here so `subnet --help` lists them all.
    from subnet.cli import dryrun  # noqa: F401


def main() -> None:
    _register()
    app()
