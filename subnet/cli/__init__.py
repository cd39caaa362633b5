"""The `subnet` command line: one typer app (`subnet.cli.app`), with a sub-app per audience.

Command modules import the app from `subnet.cli.app` and add their commands; `_register` imports
them all, so the package root is the only module that knows every command."""

from __future__ import annotations

import inspect

import typer

from subnet.cli.app import app


def _register() -> None:
    # Each module adds its commands to `app`; imported here so `subnet --help` lists them all.
    from subnet.cli import dryrun  # noqa: F401
    from subnet.cli import miner_chain  # noqa: F401  (subnet miner commit)
    from subnet.cli import miner_image  # noqa: F401  (subnet miner build/push/publish)
    from subnet.cli import validator  # noqa: F401  (subnet validator run)
    from subnet.cli import validator_status  # noqa: F401  (subnet validator status)
    from subnet.cli.doctor import doctor
    from subnet.cli.gpus import gpus_app
    from subnet.cli.miner_group import miner_app

    if all(group.typer_instance is not gpus_app for group in app.registered_groups):
        app.add_typer(gpus_app, name="gpus")  # subnet gpus list|rent|rent-cheapest|rentals|status|stop|balance
    if all(command.callback is not doctor for command in app.registered_commands):
        app.command("doctor")(doctor)  # subnet doctor [--json]

    if all(group.typer_instance is not miner_app for group in app.registered_groups):
        app.add_typer(miner_app, name="miner")  # once, whichever module defines miner commands
    _reflow_help(app)


def reflow(doc: str | None) -> str | None:
    """A docstring as `--help` should show it: each paragraph one line, so the terminal wraps it
    at its own width instead of at the source's line breaks. Indented lines and list items keep
    their own lines."""
    if not doc:
        return doc
    paragraphs = []
    for block in inspect.cleandoc(doc).split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            if lines and not line.startswith((" ", "-", "*", "\b")):
                lines[-1] = f"{lines[-1]} {line.strip()}"
            else:
                lines.append(line)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        command.help = reflow(command.help or inspect.getdoc(command.callback))
    for group in typer_app.registered_groups:
        group.help = reflow(group.help or group.typer_instance.info.help)
        _reflow_help(group.typer_instance)


def main() -> None:
    _register()
    app()
