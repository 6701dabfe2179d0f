"""Reading pipectl's JSON export: the export object, its "deals" array streamed one deal at a
time (``JsonReader``), in memory that does not grow with the file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipectl.errors import UsageError
from pipectl.transfer.formats import FORMAT
from pipectl.transfer.json_reader import JsonReader


class JsonExport:
    """pipectl's export object, its "deals" array streamed one deal at a time.

    The object's other members are read on the way (the format number may come before or
    after the deals). As with ``json.load``, a key given twice counts once, with its last
    value: when a later "deals" turns up, ``again()`` asks for a new pass that streams it; so
    does a format number, read after the deals, that is not the one they were read as.
    """

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self.fh = path, fh
        self.size = path.stat().st_size
        self.target = 1  # which "deals" member is streamed
        self.is_object = self.is_list = False
        self.found = 0
        self.version: Any = FORMAT  # the file's format number, as far as read
        self._assumed: Any = FORMAT  # what it is taken for until its member is read
        self.read_as: Any = None  # the format number when the deals were read

    def deals(self) -> Iterator[tuple[int, Any]]:
        reader = JsonReader(self.fh, self.path)
        self.is_object = reader.first() == "{"
        self.is_list = False
        self.found = 0
        self.version, self.read_as = self._assumed, None
        if not self.is_object:
            reader.value()
        else:
            for key in reader.members():
                if key == "deals":
                    self.found += 1
                    self.is_list = reader.peek() == "["
                    if self.is_list and self.found == self.target:
                        self.read_as = self.version
                        yield from enumerate(reader.array(), 1)  # "row N": the Nth deal
                    else:
                        reader.skip()
                elif key == "pipectl_export":
                    self.version = reader.value()
                else:
                    reader.skip()
        reader.end()

    def check(self) -> None:
        """After a whole pass: the file is an export this pipectl reads."""
        path, version = self.path, self.version
        if not (self.is_object and self.found and self.is_list):
            raise UsageError(
                f"{path} is neither a pipectl export nor a JSON array of deals",
                hint="pipectl export --format json --events makes one",
            )
        if not isinstance(version, int) or isinstance(version, bool):
            raise UsageError(
                f"{path}: 'pipectl_export' should be a format number, not {version!r}"
            )
        if version > FORMAT:
            raise UsageError(f"{path} was exported by a newer pipectl", hint="upgrade pipectl")
        if version < 1:
            raise UsageError(f"{path}: 'pipectl_export' {version} is no format of pipectl's")

    def prepare(self, conn: sqlite3.Connection) -> None:
        pass

    def finish(self, conn: sqlite3.Connection) -> None:
        pass

    def again(self) -> bool:
        if self.found > self.target:
            self.target = self.found
            return True
        if self.read_as is not None and self.version != self.read_as:
            self._assumed = self.version  # the deals came before it: read them again as it says
            return True
        return False
