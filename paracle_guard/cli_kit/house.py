"""The house style of every command: help, usage errors and user errors.

- Help is plain text in the layout of the tools users know (``Usage:``, the
  description, ``Arguments:``, ``Options:`` with metavars such as ``PATH...``,
  ``FILE``, ``FORMAT``), the same in a terminal and in a pipe; ``-h`` and
  ``--help`` both show it.
- A usage error is one line, ``paracle-guard: error: ...``, then a pointer to the
  command's help; a ``GuardError`` is one line; both exit 2 (or the error's code).
- ``GuardGroup`` gives every command and group below it these classes when the app
  is built, so a command declared with plain ``typer.Typer()`` anywhere in the
  package follows the house style without knowing about it.
- ``LazyGroup`` names its commands by the module that declares each one and imports
  that module only when the command runs (or help lists it): ``lint`` never pays
  for building ``run``'s twenty options or importing the launcher.

The one thing a command must still do is give each option a metavar (``FILE``,
``NAME``...); ``tests/cli_kit/test_house.py`` checks that every option has one.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, NoReturn, TypeVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from paracle_guard.cli_kit import click_api as click
from paracle_guard.errors import GuardError, UsageError, did_you_mean
from paracle_guard.exit_codes import ERROR

PROG = "paracle-guard"
PREFIX = f"{PROG}: error: "
HELP_OPTIONS = ["-h", "--help"]
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": HELP_OPTIONS, "max_content_width": 100}
# Where the command line's own order of options is kept (see ``option_order``).
_ORDER_KEY = "paracle_guard.option_order"


# --- printing errors ---------------------------------------------------------------


def print_error(message: str, ctx: click.Context | None = None, *, hint: bool = False) -> None:
    """``paracle-guard: error: MESSAGE`` on stderr, on one line, and for usage errors a
    second line pointing at the command's help."""
    typer.echo(PREFIX + " ".join(message.split()), err=True)
    if hint:
        path = ctx.command_path if ctx is not None else PROG
        typer.echo(f"See '{path} --help'.", err=True)


def describe_os_error(error: OSError) -> str:
    """An OSError no command named a file for, said as the user can act on it."""
    reason = error.strerror or str(error)
    if error.filename is not None:
        return f"{error.filename}: {reason}"
    try:
        os.getcwd()
    except OSError:
        return f"the working folder was removed or cannot be read ({reason})"
    return reason


def print_warning(message: str) -> None:
    typer.echo(f"{PROG}: warning: " + " ".join(message.split()), err=True)


def report_guard_error(error: GuardError, ctx: click.Context | None = None) -> int:
    """Print a GuardError in the house style; the exit code to leave with."""
    print_error(str(error), ctx, hint=isinstance(error, UsageError))
    return error.exit_code


F = TypeVar("F", bound=Callable[..., Any])


def fails_cleanly(command: F) -> F:
    """Turn a GuardError into the house's one line on stderr and its exit code (2).

    Every command's class does this too; the decorator keeps the handling inside
    the function for callers that invoke it directly.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GuardError as error:
            context = click.get_current_context(silent=True)
            raise typer.Exit(report_guard_error(error, context)) from None

    return wrapper  # type: ignore[return-value]


def command_app(**settings: Any) -> typer.Typer:
    """The Typer app a command module declares its one command on: no completion options
    of its own (the root has them), plain help."""
    return typer.Typer(add_completion=False, rich_markup_mode=None,
                       pretty_exceptions_enable=False, **settings)


def group_app(help: str, **settings: Any) -> typer.Typer:
    """The Typer app a command module declares a group of subcommands on (``policy
    show``, ``cache clear``), a group even while it has one subcommand."""
    return command_app(cls=GuardGroup, help=help, **settings)


def usage_error(message: str, ctx: click.Context | None = None) -> NoReturn:
    """Stop parsing with a usage error (from an option callback or a command)."""
    raise click.UsageError(message, ctx)


def describe_click_error(error: click.ClickException) -> str:
    """click's message for ``error``, reworded as one lower-case line in the house style."""
    ctx = getattr(error, "ctx", None)
    if isinstance(error, click.NoSuchOption):
        known = _option_names(ctx.command.get_params(ctx)) if ctx is not None else []
        return f"no such option: {error.option_name}{did_you_mean(error.option_name, known)}"
    if isinstance(error, click.MissingParameter) and error.param is not None:
        what = "argument" if error.param.param_type_name == "argument" else "option"
        return f"missing {what} {display_name(error.param)}"
    if isinstance(error, click.BadParameter) and error.param is not None:
        return f"{display_name(error.param)}: {_sentence(error.message)}"
    if isinstance(error, click.BadOptionUsage) and "requires an argument" in error.message:
        return f"{error.option_name} needs a value"
    return _sentence(error.format_message())


