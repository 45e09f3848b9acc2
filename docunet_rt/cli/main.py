"""`docunet-rt` command line: thin Typer layer over the library.

Every command lives in its own module and is registered here; they share ``cli.common``
(console, exit codes, errors), so there is no import cycle. Exit codes: see ``cli.common``.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from . import (
    bench_cmd,
    evaluate_cmd,
    export_cmd,
    extract_cmd,
    merge_cmd,
    ner_cmd,
    tools_cmd,
    train_cmd,
)
from .common import console

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="DocuNet document-level relation extraction: train, evaluate, export, extract.",
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"docunet-rt {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=version_callback, is_eager=True, help="Print the version."
    ),
) -> None:
    """docunet-rt command line."""


for _module in (
    train_cmd,
    ner_cmd,
    evaluate_cmd,
    export_cmd,
    extract_cmd,
    merge_cmd,
    bench_cmd,
    tools_cmd,
):
    _module.register(app)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
