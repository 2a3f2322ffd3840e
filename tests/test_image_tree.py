"""The image skeleton: layers merged as overlayfs merges them, mounts resolved as runc does."""

from __future__ import annotations

import pytest

from paracle_guard.image_tree import ImageTree, LayerTree, path_key


def layer(*entries: tuple[str, str] | tuple[str, str, str], whiteouts: tuple[str, ...] = (),
          opaque: tuple[str, ...] = ()) -> LayerTree:
    """Entries as (path, "dir"|"other") or (path, "symlink", target)."""
    tree = LayerTree()
    for entry in entries:
        path, kind = entry[0], entry[1]
        tree.record(path, kind, entry[2] if len(entry) == 3 else "")  # type: ignore[arg-type,misc]
    tree.whiteouts.update(whiteouts)
    tree.opaque_dirs.update(opaque)
    return tree


def image(*layers: LayerTree) -> ImageTree:
    return ImageTree(layers=list(layers), layer_ids=[f"sha256:{i}" for i in range(len(layers))])


BASE = layer(("/etc", "dir"), ("/etc/passwd", "other"), ("/usr", "dir"),
             ("/usr/local", "dir"), ("/usr/local/bin", "dir"), ("/tmp", "dir"),
             ("/home", "dir"), ("/home/app", "dir"), ("/bin", "dir"), ("/bin/sh", "other"))


def test_path_keys_are_stable_and_distinct() -> None:
    assert path_key("/tmp") == path_key("/tmp")
    assert path_key("/tmp") != path_key("/etc")
    assert 0 <= path_key("/tmp") < 2**64


@pytest.mark.parametrize(("target", "message"), [
    ("/tmp", "/tmp is a symlink to /etc; runc would mount on /etc instead"),
    ("/tmp/cache", "/tmp is a symlink to /etc; runc would mount on /etc/cache instead"),
])
def test_an_absolute_symlink_redirects_the_mount(target: str, message: str) -> None:
    tree = image(BASE, layer(("/tmp", "symlink", "/etc"), whiteouts=("/tmp",)))
    problem = tree.mount_target_problem(target)
    assert problem is not None
    assert problem.message == message
    assert (problem.path, problem.layer) == ("/tmp", "sha256:1")


def test_a_relative_symlink_resolves_inside_the_root() -> None:
    tree = image(BASE, layer(("/workspace", "symlink", "usr/local/bin")))
    problem = tree.mount_target_problem("/workspace")
    assert problem is not None and "runc would mount on /usr/local/bin" in problem.message
    # ".." never climbs above the image root, as securejoin clamps it.
    climbing = image(BASE, layer(("/workspace", "symlink", "../../../../etc")))
    assert climbing.resolve("/workspace") == "/etc"


def test_a_chain_of_symlinks_is_followed_to_its_end() -> None:
    tree = image(BASE, layer(("/tmp", "symlink", "/var/tmp"), ("/var", "dir"),
                             ("/var/tmp", "symlink", "../usr/local/bin")))
    assert tree.resolve("/tmp") == "/usr/local/bin"
    problem = tree.mount_target_problem("/tmp")
    assert problem is not None and problem.message.endswith("mount on /usr/local/bin instead")


def test_a_symlinked_parent_is_refused_and_a_loop_is_named() -> None:
    parent = image(BASE, layer(("/home/app", "symlink", "/etc")))
    problem = parent.mount_target_problem("/home/app/.cache")
    assert problem is not None and problem.path == "/home/app"
    assert parent.resolve("/home/app/.cache") == "/etc/.cache"
    loop = image(BASE, layer(("/a", "symlink", "/b"), ("/b", "symlink", "/a")))
    problem = loop.mount_target_problem("/a/x")
    assert problem is not None and "loop" in problem.message
    assert loop.resolve("/a") is None


def test_a_file_is_not_a_directory_and_a_directory_is_not_a_file() -> None:
    tree = image(BASE, layer(("/workspace", "other"), ("/srv", "dir"), ("/srv/key", "other")))
    problem = tree.mount_target_problem("/workspace")
    assert problem is not None and problem.message == "/workspace is not a directory"
    assert tree.mount_target_problem("/workspace/x") is not None  # a file as a parent
    assert tree.mount_target_problem("/srv/key", directory=False) is None
    directory = tree.mount_target_problem("/srv", directory=False)
    assert directory is not None and directory.message == "/srv is a directory, not a file"


def test_missing_targets_are_fine_because_runc_creates_them() -> None:
    tree = image(BASE)
    assert tree.mount_target_problem("/workspace") is None
    assert tree.mount_target_problem("/home/app/.cache/deep") is None
    assert tree.mount_target_problem("/tmp") is None


def test_a_whiteout_removes_a_lower_symlink() -> None:
    bad = layer(("/tmp", "symlink", "/etc"))
    fixed = layer(("/tmp", "dir"), whiteouts=("/tmp",))
    assert image(BASE, bad, fixed).mount_target_problem("/tmp") is None
    removed = layer(whiteouts=("/tmp",))
    assert image(BASE, bad, removed).lookup("/tmp") is None


def test_a_whiteout_then_the_same_folder_again_merges_with_what_is_below() -> None:
    # No opaque marker: the layer's new /home is a plain folder, merged by overlayfs.
    bad = layer(("/home/app/.cache", "symlink", "/etc"))
    remade = layer(("/home", "dir"), whiteouts=("/home",))
    assert image(BASE, bad, remade).mount_target_problem("/home/app/.cache") is not None
    assert image(BASE, bad, layer(whiteouts=("/home",))).lookup("/home/app") is None


def test_an_opaque_directory_hides_what_is_below_it() -> None:
    bad = layer(("/srv", "dir"), ("/srv/out", "symlink", "/etc"))
    opaque = layer(("/srv", "dir"), opaque=("/srv",))
    assert image(BASE, bad).mount_target_problem("/srv/out") is not None
    assert image(BASE, bad, opaque).mount_target_problem("/srv/out") is None
    # What the opaque layer itself adds below the directory still counts.
    again = layer(("/srv", "dir"), ("/srv/out", "symlink", "/etc"), opaque=("/srv",))
    assert image(BASE, bad, again).mount_target_problem("/srv/out") is not None


def test_a_file_replacing_a_directory_hides_its_lower_contents() -> None:
    lower = layer(("/srv", "dir"), ("/srv/out", "symlink", "/etc"))
    upper = layer(("/srv", "other"))
    tree = image(BASE, lower, upper)
    assert tree.lookup("/srv/out") is None
    problem = tree.mount_target_problem("/srv/out")
    assert problem is not None and problem.message == "/srv is not a directory"


def test_a_symlink_replacing_a_directory_hides_its_lower_contents() -> None:
    lower = layer(("/srv", "dir"), ("/srv/out", "dir"))
    upper = layer(("/srv", "symlink", "/etc"))
    assert image(BASE, lower, upper).lookup("/srv/out") is None


def test_the_last_entry_for_a_path_in_one_layer_wins() -> None:
    tree = LayerTree()
    tree.record("/tmp", "symlink", "/etc")
    tree.record("/tmp", "dir")
    assert image(BASE, tree).mount_target_problem("/tmp") is None
    tree.record("/tmp", "other")
    found = image(BASE, tree).lookup("/tmp")
    assert found is not None and found.kind == "other"
    assert tree.dirs == set() and tree.symlinks == {}


def test_target_spelling_is_normalised() -> None:
    tree = image(BASE, layer(("/tmp", "symlink", "/etc")))
    assert tree.mount_target_problem("//tmp/") is not None
    assert tree.mount_target_problem("/var/../tmp") is not None
