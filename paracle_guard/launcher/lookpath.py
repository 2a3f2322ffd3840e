"""Whether the command of a launch exists in the image, found as the container would find it.

The sandbox's first process is the engine's init (docker-init, tini), which runs
the command with ``execvp``: a name with a ``/`` is taken as a path (relative to
the working directory), any other name is looked up in the directories of
``PATH``. The container's ``PATH`` is the engine's default
(``/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin``, moby's
``oci.DefaultPathEnv``), replaced by the image's ``ENV PATH``, replaced by a
``--env PATH``, as moby's ``Container.CreateDaemonEnvironment`` merges them.

The image's files are read from its ``ImageTree`` (every path of every layer,
symlinks followed inside the image root): a command that is in none of those
places is reported before anything is created, the way a shell reports it,
instead of as init's ``[FATAL tini (7)] exec ... failed``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from paracle_guard.errors import GuardError
from paracle_guard.exit_codes import NOT_FOUND as NOT_FOUND_EXIT
from paracle_guard.image_tree import ImageTree
from paracle_guard.subject import Subject


class CommandNotFound(GuardError):
    """The command (or the image's entrypoint) is not in the image: nothing was created."""

    exit_code = NOT_FOUND_EXIT

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def container_path(image_env: Sequence[tuple[str, str | None]],
                   run_env: Sequence[tuple[str, str]]) -> str:
    """The ``PATH`` the container's init sees."""
    path = DEFAULT_PATH
    for name, value in (*image_env, *run_env):
        if name == "PATH" and value is not None:
            path = value
    return path


def find_command(tree: ImageTree, command: str, *, path: str, working_dir: str) -> str | None:
    """Where ``execvp`` would find ``command`` in the image, or None when it is nowhere."""
    if "/" in command:
        candidates = [posixpath.join(working_dir or "/", command)]
    else:
        # An empty PATH entry means the working directory, as execvp reads it.
        candidates = [posixpath.join(folder or working_dir or "/", command)
                      for folder in path.split(":")]
    for candidate in candidates:
        resolved = tree.resolve(posixpath.normpath(candidate))
        if resolved is None:
            continue
        entry = tree.lookup(resolved)
        if entry is not None and entry.kind == "other":
            return candidate
    return None


def check_command(image: Subject | None, command: Sequence[str], *,
                  run_env: Sequence[tuple[str, str]], working_dir: str | None) -> None:
    """Raise CommandNotFound when what the container would execute is not in ``image``.

    That is the image's ENTRYPOINT when it has one (the command is then its
    arguments), else the command. Nothing is said when the image's files are
    unknown (a backend that cannot read images).
    """
    tree = image.image_tree if image is not None else None
    if image is None or tree is None:
        return
    entrypoint = image.metadata.get("entrypoint")
    from_image = isinstance(entrypoint, list) and bool(entrypoint)
    program = list(entrypoint) if isinstance(entrypoint, list) and from_image else list(command)
    if not program:
        return
    path = container_path([(v.name, v.value) for v in image.env], run_env)
    workdir = working_dir or image.workdir or "/"
    if find_command(tree, program[0], path=path, working_dir=workdir) is None:
        name = program[0]
        where = ("" if name.startswith("/") else
                 f" (working directory {workdir})" if "/" in name else f" (PATH={path})")
        what = "the image's entrypoint" if from_image else "command"
        raise CommandNotFound(f"{name}: {what} not found in the image{where}")
