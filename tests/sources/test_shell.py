"""sources/shell.py: RUN scripts become the commands sh runs, in order, with their data flows."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.sources.shell import (
    read_argv,
    read_script,
    reads_script_from_stdin,
    shell_c_script,
)
from paracle_guard.sources.shell_command import Command
from paracle_guard.sources.shell_state import ReadLimits
from paracle_guard.sources.shell_words import ExpansionBudget


def argvs(script: str, variables: dict[str, str] | None = None) -> list[list[str]]:
    return [command.argv for command in read_script(script, variables)]


def only(script: str, variables: dict[str, str] | None = None) -> Command:
    (command,) = read_script(script, variables)
    return command


def test_operators_separate_commands_and_pipes_join_them() -> None:
    commands = read_script("a 1 && b 2 || c; d & e | f |& g\nh")
    assert [c.argv for c in commands] == [["a", "1"], ["b", "2"], ["c"], ["d"], ["e"], ["f"],
                                          ["g"], ["h"]]
    e, f, g = commands[4:7]
    assert (e.output_to, e.flow, f.output_to, f.flow, g.output_to) == (f, "pipe", g, "pipe", None)


def test_quotes_and_escapes_are_removed_like_the_shell_does() -> None:
    assert argvs("""echo 'a b' "c \\"d\\" $X" e\\ f g'h'"i" '' $'x\\ny'""") == [
        ["echo", "a b", 'c "d" $X', "e f", "ghi", "", "x\ny"]
    ]


def test_backslash_newline_joins_lines() -> None:
    assert argvs("apt-get install \\\n  curl \\\n  git") == [["apt-get", "install", "curl", "git"]]


def test_leading_assignments_are_the_commands_environment() -> None:
    command = only("DEBIAN_FRONTEND=noninteractive A+=1 apt-get install -y x; B=2")
    assert command.argv == ["apt-get", "install", "-y", "x"]
    assert command.environment == {"DEBIAN_FRONTEND": "noninteractive", "A": "1"}


def test_redirections_are_recorded_not_argv() -> None:
    commands = read_script(
        "curl -o x url 2>&1 >/dev/null < in >> log &>all 3<&0 <<< word; echo ok > f"
    )
    assert [c.argv for c in commands] == [["curl", "-o", "x", "url"], ["echo", "ok"]]
    assert commands[0].redirects == [
        ("2", ">&", "1"), ("", ">", "/dev/null"), ("", "<", "in"), ("", ">>", "log"),
        ("", "&>", "all"), ("3", "<&", "0"), ("", "<<<", "word"),
    ]
    assert commands[0].stdin == "word\n"
    assert commands[1].stdout_file() == "f"


def test_only_ascii_blanks_split_words() -> None:
    # sh splits on spaces and tabs only; a no-break space is part of a word.
    assert argvs("echo a\u00a0b c\u2028d | cat") == [["echo", "a\u00a0b", "c\u2028d"], ["cat"]]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab-/.:=\u00a0\u2028\u00e9", min_size=1), min_size=1, max_size=8))
def test_plain_words_come_back_whole(words: list[str]) -> None:
    words = ["cmd", *words]  # a leading NAME=value is an assignment, not argv
    assert argvs(" ".join(words)) == [words]


def test_comments_are_skipped_but_a_hash_inside_a_word_is_kept() -> None:
    assert argvs("# setup\necho a#b # trailing\n  # indented") == [["echo", "a#b"]]


# --- expansions -------------------------------------------------------------------


def test_known_variables_expand_and_split_unknown_ones_stay_as_written() -> None:
    variables = {"PKGS": "curl  sudo", "V": "1.2", "EMPTY": ""}
    assert argvs('pip install $PKGS "$PKGS" ${V} x-$V $NOPE ${NOPE+a b} $EMPTY', variables) == [
        ["pip", "install", "curl", "sudo", "curl  sudo", "1.2", "x-1.2", "$NOPE", "${NOPE+a b}"]
    ]


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        # An unknown variable's default is what runs when nothing sets it (an ARG given
        # no --build-arg): it used to stay as written, hiding the package.
        ("apk add ${NOPE:-sudo}", ["apk", "add", "sudo"]),
        ("apk add ${NOPE-sudo doas}", ["apk", "add", "sudo", "doas"]),
        ('apk add "${NOPE:=sudo}"', ["apk", "add", "sudo"]),
        ("apk add ${NOPE:?missing}", ["apk", "add", "${NOPE:?missing}"]),
        # IFS is blank, tab and newline unless the script sets it.
        ("apk${IFS}add${IFS}sudo", ["apk", "add", "sudo"]),
        # The command word splits too: INSTALL="apk add" makes "$INSTALL sudo" an install.
        ("$INSTALL sudo", ["apk", "add", "sudo"]),
        ('"$INSTALL" sudo', ["apk add", "sudo"]),
        # A substitution whose output the script decides is that output.
        ("apk add $(echo sudo)", ["apk", "add", "sudo"]),
        ("apk add `printf '%s\\n' sudo doas`", ["apk", "add", "sudo", "doas"]),
        ('apk add "$(echo sudo)"', ["apk", "add", "sudo"]),
        ("apk add $(cat /etc/pkgs)", ["apk", "add", "$(cat /etc/pkgs)"]),
        # set -- gives the positional parameters, and "$@" is one word per parameter.
        ('set -- sudo doas; apk add "$@"', ["apk", "add", "sudo", "doas"]),
        ("set -eu; set -o pipefail -- sudo; apk add $1", ["apk", "add", "sudo"]),
        ('sh -c \'apk add "$@"\' _ sudo doas', ["apk", "add", "sudo", "doas"]),
    ],
)
def test_expansions_that_used_to_hide_a_package(script: str, argv: list[str]) -> None:
    assert argvs(script, {"INSTALL": "apk add"})[-1] == argv


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("${SET:-d}", "s"), ("${EMPTY:-d}", "d"), ("${EMPTY-d}", ""), ("${SET:+alt}", "alt"),
        ("${EMPTY:+alt}", ""), ('${EMPTY:-"a b"}', "a b"), ("${EMPTY:-${SET}}", "s"),
    ],
)
def test_parameter_defaults(word: str, value: str) -> None:
    assert only(f'echo "{word}"', {"SET": "s", "EMPTY": ""}).argv == ["echo", value]


def test_assignments_and_exports_in_the_script_are_seen_later() -> None:
    commands = read_script('P="curl sudo"; export PIP_NO_CACHE_DIR=1 X; apk add $P; pip install y')
    assert commands[1].argv == ["apk", "add", "curl", "sudo"]
    assert commands[2].environment == {"PIP_NO_CACHE_DIR": "1"}


def test_an_expanded_script_is_read_as_the_shell_reads_it() -> None:
    # The value holds quotes: substituting the text first would break the words apart.
    script = 'apt-get update && echo "hi there" && rm -rf /var/lib/apt/lists/*'
    assert argvs('bash -c "$SCRIPT"', {"SCRIPT": script}) == [
        ["bash", "-c", script], ["apt-get", "update"], ["echo", "hi there"],
        ["rm", "-rf", "/var/lib/apt/lists/*"],
    ]


def test_positional_parameters_of_sh_c() -> None:
    assert argvs("sh -c 'apk add \"$1\" $2' _ sudo doas")[1] == ["apk", "add", "sudo", "doas"]


# --- compound commands --------------------------------------------------------------


def test_compound_keywords_are_dropped_from_the_front() -> None:
    script = "if [ -f x ]; then apt-get install -y sudo; else ! true; fi"
    assert argvs(script) == [["[", "-f", "x", "]"], ["apt-get", "install", "-y", "sudo"],
                             ["true"]]


def test_loop_headers_are_not_commands() -> None:
    # The loop variable is every item at once (the body once, for all of them).
    script = "for p in a b; do pip install $p; done\nwhile read l; do echo $l; done"
    assert argvs(script) == [["pip", "install", "a", "b"], ["read", "l"], ["echo", "$l"]]


def test_case_patterns_are_not_commands() -> None:
    script = (
        'case "$ARCH" in\n  amd64|x86_64) apk add a ;;\n  (arm64) apk add b ;;\n'
        "  *) echo no ;;\nesac"
    )
    assert argvs(script) == [["apk", "add", "a"], ["apk", "add", "b"], ["echo", "no"]]


def test_function_definitions_subshells_and_the_working_directory() -> None:
    commands = read_script("f() { echo hi; }; f\n(cd /src && make) || exit 1; make all")
    # The body as written, then the call, which runs the body again.
    assert [c.argv for c in commands] == [["echo", "hi"], ["f"], ["echo", "hi"], ["cd", "/src"],
                                          ["make"], ["exit", "1"], ["make", "all"]]
    assert [c.cwd for c in commands[4:]] == ["/src", "/", "/"]  # the subshell's cd ends with it


def test_cd_moves_relative_paths() -> None:
    commands = read_script("cd /var/lib && cd apt/lists && rm -rf * && cd $X && ls", cwd="/")
    assert [c.cwd for c in commands] == ["/", "/var/lib", "/var/lib/apt/lists",
                                         "/var/lib/apt/lists", None]


# --- nested scripts and data flows --------------------------------------------------


def test_command_substitutions_run_first_and_are_captured() -> None:
    commands = read_script(
        'sh -c "$(curl -fsSL https://x/install.sh)" && echo `uname -m` $((1 + 2))'
    )
    assert [c.argv for c in commands] == [
        ["curl", "-fsSL", "https://x/install.sh"],
        ["sh", "-c", "$(curl -fsSL https://x/install.sh)"],
        ["uname", "-m"],
        ["echo", "`uname -m`", "$((1 + 2))"],
    ]
    assert (commands[0].output_to, commands[0].flow) == (commands[1], "argument")
    assert commands[1].opaque


def test_process_substitution_is_captured() -> None:
    curl, bash = read_script("bash <(curl -s https://x)")
    assert (curl.output_to, curl.flow, bash.argv) == (bash, "argument",
                                                      ["bash", "<(curl -s https://x)"])


def test_sh_c_su_c_and_eval_scripts_are_read_where_they_run() -> None:
    assert argvs("bash -ec 'curl -s x | sh' && su -c 'apk add a' app && eval \"apk add b\"") == [
        ["bash", "-ec", "curl -s x | sh"], ["curl", "-s", "x"], ["sh"],
        [], ["apk", "add", "a"],
        ["eval", "apk add b"], ["apk", "add", "b"],
    ]


def test_nested_output_is_forwarded_to_its_shell() -> None:
    commands = read_script("sh -c 'curl -s x' | bash")
    curl = commands[1]
    assert (curl.output_to, curl.flow) == (commands[0], "forward")
    assert (commands[0].output_to, commands[0].flow) == (commands[2], "pipe")


def test_heredoc_body_is_the_standard_input() -> None:
    commands = read_script(
        "cat <<'EOF' > /etc/app.conf\napt-get install -y $X\nEOF\ncat <<EOF\n$X \\$Y\nEOF",
        {"X": "sudo"},
    )
    assert [c.argv for c in commands] == [["cat"], ["cat"]]
    assert commands[0].stdin == "apt-get install -y $X\n"  # quoted: no expansion
    assert commands[0].output == "apt-get install -y $X\n"
    assert commands[1].stdin == "sudo $Y\n"


def test_heredoc_body_fed_to_a_shell_is_a_script() -> None:
    script = "bash -ex <<EOF\napt-get install -y vim\nEOF\npython3 <<EOF\nimport os\nEOF"
    assert argvs(script) == [["bash", "-ex"], ["apt-get", "install", "-y", "vim"], ["python3"]]


def test_heredoc_with_dash_strips_tabs_from_the_terminator() -> None:
    assert argvs("sh <<-END\n\tapk add curl\n\tEND\nls") == [["sh"], ["apk", "add", "curl"],
                                                             ["ls"]]


def test_a_known_pipe_into_a_shell_is_a_script() -> None:
    assert argvs("echo 'apk add sudo' | sh && printf '%s\\n' 'apk add doas' | bash -s") == [
        ["echo", "apk add sudo"], ["sh"], ["apk", "add", "sudo"],
        ["printf", "%s\\n", "apk add doas"], ["bash", "-s"], ["apk", "add", "doas"],
    ]


def test_xargs_fed_by_a_known_list() -> None:
    assert argvs("echo sudo doas | xargs apk add && printf 'a\\nb\\n' | xargs -I{} pip install {}"
                 )[1::2] == [["apk", "add", "sudo", "doas"], ["pip", "install", "a"]]
    assert argvs("cat list | xargs apk add")[1] == ["apk", "add"]


def test_find_exec_runs_its_command() -> None:
    assert argvs("find / -perm /6000 -type f -exec chmod a-s {} + -o -exec sh -c 'rm x' \\;") == [
        ["find", "/", "-perm", "/6000", "-type", "f", "-exec", "chmod", "a-s", "{}", "+", "-o",
         "-exec", "sh", "-c", "rm x", ";"],
        ["chmod", "a-s", "{}"], ["sh", "-c", "rm x"], ["rm", "x"],
    ]


def test_unterminated_constructs_do_not_raise() -> None:
    assert argvs("echo 'open") == [["echo", "open"]]
    assert argvs('echo "open $(x') == [["x"], ["echo", "open $(x)"]]
    assert argvs("cat <<EOF\nno end") == [["cat"]]
    assert argvs("") == []


def test_read_argv_is_the_command_then_its_shell_script() -> None:
    assert [c.argv for c in read_argv(["/bin/sh", "-c", "apt-get install -y x && rm -rf /t/*"])
            ] == [["/bin/sh", "-c", "apt-get install -y x && rm -rf /t/*"],
                  ["apt-get", "install", "-y", "x"], ["rm", "-rf", "/t/*"]]
    assert [c.argv for c in read_argv(["python3", "app.py"])] == [["python3", "app.py"]]
    assert read_argv([]) == []


def test_nesting_stops_at_a_fixed_depth() -> None:
    commands = argvs("eval " * 20 + "apk add x")
    assert ["apk", "add", "x"] not in commands
    assert len(commands) == 7  # the script and six nested levels


@pytest.mark.parametrize(
    ("argv", "script"),
    [
        (["sh", "-c", "x"], "x"),
        (["/bin/bash", "-o", "pipefail", "-c", "x", "arg0"], "x"),
        (["bash", "--login", "-euxc", "x"], "x"),
        (["sh", "script.sh"], None),
        (["python3", "-c", "x"], None),
        (["sh", "-c"], None),
    ],
)
def test_shell_c_script(argv: list[str], script: str | None) -> None:
    assert shell_c_script(argv) == script


@pytest.mark.parametrize(
    ("argv", "reads"),
    [
        (["sh"], True),
        (["bash", "-ex"], True),
        (["sh", "-s", "--", "arg"], True),
        (["bash", "-"], True),
        (["sh", "script.sh"], False),
        (["sh", "-c", "x"], False),
        (["python3"], False),
    ],
)
def test_reads_script_from_stdin(argv: list[str], reads: bool) -> None:
    assert reads_script_from_stdin(argv) is reads


_SHELLISH = st.lists(
    st.sampled_from([
        "a", " ", "\n", "'", '"', "\\", "$", "$(", ")", "(", "`", "${", "}", "|", "&&", ";",
        "<<", "<<-", "EOF", "\t", "#", "sh", "-c", "case", "in", "esac", ";;", "2>", "=",
        "<(", "eval", "xargs", "X=", "$X", "${X:-", "cd", "..", "echo", "find", "-exec",
    ]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _SHELLISH))
def test_read_script_never_raises(script: str) -> None:
    for command in read_script(script, {"X": "a b"}):
        assert isinstance(command.argv, list)


def test_the_limits_say_when_a_script_was_left_unread() -> None:
    limits = ReadLimits()
    read_script("eval " * 6 + "apk add x", limits=limits)
    assert not limits.too_deep
    read_script("eval " * 7 + "apk add x", limits=limits)
    assert limits.too_deep
    deep = ReadLimits()
    read_script("echo " + "$(" * 8 + "x" + ")" * 8, limits=deep)
    assert deep.too_deep
    assert deep.unread is not None and "levels deep" in deep.unread


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        # The 33rd wrapper used to be left as the program: "nice apk add sudo" unread.
        ("nice " * 33 + "apk add sudo", "wrapper commands"),
        ("find / -exec " + "nice " * 33 + "apk add sudo ;", "wrapper commands"),
        # xargs -I runs one command per item; the 17th item was dropped silently.
        ("echo " + "a " * 16 + "sudo | xargs -I{} apk add {}", "xargs"),
    ],
)
def test_a_bound_reached_is_said_not_skipped(script: str, reason: str) -> None:
    limits = ReadLimits()
    read_script(script, limits=limits)
    assert limits.unread is not None and reason in limits.unread
    assert not limits.too_deep


def test_the_longest_chains_within_the_bounds_are_read_whole() -> None:
    limits = ReadLimits()
    commands = read_script("nice " * 32 + "apk add sudo; echo " + "a " * 15 + "sudo"
                           " | xargs -I{} apk add {}", limits=limits)
    assert limits.unread is None
    assert ["apk", "add", "sudo"] in [command.argv for command in commands]


def test_self_doubling_variables_stop_at_the_budget_and_say_so() -> None:
    limits = ReadLimits(budget=ExpansionBudget(1 << 20))
    commands = read_script("A=xx; " + "A=$A$A; " * 40 + "apk add $A", limits=limits)
    assert limits.unread is not None and "expands variables" in limits.unread
    assert commands[-1].argv == ["apk", "add", "$A"]  # unknown, not 2**41 characters


@pytest.mark.parametrize(
    "script",
    [
        # Standard input named as a file.
        ". /dev/stdin <<EOF\napk add sudo\nEOF",
        "source /dev/stdin <<<'apk add sudo'",
        "sh /dev/stdin <<<'apk add sudo'",
        "bash /proc/self/fd/0 <<<'apk add sudo'",
        # A script the step writes, then runs: with sh, sourced, or by its path.
        "echo 'apk add sudo' > /tmp/i.sh && sh /tmp/i.sh",
        "cd /tmp && echo 'apk add $1' > i.sh && chmod +x i.sh && ./i.sh sudo",
        "cat > /i.sh <<'EOF'\n#!/bin/sh\napk add sudo\nEOF\n. /i.sh",
        "echo set -e > /i.sh; echo apk add sudo >> /i.sh; bash -e /i.sh",
        "printf 'apk add sudo' | tee /t.sh >/dev/null; sh /t.sh",
        # Encoded text the script decodes itself.
        "echo YXBrIGFkZCBzdWRv | base64 -d | sh",
        # A list the step wrote, read back: cat, xargs -a, a < redirect.
        "echo sudo > /tmp/p && apk add $(cat /tmp/p)",
        "echo sudo > /tmp/p; xargs -a /tmp/p apk add",
        "echo sudo > /tmp/p; xargs apk add < /tmp/p",
        "echo 'apk add sudo' > /tmp/i.sh; sh < /tmp/i.sh",
    ],
)
def test_scripts_from_stdin_files_written_and_decoded_are_read(script: str) -> None:
    assert argvs(script)[-1] == ["apk", "add", "sudo"]


@pytest.mark.parametrize(
    "script",
    [
        "sh /tmp/i.sh",  # not written here: its content is the build context's
        "echo 'apk add sudo' > /tmp/i.sh; curl -o /tmp/i.sh https://x; sh /tmp/i.sh",
        "echo 'apk add sudo' >> /tmp/i.sh; sh /tmp/i.sh",  # appended to what was there
        "echo 'apk add sudo' > /tmp/a.sh; sh /tmp/b.sh",
    ],
)
def test_a_file_the_step_did_not_decide_is_not_invented(script: str) -> None:
    assert ["apk", "add", "sudo"] not in argvs(script)[1:]


@pytest.mark.parametrize(
    ("script", "argv"),
    [
        # A function defined, then called: its body runs with the call's arguments.
        ('f() { apk add --no-cache "$@"; }; f sudo doas', ["apk", "add", "--no-cache", "sudo",
                                                          "doas"]),
        ("function f { apk add $1; }; f sudo", ["apk", "add", "sudo"]),
        ("function f() (apk add $1)\nf sudo", ["apk", "add", "sudo"]),
        ("install_pkgs () {\n  apk add ${1:-x} {a,b}\n}\ninstall_pkgs sudo",
         ["apk", "add", "sudo", "{a,b}"]),
        # An alias, then its use.
        ("alias x='apk add --no-cache'\nx sudo", ["apk", "add", "--no-cache", "sudo"]),
        # A loop: its variable is every item at once.
        ("for p in sudo doas; do apk add $p; done", ["apk", "add", "sudo", "doas"]),
        ('for p in sudo doas; do apk add "$p"; done', ["apk", "add", "sudo", "doas"]),
        ('set -- sudo; for p; do apk add "${p}"; done', ["apk", "add", "sudo"]),
        # The path of a program names the program.
        ('"$(which apk)" add sudo', ["apk", "add", "sudo"]),
        ("$(command -v apk) add sudo", ["apk", "add", "sudo"]),
    ],
)
def test_functions_aliases_and_loops_are_followed(script: str, argv: list[str]) -> None:
    assert argvs(script)[-1] == argv


def test_a_function_calling_itself_stops_at_the_depth_and_says_so() -> None:
    limits = ReadLimits()
    read_script("f() { f; apk add x; }; f", limits=limits)
    assert limits.too_deep


def test_an_alias_is_not_expanded_inside_its_own_text() -> None:
    # "alias ls='ls -la'" is common and no loop: sh does not expand ls again in it.
    limits = ReadLimits()
    assert argvs("alias ls='ls -la'\nls /tmp") == [["alias", "ls=ls -la"], ["ls", "/tmp"],
                                                  ["ls", "-la", "/tmp"]]
    read_script("alias ls='ls -la'\nls /tmp", limits=limits)
    assert limits.unread is None


def test_command_and_builtin_run_the_program_not_the_function() -> None:
    # A wrapper function around the real program is common and no recursion.
    limits = ReadLimits()
    commands = read_script('apt-get() { command apt-get -y "$@"; }; apt-get install x',
                           limits=limits)
    assert limits.unread is None
    assert [c.argv for c in commands][-1] == ["apt-get", "-y", "install", "x"]