def _sentence(text: str) -> str:
    text = " ".join(text.split()).rstrip(".")
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def display_name(param: click.Parameter) -> str:
    """How help and errors name a parameter: its longest option, or an argument's metavar."""
    if param.param_type_name == "argument":
        return argument_metavar(param)
    return max(param.opts, key=len) if param.opts else str(param.name)


def _option_names(params: Sequence[click.Parameter]) -> list[str]:
    return [name for param in params for name in (*param.opts, *param.secondary_opts)
            if name.startswith("-")]


# --- help --------------------------------------------------------------------------


def argument_metavar(param: click.Parameter) -> str:
    name = param.metavar or str(param.name).upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name


def _usage_piece(param: click.Parameter) -> str:
    name = argument_metavar(param)
    return name if param.required else f"[{name}]"


def _option_record(param: click.Parameter) -> tuple[str, str] | None:
    if getattr(param, "hidden", False):
        return None
    names = sorted(param.opts, key=lambda name: (len(name), name))
    label = ", ".join(names)
    if param.secondary_opts:
        label += " / " + ", ".join(param.secondary_opts)
    if not getattr(param, "is_flag", False):
        label += f" {param.metavar or str(param.name).upper()}"
    text = " ".join((getattr(param, "help", None) or "").split())
    default = param.default
    if (
        isinstance(default, (str, int, float))
        and not isinstance(default, bool)
        and default != ""
        and "default" not in text.lower()
    ):
        text = f"{text} [default: {default}]".strip()
    return label, text


def _argument_record(param: click.Parameter) -> tuple[str, str]:
    return argument_metavar(param), " ".join((getattr(param, "help", None) or "").split())


def _description(command: click.Command) -> str:
    # Everything before a form feed, as click does; docstring indentation removed.
    return inspect.cleandoc(command.help or "").partition("\f")[0]


def short_help(command: click.Command) -> str:
    """The first paragraph of a command's description, on one line, never cut."""
    if command.short_help:
        return " ".join(command.short_help.split())
    return " ".join(_description(command).split("\n\n")[0].split())


def _write_description(command: click.Command, formatter: click.HelpFormatter) -> None:
    text = _description(command)
    if text:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(text)


def _write_params(
    command: click.Command, ctx: click.Context, formatter: click.HelpFormatter
) -> None:
    params = command.get_params(ctx)
    arguments = [_argument_record(p) for p in params if p.param_type_name == "argument"]
    options = [r for p in params if p.param_type_name == "option"
               if (r := _option_record(p)) is not None]
    if arguments and any(text for _, text in arguments):
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


