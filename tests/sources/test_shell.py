"""sources/shell.py: RUN scripts become pipelines of argv lists, the way sh reads them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.sources.shell import (
    reads_script_from_stdin,
    shell_c_script,
    split_argv,
    split_script,
)


def test_operators_end_pipelines_and_pipes_join_commands() -> None:
    assert split_script("a 1 && b 2 || c; d & e | f |& g\nh") == [
        [["a", "1"]],
        [["b", "2"]],
        [["c"]],
        [["d"]],
        [["e"], ["f"], ["g"]],
        [["h"]],
    ]


def test_quotes_and_escapes_are_removed_like_the_shell_does() -> None:
    assert split_script("""echo 'a b' "c \\"d\\" $X" e\\ f g'h'"i" '' $'x\\ny'""") == [
        [["echo", "a b", 'c "d" $X', "e f", "ghi", "", "x\ny"]]
    ]


def test_backslash_newline_joins_lines() -> None:
    assert split_script("apt-get install \\\n  curl \\\n  git") == [
        [["apt-get", "install", "curl", "git"]]
    ]


def test_leading_assignments_are_not_argv() -> None:
    assert split_script("DEBIAN_FRONTEND=noninteractive A+=1 apt-get install -y x; B=2") == [
        [["apt-get", "install", "-y", "x"]]
    ]


def test_redirections_and_their_targets_are_not_argv() -> None:
    script = "curl -o x url 2>&1 >/dev/null < in >> log &>all 3<&0 <<< word; echo ok > f"
    assert split_script(script) == [[["curl", "-o", "x", "url"]], [["echo", "ok"]]]


def test_only_ascii_blanks_split_words() -> None:
    # sh splits on spaces and tabs only; a no-break space is part of a word.
    assert split_script("echo a\u00a0b c\u2028d | sh") == [
        [["echo", "a\u00a0b", "c\u2028d"], ["sh"]]
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab-/.:=\u00a0\u2028\u00e9", min_size=1), min_size=1, max_size=8))
def test_plain_words_come_back_whole(words: list[str]) -> None:
    if "=" in words[0]:
        words = ["cmd", *words]  # a leading NAME=value is an assignment, not argv
    assert split_script(" ".join(words)) == [[words]]


def test_comments_are_skipped_but_a_hash_inside_a_word_is_kept() -> None:
    assert split_script("# setup\necho a#b # trailing\n  # indented") == [[["echo", "a#b"]]]


def test_variables_and_parameter_expansions_stay_as_written() -> None:
    assert split_script("pip install ${PKG:-a b} $VERSION") == [
        [["pip", "install", "${PKG:-a b}", "$VERSION"]]
    ]


def test_compound_keywords_are_dropped_from_the_front() -> None:
    script = "if [ -f x ]; then apt-get install -y sudo; else ! true; fi"
    assert split_script(script) == [
        [["[", "-f", "x", "]"]],
        [["apt-get", "install", "-y", "sudo"]],
        [["true"]],
    ]


def test_loop_headers_are_not_commands() -> None:
    script = "for p in a b; do pip install $p; done\nwhile read l; do echo $l; done"
    assert split_script(script) == [
        [["pip", "install", "$p"]],
        [["read", "l"]],
        [["echo", "$l"]],
    ]


def test_case_patterns_are_not_commands() -> None:
    script = (
        'case "$ARCH" in\n  amd64|x86_64) apk add a ;;\n  (arm64) apk add b ;;\n'
        "  *) echo no ;;\nesac"
    )
    assert split_script(script) == [[["apk", "add", "a"]], [["apk", "add", "b"]], [["echo", "no"]]]


def test_function_definitions_and_subshells() -> None:
    assert split_script("f() { echo hi; }; f\n(cd /src && make) || exit 1") == [
        [["echo", "hi"]],
        [["f"]],
        [["cd", "/src"]],
        [["make"]],
        [["exit", "1"]],
    ]


def test_command_substitutions_are_split_after_their_pipeline() -> None:
    script = 'sh -c "$(curl -fsSL https://x/install.sh)" && echo `uname -m` $((1 + 2))'
    assert split_script(script) == [
        [["sh", "-c", "$(curl -fsSL https://x/install.sh)"]],
        [["curl", "-fsSL", "https://x/install.sh"]],
        [["echo", "`uname -m`", "$((1 + 2))"]],
        [["uname", "-m"]],
    ]


def test_sh_c_scripts_are_split_too() -> None:
    assert split_script("bash -ec 'curl -s x | sh' && su -c 'not split' app") == [
        [["bash", "-ec", "curl -s x | sh"]],
        [["curl", "-s", "x"], ["sh"]],
        [["su", "-c", "not split", "app"]],
    ]


def test_heredoc_body_is_data_for_most_commands() -> None:
    script = "cat <<'EOF' > /etc/app.conf\napt-get install -y sudo\nEOF\necho done"
    assert split_script(script) == [[["cat"]], [["echo", "done"]]]


def test_heredoc_body_fed_to_a_shell_is_a_script() -> None:
    script = "bash -ex <<EOF\napt-get install -y vim\nEOF\npython3 <<EOF\nimport os\nEOF"
    assert split_script(script) == [
        [["bash", "-ex"]],
        [["apt-get", "install", "-y", "vim"]],
        [["python3"]],
    ]


def test_heredoc_with_dash_strips_tabs_from_the_terminator() -> None:
    script = "sh <<-END\n\tapk add curl\n\tEND\nls"
    assert split_script(script) == [[["sh"]], [["apk", "add", "curl"]], [["ls"]]]


def test_unterminated_constructs_do_not_raise() -> None:
    assert split_script("echo 'open") == [[["echo", "open"]]]
    assert split_script('echo "open $(x') == [[["echo", "open $(x"]], [["x"]]]
    assert split_script("cat <<EOF\nno end") == [[["cat"]]]
    assert split_script("") == []


def test_split_argv_is_the_command_then_its_shell_script() -> None:
    assert split_argv(["/bin/sh", "-c", "apt-get install -y x && rm -rf /tmp/*"]) == [
        [["/bin/sh", "-c", "apt-get install -y x && rm -rf /tmp/*"]],
        [["apt-get", "install", "-y", "x"]],
        [["rm", "-rf", "/tmp/*"]],
    ]
    assert split_argv(["python3", "app.py"]) == [[["python3", "app.py"]]]
    assert split_argv([]) == []


@pytest.mark.parametrize(
    ("argv", "script"),
    [
        (["sh", "-c", "x"], "x"),
        (["/bin/bash", "-o", "pipefail", "-c", "x", "arg0"], "x"),
        (["bash", "--login", "-euxc", "x"], "x"),
        (["busybox", "sh", "-c", "x"], "x"),
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
    ]),
    max_size=60,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), _SHELLISH))
def test_split_script_never_raises(script: str) -> None:
    pipelines = split_script(script)
    assert all(pipeline and all(command for command in pipeline) for pipeline in pipelines)
