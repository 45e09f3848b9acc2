"""Command-line interface (Typer + Rich live only here)."""

from __future__ import annotations

from .main import app, main

__all__ = ["app", "main"]
