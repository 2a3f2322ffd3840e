"""Split a shell script (a RUN step) into pipelines of argv lists.

Rules ask "which commands does this step run, and what is piped into what?",
so the result is ``list[pipeline]``, each pipeline a list of commands joined by
``|``, each command an argv. ``&&``, ``||``, ``;``, ``&`` and newlines end a
pipeline. This is a linter's reading of POSIX sh, not an interpreter:

- Quotes and escapes are removed the way the shell removes them; ``$VAR``,
  ``${VAR}``, ``$(...)`` and backticks stay as written inside their word.
- Leading ``NAME=value`` assignments are not argv (POSIX passes them as
  environment), and compound-command keywords (``if``, ``then``, ``do``, ``!``,
  ``{``...) are dropped from the front of a command, so ``if apt-get install x;
  then`` yields ``["apt-get", "install", "x"]``. ``for``/``case`` headers and
  ``case`` patterns are dropped.
- Redirections and their targets are not argv. A here-document body is data for
  its command, except when that command is a shell reading its script from stdin
  (``bash <<EOF``): then the body is a script and its pipelines are included.
- Scripts run by a nested shell (``sh -c "..."``) and command substitutions
  (``$(...)``, backticks) are split too; their pipelines follow the pipeline
  that contains them, so ``sh -c "curl x | sh"`` still shows curl piped into sh.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Command = list[str]
Pipeline = list[Command]

# Shells whose -c argument or stdin heredoc is itself a script worth splitting.
SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "yash"})

# Nested scripts (sh -c inside $(...) inside a heredoc...) are split this deep; past
# it they stay opaque words, so hostile input cannot exhaust the stack.
_MAX_DEPTH = 6

# One token per match, tried in order at the current position. ``heredoc`` comes
# before ``redirect`` so that ``<<`` is not read as two ``<``; its lookahead leaves
# ``<<<`` (a here-string) to ``redirect``. ``word`` is the common case, a whole
# unquoted word with the blanks after it, taken in one step for speed; it comes
# after ``redirect`` so that the "2" of "2>&1" is not a word. Blanks are ASCII only,
# as in sh: a no-break space is part of a word. Every character starts some token.
_TOKEN = re.compile(
    r"""
      (?P<blank>[ \t\r\f\v]+)
    | (?P<continuation>\\\n)
    | (?P<newline>\n)
    | (?P<heredoc>\d*<<-?)(?!<)
    | (?P<redirect>\d*(?:<<<|&>>|&>|>>|>&|<&|<>|>\||[<>]))
    | (?P<word>[^ \t\n\r\f\v;&|()<>'"`\\$\#][^ \t\n\r\f\v;&|()<>'"`\\$]*)
      (?=[ \t\n\r\f\v;&|()<>]|\Z)[ \t]*
    | (?P<operator>&&|\|\||;;&?|;&|\|&|[;&|()])
    | (?P<single>'[^']*'?)
    | (?P<ansi>\$'(?:[^'\\]|\\.)*'?)
    | (?P<double>"(?:[^"\\]|\\.)*"?)
    | (?P<substitution>\$\(|`)
    | (?P<parameter>\$\{[^}]*\}?)
    | (?P<escaped>\\.?)
    | (?P<plain>[^ \t\n\r\f\v;&|()<>'"`\\$]+|\$)
    """,
    re.VERBOSE | re.DOTALL,
)

_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_DOUBLE_QUOTE_ESCAPE = re.compile(r"\\([\\\"$`\n])")
_ANSI_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ANSI_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}

# Reserved words that only prefix the real command (``if cmd``, ``do cmd``...), and
# words that close a compound command and carry no command of their own.
_PREFIX_WORDS = frozenset({"!", "{", "}", "if", "then", "else", "elif", "do", "while", "until",
                           "time", "fi", "done", "esac"})
# Compound-command headers whose words are not a command at all.
_HEADER_WORDS = frozenset({"for", "select", "case", "function"})
_PIPE_OPERATORS = frozenset({"|", "|&"})


def split_script(script: str) -> list[Pipeline]:
    """Pipelines of argv lists for a shell script, nested scripts included."""
    return _Splitter(script, 0).run()


def split_argv(argv: Sequence[str]) -> list[Pipeline]:
    """Pipelines for an exec-form command: the argv itself, then any ``sh -c`` script."""
    command = list(argv)
    if not command:
        return []
    pipelines: list[Pipeline] = [[command]]
    script = shell_c_script(command)
    if script is not None:
        pipelines.extend(_Splitter(script, 1).run())
    return pipelines


def shell_c_script(argv: Sequence[str]) -> str | None:
    """The script of ``sh -c SCRIPT`` (any shell, bundled flags such as ``-ec``)."""
    saw_c, position = _shell_options(argv)
    if saw_c and position is not None and position < len(argv):
        return argv[position]
    return None


def reads_script_from_stdin(argv: Sequence[str]) -> bool:
    """True for a shell that runs stdin as its script: ``sh``, ``bash -ex``, ``sh -s``."""
    saw_c, position = _shell_options(argv)
    if position is None or saw_c:
        return False
    # With -s the positionals are arguments for the script on stdin; without it
    # the first positional is a script file, and stdin is just data.
    return position >= len(argv) or "s" in _short_flags(argv, position)


def _shell_options(argv: Sequence[str]) -> tuple[bool, int | None]:
    """(saw -c, index of the first positional) for a shell argv; (False, None) if not a shell."""
    start = 1
    if argv and _basename(argv[0]) == "busybox":
        start = 2
    if len(argv) < start or _basename(argv[start - 1]) not in SHELLS:
        return False, None
    saw_c = False
    index = start
    while index < len(argv):
        word = argv[index]
        if word in ("-", "--"):
            return saw_c, index + 1
        if word.startswith("--"):
            index += 1
            continue
        if len(word) > 1 and word[0] in "-+":
            letters = word[1:]
            saw_c = saw_c or (word[0] == "-" and "c" in letters)
            # -o and -O take an option name as the next word.
            index += 2 if ("o" in letters or "O" in letters) else 1
            continue
        break
    return saw_c, index


def _short_flags(argv: Sequence[str], end: int) -> str:
    return "".join(
        word[1:] for word in argv[1:end] if word.startswith("-") and not word.startswith("--")
    )


def _basename(word: str) -> str:
    return word.rsplit("/", 1)[-1]


class _PendingHeredoc:
    __slots__ = ("command", "delimiter", "strip_tabs")

    def __init__(self, delimiter: str, strip_tabs: bool, command: Command) -> None:
        self.delimiter = delimiter
        self.strip_tabs = strip_tabs
        self.command = command


class _Splitter:
    """One pass over one script; nested scripts get their own splitter."""

    def __init__(self, text: str, depth: int) -> None:
        self.text = text
        self.depth = depth
        self.pipelines: list[Pipeline] = []
        self.pipeline: Pipeline = []
        self.command: Command = []
        self.pieces: list[str] = []
        self.in_word = False
        # What the next complete word is: an argument, a redirection target (dropped)
        # or a here-document delimiter.
        self.next_word: str = "argument"
        self.heredoc_strip_tabs = False
        self.heredocs: list[_PendingHeredoc] = []
        self.nested: list[str] = []
        # Inside "case WORD in ... esac": between "in"/";;" and ")" words are patterns.
        self.case_depth = 0
        self.in_case_pattern = False
        self.paren_depth = 0

    def run(self) -> list[Pipeline]:
        text = self.text
        position = 0
        length = len(text)
        while position < length:
            match = _TOKEN.match(text, position)
            if match is None:  # unreachable (see _TOKEN); keeps the loop finite regardless
                break
            kind = match.lastgroup
            position = match.end()
            if kind == "word":
                word = match.group("word")
                if (self.next_word == "argument" and not self.in_word
                        and not self.in_case_pattern and word != "in"):
                    self.command.append(word)
                else:
                    self._add(word)
                    self._end_word()
                continue
            value = match.group()
            if kind == "blank" or kind == "continuation":
                self._end_word()
            elif kind == "newline":
                self._end_command()
                position = self._read_heredoc_bodies(position)
                self._end_pipeline()
            elif kind == "plain":
                if value[0] == "#" and not self.in_word:
                    newline = text.find("\n", position)
                    position = length if newline < 0 else newline
                    continue
                self._add(value)
            elif kind == "single":
                self._add(value[1:-1] if value.endswith("'") and len(value) > 1 else value[1:])
            elif kind == "double":
                body = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
                self._add(_DOUBLE_QUOTE_ESCAPE.sub(_unescape_double, body))
                if "$(" in body or "`" in body:
                    self._collect_substitutions(body)
            elif kind == "ansi":
                body = value[2:-1] if value.endswith("'") and len(value) > 2 else value[2:]
                self._add(_ANSI_ESCAPE.sub(_unescape_ansi, body))
            elif kind == "escaped":
                self._add(value[1:])
            elif kind == "parameter":
                self._add(value)
            elif kind == "substitution":
                position = self._substitution(value, position)
            elif kind == "heredoc":
                self._end_word()
                self.next_word = "heredoc"
                self.heredoc_strip_tabs = value.endswith("-")
            elif kind == "redirect":
                self._end_word()
                # ">&2" and "2>&1" carry their target inside the operator's next word;
                # either way the following word is a target, not an argument.
                self.next_word = "target"
            else:
                position = self._operator(value, position)
        self._end_command()
        self._read_heredoc_bodies(length)
        self._end_pipeline()
        return self.pipelines

    # -- words -------------------------------------------------------------

    def _add(self, piece: str) -> None:
        self.pieces.append(piece)
        self.in_word = True

    def _end_word(self) -> None:
        if not self.in_word:
            return
        word = "".join(self.pieces)
        self.pieces.clear()
        self.in_word = False
        if self.in_case_pattern:
            if word == "esac":
                self.case_depth -= 1
                self.in_case_pattern = False
            return
        if self.next_word == "heredoc":
            self.heredocs.append(_PendingHeredoc(word, self.heredoc_strip_tabs, self.command))
        elif self.next_word == "argument":
            if word == "in" and len(self.command) == 2 and self.command[0] == "case":
                self.command.clear()
                self.case_depth += 1
                self.in_case_pattern = True
            else:
                self.command.append(word)
        self.next_word = "argument"

    def _substitution(self, opener: str, position: int) -> int:
        """Keep ``$(...)`` or a backtick span as part of the word; remember its script."""
        text = self.text
        if opener == "`":
            end = _closing_backtick(text, position)
            inner = text[position:end]
            self._add("`" + inner + "`")
            self._nest(inner.replace("\\`", "`"))
            return min(end + 1, len(text))
        end = _closing_paren(text, position)
        inner = text[position:end]
        self._add("$(" + inner + ")")
        if not inner.startswith("("):  # $((...)) is arithmetic, not a command
            self._nest(inner)
        return min(end + 1, len(text))

    def _collect_substitutions(self, quoted: str) -> None:
        """Command substitutions inside a double-quoted word are scripts too."""
        position = 0
        while True:
            dollar = quoted.find("$(", position)
            tick = quoted.find("`", position)
            if dollar < 0 and tick < 0:
                return
            if tick < 0 or 0 <= dollar < tick:
                end = _closing_paren(quoted, dollar + 2)
                inner = quoted[dollar + 2:end]
                if not inner.startswith("("):
                    self._nest(inner)
            else:
                end = _closing_backtick(quoted, tick + 1)
                self._nest(quoted[tick + 1:end])
            position = end + 1

    def _nest(self, script: str) -> None:
        if script.strip() and self.depth < _MAX_DEPTH:
            self.nested.append(script)

    # -- commands and pipelines ---------------------------------------------

    def _operator(self, operator: str, position: int) -> int:
        self._end_word()
        if self.in_case_pattern:
            # "a|b)" and "(a)": alternatives and parentheses of a case pattern.
            if operator == ")":
                self.in_case_pattern = False
            return position
        if operator in _PIPE_OPERATORS:
            self._end_command()
            return position
        if operator == "(":
            if len(self.command) == 1 and self.text[position:].lstrip(" \t").startswith(")"):
                # "name() { ... }" defines a function: "name" is not a command.
                self.command.clear()
                return self.text.index(")", position) + 1
            self.paren_depth += 1
        elif operator == ")" and self.paren_depth > 0:
            self.paren_depth -= 1
        self._end_command()
        self._end_pipeline()
        if operator.startswith(";;") or operator == ";&":
            self.in_case_pattern = self.case_depth > 0
        return position

    def _end_command(self) -> None:
        self._end_word()
        command = self.command
        self.command = []
        if not command:
            return
        if command[0] in _HEADER_WORDS:
            return
        # Strip keywords and assignments in place: a pending heredoc holds this list.
        drop = 0
        while drop < len(command) and (
            command[drop] in _PREFIX_WORDS or _ASSIGNMENT.match(command[drop])
        ):
            if command[drop] == "esac" and self.case_depth > 0:
                self.case_depth -= 1
            drop += 1
        del command[:drop]
        if not command:
            return
        self.pipeline.append(command)
        script = shell_c_script(command)
        # 'sh -c "$(curl ...)"' runs text fetched at run time; the substitution itself
        # is split already, and its text is no script of ours.
        if script is not None and not script.lstrip().startswith(("$(", "`")):
            self._nest(script)

    def _end_pipeline(self) -> None:
        if self.pipeline:
            self.pipelines.append(self.pipeline)
            self.pipeline = []
        if self.nested:
            scripts, self.nested = self.nested, []
            for script in scripts:
                self.pipelines.extend(_Splitter(script, self.depth + 1).run())

    def _read_heredoc_bodies(self, position: int) -> int:
        """Consume the bodies of heredocs opened on the line just ended."""
        text = self.text
        for heredoc in self.heredocs:
            lines: list[str] = []
            while position < len(text):
                newline = text.find("\n", position)
                end = len(text) if newline < 0 else newline
                line = text[position:end]
                position = end + 1
                if heredoc.strip_tabs:
                    line = line.lstrip("\t")
                if line == heredoc.delimiter:
                    break
                lines.append(line)
            if lines and reads_script_from_stdin(heredoc.command):
                self._nest("\n".join(lines))
        self.heredocs.clear()
        return min(position, len(text))


def _unescape_double(match: re.Match[str]) -> str:
    # Inside double quotes a backslash-newline joins lines; other escapes keep the char.
    return "" if match[1] == "\n" else match[1]


def _unescape_ansi(match: re.Match[str]) -> str:
    return _ANSI_ESCAPES.get(match[1], match[0])


def _closing_paren(text: str, start: int) -> int:
    """Index of the ``)`` closing a ``$(`` opened just before ``start`` (or len(text))."""
    depth = 1
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "'" or char == '"':
            close = text.find(char, index + 1)
            index = length if close < 0 else close + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return length


def _closing_backtick(text: str, start: int) -> int:
    index = start
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == "`":
            return index
        index += 1
    return len(text)
