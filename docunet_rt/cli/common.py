"""What every ``docunet-rt`` command shares: the console, exit codes, logging, one-line errors.

Exit codes (every command): 0 success; 1 fatal error (missing model/data, corrupt files, bad
training record); 2 usage error (a bad option value); 3 (extract) some input lines were rejected;
130 interrupted (Ctrl-C; the message says how far the run got and how to resume it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

console = Console(stderr=True)
EXIT_FATAL, EXIT_USAGE, EXIT_REJECTED = 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
T = TypeVar("T")


def setup_logging(verbose: bool = False) -> None:
    """The library logs to ``docunet_rt``; the CLI shows those records on stderr with Rich."""
    from rich.logging import RichHandler

    log = logging.getLogger("docunet_rt")
    if not log.handlers:
        log.addHandler(RichHandler(console=console, show_path=False, show_time=False))
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def fail(message: str, code: int = EXIT_FATAL) -> NoReturn:
    """Print one ``error:`` line (never wrapped; the message is text, not Rich markup, so a
    ``pip install 'docunet-rt[train]'`` keeps its brackets) and exit with ``code``."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


def run_guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Turn the library's expected errors into one-line messages and exit codes."""
    from ..data import DataError

    try:
        return fn(*args, **kwargs)
    except (DataError, OSError, ValueError, ImportError) as e:  # OSError: not found, exists,
        fail(str(e))  # permission denied, a directory where a file is expected …


def flag(default: bool, *names: str, **kw: Any) -> Any:
    """A boolean option, shown without a value placeholder (it takes none)."""
    return typer.Option(default, *names, metavar="", **kw)


def choice(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    """A Typer callback accepting one of ``choices`` (a usage error listing them otherwise)."""

    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(
                f"unknown {name} {value!r}; valid choices: {', '.join(choices)}"
            )
        return value

    return check
