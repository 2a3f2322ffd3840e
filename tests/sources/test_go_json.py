"""Engine API bodies read as Go's encoding/json reads them, and refused where Go would merge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paracle_guard.sources.go_json import (
    CONFIG,
    EXEC_CONFIG,
    HOST_CONFIG,
    INT64,
    STR_SLICE,
    UINT16,
    GoJSONError,
    Map,
    Slice,
    decode,
    parse,
)


def host(raw: str) -> dict[str, Any]:
    return dict(decode(parse(raw.encode()), HOST_CONFIG))


def test_keys_match_fields_case_insensitively() -> None:
    assert host('{"privileged": true, "CAPADD": ["SYS_ADMIN"]}') == {
        "Privileged": True, "CapAdd": ["SYS_ADMIN"]}


def test_go_folds_the_long_s_and_the_kelvin_sign() -> None:
    # Go's equalFoldRight: U+017F matches s, U+212A matches k (fields with s or k only).
    assert host('{"\u017fecurityOpt": ["seccomp=unconfined"]}') == {
        "SecurityOpt": ["seccomp=unconfined"]}
    assert host('{"Lin\u212As": ["db"]}') == {"Links": ["db"]}
    # Other look-alikes are other keys, ignored as Go ignores unknown keys.
    assert host('{"Pr\u0131vileged": true}') == {}


def test_unknown_keys_are_ignored() -> None:
    assert host('{"Privileged": false, "NotAField": {"deep": [1, 2]}}') == {"Privileged": False}


@pytest.mark.parametrize("raw", [
    '{"Privileged": false, "privileged": true}',
    '{"Mounts": [{"Type": "bind"}], "mounts": [{"ReadOnly": false}]}',
    '{"Mounts": [{"Source": "/", "source": "/srv"}]}',
])
def test_a_field_named_twice_is_refused(raw: str) -> None:
    # Go lets the last scalar win but merges nested structs and slices in place.
    with pytest.raises(GoJSONError, match="both set"):
        host(raw)


def test_a_map_key_named_twice_is_refused() -> None:
    with pytest.raises(GoJSONError, match="twice"):
        host('{"Sysctls": {"kernel.x": "1", "kernel.x": "2"}}')
    # Map keys are case-sensitive in Go: these are two keys.
    assert host('{"Sysctls": {"a": "1", "A": "2"}}') == {"Sysctls": {"a": "1", "A": "2"}}


def test_only_the_first_json_value_is_read() -> None:
    # json.Decoder.Decode stops after one value; the engine never reads the rest.
    assert parse(b'  {"User": "1000"} {"User": "0"} garbage') is not None
    assert decode(parse(b'{"User": "1000"} {"User": "0"}'), CONFIG) == {"User": "1000"}


@pytest.mark.parametrize("raw", [
    b"\xef\xbb\xbf{}",  # Go does not skip a byte-order mark
    b'{"Memory": NaN}',
    b'{"Memory": Infinity}',
    b"{'User': 'x'}",
    b"",
    b'{"User": "\xff"}',  # not UTF-8
    b"[" * 5000,
])
def test_what_go_cannot_read_is_refused(raw: bytes) -> None:
    with pytest.raises(GoJSONError):
        parse(raw)


@pytest.mark.parametrize(("raw", "kind"), [
    ('{"Memory": 1.0}', "integer"),
    ('{"Memory": 1e9}', "integer"),
    ('{"Memory": "512m"}', "integer"),
    ('{"Memory": true}', "integer"),
    ('{"Memory": 9223372036854775808}', "out of range"),
    ('{"BlkioWeight": -1}', "out of range"),
    ('{"Privileged": "true"}', "bool"),
    ('{"Privileged": 1}', "bool"),
    ('{"Binds": "/:/host"}', r"\[\]string"),
    ('{"Tmpfs": ["/tmp"]}', "map"),
])
def test_values_of_the_wrong_type_are_refused(raw: str, kind: str) -> None:
    with pytest.raises(GoJSONError, match=kind):
        host(raw)


def test_integer_bounds_follow_the_go_type() -> None:
    assert decode(parse(b"9223372036854775807"), INT64) == (1 << 63) - 1
    assert decode(parse(b"65535"), UINT16) == 65535
    with pytest.raises(GoJSONError):
        decode(parse(b"65536"), UINT16)


def test_a_strslice_takes_a_string_as_a_list_of_one() -> None:
    assert decode(parse(b'"SYS_ADMIN"'), STR_SLICE) == ["SYS_ADMIN"]
    assert host('{"CapAdd": "SYS_ADMIN"}') == {"CapAdd": ["SYS_ADMIN"]}
    assert decode(parse(b"null"), STR_SLICE) is None
    with pytest.raises(GoJSONError):
        decode(parse(b'[1]'), STR_SLICE)


def test_null_is_nil_or_the_zero_value() -> None:
    assert host('{"Privileged": null, "MaskedPaths": null, "PidsLimit": null}') == {
        "Privileged": None, "MaskedPaths": None, "PidsLimit": None}
    # An empty list is not nil: MaskedPaths [] unmasks everything.
    assert host('{"MaskedPaths": []}') == {"MaskedPaths": []}


def test_lone_surrogates_become_the_replacement_character() -> None:
    decoded = decode(parse(b'{"User": "\\ud800x"}'), EXEC_CONFIG)
    assert decoded == {"User": "\ufffdx"}


def test_nested_structs_and_pointers() -> None:
    decoded = host(json.dumps({"Mounts": [{
        "type": "volume", "target": "/h",
        "volumeoptions": {"driverconfig": {"name": "local",
                                           "options": {"device": "/", "o": "bind"}}},
    }]}))
    assert decoded["Mounts"][0]["VolumeOptions"]["DriverConfig"] == {
        "Name": "local", "Options": {"device": "/", "o": "bind"}}


def test_slices_and_maps_of_kinds() -> None:
    assert decode(parse(b'{"a": ["x"]}'), Map(Slice(STR_SLICE))) == {"a": [["x"]]}
