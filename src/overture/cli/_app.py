"""The Typer application and the consoles every command module prints to."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape as _escape

app = typer.Typer(
    name="overture",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Overture: real-time offer decisioning. Start with `overture init demo` and "
    "`overture decide demo --placement web_home_hero --profile-id C0000042 --explain`; "
    "`overture serve` runs the design API.",
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def escape(text: str) -> str:
    """Text shown as it is, even when it holds [brackets] Rich would read as markup."""
    return _escape(text)


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(message, soft_wrap=True)
    raise typer.Exit(code)
