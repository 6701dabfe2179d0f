"""A JSON array of flat objects, imported like the rows of a CSV file (its keys are the columns).

Streamed (``JsonReader``), in memory that does not grow with the file, and read twice: the
first pass checks the file and collects the keys of all objects (the header, in the order they
first appear), the second hands out the rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipectl.errors import UsageError
from pipectl.transfer.json_reader import JsonReader


class JsonRows:
    """The rows of a JSON array of objects, with the interface of ``parsing.CsvSource``."""

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self._fh = path, fh
        self.problems: list[tuple[int, list[tuple[str, str]]]] = []  # as CsvSource's: none
        self.encoding = "utf-8"
        self.delimiter = None
        header: dict[str, None] = {}
        size = 0
        objects = True
        reader = JsonReader(fh, path)
        for item in reader.array():
            size += 1
            if isinstance(item, dict):
                header.update(dict.fromkeys(item))
            else:
                objects = False
        reader.end()
        if not objects:
            raise UsageError(f"{path}: a JSON array of deals must hold objects")
        self.count = size
        self.size = os.fstat(fh.fileno()).st_size  # bytes, as CsvSource's (BULK_BYTES, progress)
        self.header = list(header)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        header = self.header
        # "row N" of a bad-row report is the array's Nth object (as for pipectl's export)
        for number, item in enumerate(JsonReader(self._fh, self.path).array(), 1):
            if not isinstance(item, dict):
                raise UsageError(f"{self.path} changed while it was imported")
            yield number, ["" if item.get(h) is None else _text(item.get(h)) for h in header]

    def again(self) -> None:
        """``rows`` reads the file from its start each time."""

    def position(self) -> int:
        """Bytes read so far (by whole chunks of the reader)."""
        try:
            return min(self._fh.tell(), self.size)
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        pass


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)
