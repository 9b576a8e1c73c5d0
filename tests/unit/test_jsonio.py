"""The controller's JSON: fast where orjson can, never failing where the standard library can."""

from __future__ import annotations

import json

import pytest

from pythonapp_operator.controller import jsonio


def test_sorted_compact_and_equal_to_the_standard_library_on_ascii() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "x", "y": {}}}
    assert jsonio.dumps_sorted(value) == b'{"a":{"y":{},"z":"x"},"b":[1,2.5,null,true]}'
    assert (
        jsonio.dumps_sorted(value)
        == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    )


def test_an_integer_beyond_64_bits_is_written_by_the_standard_library() -> None:
    assert jsonio.dumps_sorted({"replicas": 2**70}) == b'{"replicas":1180591620717411303424}'


def test_what_orjson_refuses_to_parse_is_parsed_by_the_standard_library() -> None:
    assert jsonio.loads('{"a": "\\ud83d"}') == {"a": "\ud83d"}  # a lone surrogate escape
    assert jsonio.loads(b'{"n": 1e400}') == {"n": float("inf")}


def test_invalid_json_raises_what_json_raises() -> None:
    with pytest.raises(json.JSONDecodeError):
        jsonio.loads(b'{"a": ')


@pytest.mark.parametrize("data", [b'{"a": 1}', bytearray(b'{"a": 1}'), '{"a": 1}'])
def test_bytes_and_text_alike(data: bytes | bytearray | str) -> None:
    assert jsonio.loads(data) == {"a": 1}
