"""The streaming JSON reader: the same values and the same errors as json.loads, whatever the
size of the pieces it reads (every element may straddle a piece boundary)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from pipectl.errors import UsageError
from pipectl.transfer.json_reader import JsonReader

TRICKY = [
    {"name": "a ] b", "company": "x, y", "note": 'say "hi" ] [ { } ,'},
    {"nested": {"list": [1, [2, [3, {"deep": "]"}]], {}], "empty": {}}, "e": []},
    {"esc": "back\\slash \" quote \\\" both \n newline \t tab \u00e9 😀 \u0000"},
    {"esc": "😀 \u00e9 \u2028 ] \\u005d"},
    {"numbers": [0, -0, 1.5e-3, -2E+10, 12345678901234567890, 3.14159]},
    {"lit": [True, False, None]},
    "a string element ] with , commas",
    12.5,
    [],
    {},
    {"Zoë Ångström": "Nguyễn Văn An", "日本": "東京 ] ,"},
]


def _text() -> str:
    # the dumps of TRICKY with ASCII escapes, raw unicode and odd white space mixed
    parts = [json.dumps(x, ensure_ascii=i % 2 == 0) for i, x in enumerate(TRICKY)]
    return "\r\n [\t" + " ,\n\t ".join(parts) + "  \n]\n\n"


def _walk(reader: JsonReader) -> Any:
    """The whole document through the reader's streaming calls."""
    if reader.first() == "[":
        out: Any = list(reader.array())
    elif reader.first() == "{":
        out = {}
        for key in reader.members():
            out[key] = list(reader.array()) if reader.peek() == "[" else reader.value()
    else:
        out = reader.value()
    reader.end()
    return out


def _read(data: bytes, chunk: int) -> Any:
    return _walk(JsonReader(io.BytesIO(data), "f.json", chunk=chunk))


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 7, 16, 64, 1 << 20])
def test_elements_equal_json_loads_at_any_piece_size(chunk: int) -> None:
    data = _text().encode("utf-8")
    assert _read(data, chunk) == json.loads(data) == TRICKY


@pytest.mark.parametrize("text", [
    "[]", " [ ] ", "{}", '{"deals": []}', "0", '"just a string"', "null", "[[]]",
    '{"a": 1, "deals": [{"x": "]"}], "b": {"c": [1, 2]}}', "-1.25e+3", "[1e5, 2.5E-2]",
    "[123456789012345678901234567890]",
])
@pytest.mark.parametrize("chunk", [1, 4, 1 << 20])
def test_small_and_empty_documents(text: str, chunk: int) -> None:
    assert _read(text.encode(), chunk) == json.loads(text)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_encodings_found_as_json_loads_finds_them(encoding: str) -> None:
    data = _text().encode(encoding)
    assert _read(data, 3) == json.loads(data) == TRICKY


@pytest.mark.parametrize("text", [
    "", "   ", "[", "[1", "[1,", "[1,]", "[1 2]", "[1]x", '{"a" 1}', '{"a": 1,}', "{1: 2}",
    '["abc', '["ab\\', '["\\u12', "[tru", "[1.]", '{"deals": [1, 2', '{"deals": [1]] }',
    '[{"name": "A"}, {"name": "B"', '{"a": "x"} {"b": 1}', "[1]\n\n  ,", '["a\nb"]',
    "[01]", "[-]", '{"x": [1, 2]', '{"x"', '{"x":',
])
@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_errors_say_what_json_loads_says(text: str, chunk: int) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(UsageError) as got:
        _read(text.encode(), chunk)
    assert got.value.message == f"f.json is not valid JSON ({expected.value})"


def test_a_file_cut_short_is_one_usage_error() -> None:
    data = _text().encode("utf-8")
    for cut in range(1, len(data) - 4, 7):
        with pytest.raises(UsageError) as got:
            _read(data[:cut], 5)
        assert "is not valid JSON" in got.value.message and "\n" not in got.value.message


def test_bad_bytes_and_deep_nesting_are_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"not valid JSON .*can't decode"):
        _read(b'[{"name": "\xff"}]', 4)
    with pytest.raises(UsageError, match="nested too deeply"):
        _read(b"[" + b"[" * 100_000 + b"]" * 100_000 + b"]", 1 << 20)


def test_memory_holds_about_one_piece_not_the_file() -> None:
    element = json.dumps({"name": "x" * 100, "events": [{"kind": "note"}] * 5})
    data = ("[" + ",".join([element] * 5000) + "]").encode()  # ~1.7 MB
    reader = JsonReader(io.BytesIO(data), "f.json", chunk=4096)
    biggest = 0
    count = 0
    for _ in reader.array():
        count += 1
        biggest = max(biggest, len(reader.buf))
    assert count == 5000
    assert biggest < 3 * 4096
