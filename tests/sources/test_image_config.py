"""sources/image_config.py: an image config decoded as Go's encoding/json decodes it.

tests/test_cli_identity.py loads a config with keys that differ only in case into
the real engine (``docker load``) and checks that the engine reads it this way.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paracle_guard.sources.go_json import go_fold
from paracle_guard.sources.image_config import (
    ConfigError,
    config_from_inspect,
    decode_image_config,
)


def decode(text: str) -> tuple[str, list[str], list[str]]:
    config = decode_image_config(text.encode())
    return config.user, config.volumes, config.problems + config.ambiguities


def test_keys_that_differ_in_case_are_one_field_and_the_last_wins() -> None:
    user, volumes, problems = decode(
        '{"config": {"User": "1000:1000", "user": "0", "Volumes": null, '
        '"volumes": {"/data": {}}}}')
    assert (user, volumes) == ("0", ["/data"])
    assert problems == [
        "image config: keys 'User', 'user' all set config.User; Go's JSON decoder, which "
        "the engine uses, matches keys case-insensitively and keeps the last ('user')",
        "image config: keys 'Volumes', 'volumes' all set config.Volumes; Go's JSON decoder, "
        "which the engine uses, matches keys case-insensitively and keeps the last ('volumes')",
    ]


def test_a_single_key_in_any_case_is_read() -> None:
    assert decode('{"CONFIG": {"uSeR": "0", "workingdir": "/w"}}')[0] == "0"
    assert decode_image_config(b'{"Config": {"WORKINGDIR": "/w"}}').working_dir == "/w"


def test_the_kelvin_sign_and_the_long_s_fold_to_ascii() -> None:
    # strings.EqualFold: U+017F is s, U+212A is k; nothing else folds to ASCII.
    user, _, problems = decode('{"config": {"u\u017fer": "0"}}')
    assert user == "0" and "folds it to that name" in problems[0]
    assert decode('{"config": {"u\u0455er": "0"}}')[0] == ""  # Cyrillic dze: no match
    assert go_fold("\u212aey") == go_fold("KEY")


def test_objects_decoded_again_merge_into_what_is_there() -> None:
    config = decode_image_config(
        b'{"config": {"User": "1000", "Env": ["A=1"], "Volumes": {"/a": {}}},'
        b' "config": {"Volumes": {"/b": {}}}}')
    # The second object sets only Volumes, which is a map: keys add up.
    assert (config.user, config.env, config.volumes) == ("1000", ["A=1"], ["/a", "/b"])
    reset = decode_image_config(b'{"config": {"User": "1000"}, "config": null}')
    assert reset.user == ""  # null resets the struct pointer


def test_null_leaves_a_string_and_a_later_list_replaces_the_earlier() -> None:
    config = decode_image_config(
        b'{"config": {"User": "1000", "user": null, "Env": ["A=1"], "env": ["B=2"]}}')
    assert (config.user, config.env) == ("1000", ["B=2"])


def test_an_entrypoint_is_a_list_or_one_string() -> None:
    # moby's strslice.StrSlice takes a JSON string as a list of one.
    assert decode_image_config(b'{"config": {"Entrypoint": "sh"}}').entrypoint == ["sh"]
    assert decode_image_config(b'{"config": {"entrypoint": ["a", "b"]}}').entrypoint == [
        "a", "b"]


def test_wrong_types_are_what_the_engine_refuses_to_load() -> None:
    _, _, problems = decode('{"config": {"User": 0, "Env": "A=1", "Volumes": ["/a"]}}')
    assert problems == [
        "image config: config.User is not a string, so the engine refuses to load this image",
        "image config: config.Env is not a list of strings, so the engine refuses to load "
        "this image",
        "image config: config.Volumes is not an object, so the engine refuses to load this "
        "image",
    ]


def test_os_rootfs_and_lone_surrogates() -> None:
    config = decode_image_config(
        b'{"os": "windows", "OS": "linux", "rootfs": {"type": "layers", '
        b'"DIFF_IDS": ["sha256:a"]}, "config": {"User": "\\ud800x"}}')
    assert (config.os, config.diff_ids) == ("linux", ["sha256:a"])
    assert config.user == "\ufffdx"  # as Go decodes a lone surrogate


@pytest.mark.parametrize("raw", [b"[]", b"{", b'{"config": NaN}', b"\xff"])
def test_not_an_object_the_engine_would_load(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        decode_image_config(raw)


def test_inspect_documents_are_already_decoded() -> None:
    document = {"Os": "linux", "Architecture": "amd64", "Config": {
        "User": "0", "Env": ["A=1"], "Volumes": {"/d": {}}, "ExposedPorts": {"22/tcp": {}},
        "WorkingDir": "/w"}, "RootFS": {"Layers": ["sha256:a"]}}
    config = config_from_inspect(document)
    assert (config.user, config.env, config.volumes, config.exposed_ports, config.working_dir,
            config.diff_ids) == ("0", ["A=1"], ["/d"], ["22/tcp"], "/w", ["sha256:a"])
    assert config_from_inspect({"Config": None}).user == ""


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["config", "Config", "User", "user", "Env", "Volumes", "volumes",
                         "rootfs", "diff_ids", "os", "WorkingDir", "ExposedPorts", "x"]),
        inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["config", "CONFIG", "os", "rootfs", "x"]), JSON,
                       max_size=4))
def test_decoding_any_object_never_raises(document: dict[str, object]) -> None:
    config = decode_image_config(json.dumps(document).encode())
    assert isinstance(config.user, str) and all(isinstance(e, str) for e in config.env)
