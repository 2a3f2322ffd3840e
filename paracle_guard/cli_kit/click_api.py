"""The click that typer runs on.

typer (0.29 and later) carries its own copy of click, ``typer._click``; the house
style needs its exception classes and help formatter, which typer does not
re-export. Every use goes through this one module.
"""

from __future__ import annotations

from typer import _click as click
from typer._click import exceptions
from typer._click.globals import get_current_context

Context = click.Context
Command = click.Command
Parameter = click.Parameter
HelpFormatter = click.HelpFormatter
ClickException = exceptions.ClickException
UsageError = exceptions.UsageError
BadParameter = exceptions.BadParameter
MissingParameter = exceptions.MissingParameter
NoSuchOption = exceptions.NoSuchOption
BadOptionUsage = exceptions.BadOptionUsage
NoArgsIsHelpError = exceptions.NoArgsIsHelpError

__all__ = [
    "BadOptionUsage",
    "BadParameter",
    "ClickException",
    "Command",
    "Context",
    "HelpFormatter",
    "MissingParameter",
    "NoArgsIsHelpError",
    "NoSuchOption",
    "Parameter",
    "UsageError",
    "get_current_context",
]
