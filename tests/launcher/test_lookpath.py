"""Finding the command in the image as tini's execvp would, from the image's tree alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paracle_guard.image_tree import ImageTree, LayerTree
from paracle_guard.launcher.lookpath import (
    DEFAULT_PATH,
    CommandNotFound,
    check_command,
    container_path,
    find_command,
)
from paracle_guard.location import Location
from paracle_guard.subject import EnvVar, Subject


def tree() -> ImageTree:
    base = LayerTree()
    for folder in ("/usr", "/usr/bin", "/usr/local", "/usr/local/bin", "/opt", "/opt/app",
                   "/srv", "/home"):
        base.record(folder, "dir")
    base.record("/bin", "symlink", "usr/bin")  # merged /usr, as Debian has it
    base.record("/usr/bin/python3", "other")
    base.record("/usr/bin/sh", "other")
    base.record("/opt/app/run", "other")
    base.record("/usr/local/bin/tool", "symlink", "/opt/app/run")
    base.record("/usr/bin/broken", "symlink", "/nowhere")
    top = LayerTree()
    top.whiteouts.add("/usr/bin/sh")  # deleted in a later layer
    return ImageTree(layers=[base, top], layer_ids=["sha256:a", "sha256:b"])


@pytest.mark.parametrize(
    ("command", "found"),
    [
        ("python3", "/usr/bin/python3"),
        ("tool", "/usr/local/bin/tool"),  # a symlink to a file counts
        ("/bin/python3", "/bin/python3"),  # through the /bin -> usr/bin link
        ("./run", "/opt/app/./run"),  # relative to the working directory
    ],
)
def test_what_execvp_would_find(command: str, found: str) -> None:
    assert find_command(tree(), command, path=DEFAULT_PATH, working_dir="/opt/app") == found


@pytest.mark.parametrize("command", ["nosuchcmd", "sh", "broken", "/usr/bin", "usr", "/bin/sh"])
def test_what_is_not_a_command(command: str) -> None:
    # sh was deleted by a later layer; broken points nowhere; a directory is no command.
    assert find_command(tree(), command, path=DEFAULT_PATH, working_dir="/") is None


def test_path_is_the_engine_default_then_the_image_s_then_the_run_s() -> None:
    assert container_path([], []) == DEFAULT_PATH
    assert container_path([("PATH", "/opt/app")], []) == "/opt/app"
    assert container_path([("PATH", "/opt/app")], [("PATH", "/srv")]) == "/srv"
    assert find_command(tree(), "run", path="/opt/app", working_dir="/") == "/opt/app/run"
    assert find_command(tree(), "python3", path="/opt/app", working_dir="/") is None


def _image(**extra: object) -> Subject:
    subject = Subject(kind="image", target="img", image_tree=tree(),
                      env=[EnvVar(name="PATH", value="/usr/bin", origin="config",
                                  location=Location(path="img"))])
    return replace(subject, **extra)


def test_check_command_refuses_with_127_and_says_where_it_looked() -> None:
    with pytest.raises(CommandNotFound) as raised:
        check_command(_image(), ["nosuchcmd", "-x"], run_env=(), working_dir=None)
    assert raised.value.exit_code == 127
    assert str(raised.value) == "nosuchcmd: command not found in the image (PATH=/usr/bin)"
    check_command(_image(), ["python3", "-c", "1"], run_env=(), working_dir=None)
    with pytest.raises(CommandNotFound, match=r"^/srv/x: command not found in the image$"):
        check_command(_image(), ["/srv/x"], run_env=(), working_dir=None)
    with pytest.raises(CommandNotFound, match=r"\(working directory /srv\)$"):
        check_command(_image(), ["./x"], run_env=(), working_dir="/srv")


def test_an_entrypoint_is_what_runs_and_what_is_checked() -> None:
    with_entrypoint = _image(metadata={"entrypoint": ["/docker-entrypoint.sh"]})
    with pytest.raises(CommandNotFound, match="the image's entrypoint not found"):
        check_command(with_entrypoint, ["python3"], run_env=(), working_dir=None)
    fine = _image(metadata={"entrypoint": ["python3"]})
    check_command(fine, ["--version"], run_env=(), working_dir=None)


def test_nothing_is_said_without_the_image_s_files() -> None:
    check_command(None, ["nosuchcmd"], run_env=(), working_dir=None)
    check_command(_image(image_tree=None), ["nosuchcmd"], run_env=(), working_dir=None)