class GuardCommand(TyperCommand):
    """A command in the house style (see the module's docstring)."""

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        pieces += [_usage_piece(p) for p in self.get_params(ctx)
                   if p.param_type_name == "argument"]
        return pieces

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)))

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        _write_description(self, formatter)
        _write_params(self, ctx, formatter)
        self.format_epilog(ctx, formatter)

    def make_parser(self, ctx: click.Context) -> Any:
        # click keeps only the first position of a repeated option; `--format A
        # --output X --format B` needs every occurrence, in order (see option_order).
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_and_record(args: list[str]) -> Any:
            opts, rest, order = parse(args=args)
            ctx.meta[_ORDER_KEY] = [param.name for param in order]
            return opts, rest, order

        parser.parse_args = parse_and_record  # type: ignore[method-assign]
        return parser

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _parse_in_house(super().parse_args, ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GuardError as error:
            raise typer.Exit(report_guard_error(error, ctx)) from None


def _parse_in_house(
    parse: Callable[[click.Context, list[str]], list[str]], ctx: click.Context, args: list[str]
) -> list[str]:
    try:
        return parse(ctx, args)
    except click.UsageError as error:
        # The parser raises some errors without the context the hint is made from.
        error.ctx = error.ctx or ctx
        raise
    except GuardError as error:  # raised by an option's callback
        raise typer.Exit(report_guard_error(error, ctx)) from None


def option_order(ctx: click.Context) -> list[str]:
    """The names of the options as the command line gave them, one entry per occurrence."""
    order: list[str] = ctx.meta.get(_ORDER_KEY, [])
    return order


class GuardGroup(TyperGroup):
    """A group in the house style; the root group also owns the error handling."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adopt(self)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return [*pieces, self.subcommand_metavar]

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, " ".join(self.collect_usage_pieces(ctx)))

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_usage(ctx, formatter)
        _write_description(self, formatter)
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, short_help(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
        _write_params(self, ctx, formatter)
        formatter.write_paragraph()
        formatter.write_text(f"Run '{ctx.command_path} COMMAND --help' for more on a command.")

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        command = self.get_command(ctx, name)
        if command is None and not ctx.resilient_parsing:
            if name.startswith("-"):
                self.parse_args(ctx, args)  # an unknown option: click says so
            visible = [n for n in self.list_commands(ctx)
                       if not getattr(self.get_command(ctx, n), "hidden", False)]
            usage_error(f"no such command {name!r}{did_you_mean(name, visible)}", ctx)
        return (name if command is not None else None), command, args[1:]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return _parse_in_house(super().parse_args, ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the app; every error ends as the house's one line and exit code."""
        try:
            code = super().main(args, prog_name or PROG, complete_var,
                                standalone_mode=False, **extra)
            sys.stdout.flush()  # a full disk or a closed pipe shows here, not at exit
        except click.NoArgsIsHelpError as shown:
            typer.echo(shown.ctx.get_help() if shown.ctx is not None else "")
            code = 0
        except click.ClickException as error:
            print_error(describe_click_error(error), getattr(error, "ctx", None),
                        hint=isinstance(error, click.UsageError))
            code = error.exit_code
        except GuardError as error:
            code = report_guard_error(error)
        except OSError as error:
            # What no command turned into a GuardError: the working folder removed, standard
            # output on a full disk. Output that cannot be written is dropped, so that the
            # interpreter's own flush at exit does not print a traceback of it again.
            with contextlib.suppress(OSError, ValueError):  # no descriptor under test runners
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            print_error(describe_os_error(error))
            code = ERROR
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


class LazyGroup(GuardGroup):
    """A group whose commands are imported when they run, or when help lists them.

    ``lazy`` maps each command name, in the order help lists them, to the module that
    declares it on a ``typer.Typer`` named ``app`` (one command, or a group).
    """

    lazy: ClassVar[Mapping[str, str]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loaded: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(name for name in super().list_commands(ctx)
                              if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = self.lazy.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self._loaded:
            declared: typer.Typer = importlib.import_module(module).app
            # typer makes an app of one command that command itself; group_app's are groups.
            is_group = declared.info.cls is GuardGroup
            command = (typer.main.get_group(declared) if is_group
                       else typer.main.get_command(declared))
            house_style(command)
            self._loaded[cmd_name] = command
        return self._loaded[cmd_name]


def house_style(command: click.Command) -> None:
    """Give ``command`` and everything below it the house classes and settings.

    typer builds plain ``TyperCommand``/``TyperGroup`` objects for commands declared
    without ``cls=``; they have the same state as ours, so switching their class
    changes only behaviour. A class someone chose on purpose is left alone.
    """
    if type(command) is TyperCommand:
        command.__class__ = GuardCommand
    elif type(command) is TyperGroup:
        command.__class__ = GuardGroup
    command.context_settings = {**CONTEXT_SETTINGS, **command.context_settings}
    adopt(command)


def adopt(group: click.Command) -> None:
    """Give every command and group below ``group`` the house style (``house_style``)."""
    commands: MutableMapping[str, click.Command] = getattr(group, "commands", {})
    for command in commands.values():
        house_style(command)


def iter_commands(group: click.Command, path: tuple[str, ...] = ()) -> Iterator[
    tuple[tuple[str, ...], click.Command]
]:
    """Every command and group below ``group``, with its path of names (for tests and
    completion listings); a lazy group's commands are imported to be listed."""
    if isinstance(group, TyperGroup):
        ctx = click.Context(group, info_name=path[-1] if path else PROG)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is not None:
                yield (*path, name), command
                yield from iter_commands(command, (*path, name))
