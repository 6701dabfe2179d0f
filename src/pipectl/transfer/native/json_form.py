"""Reading pipectl's JSON export: the export object, its "deals" array streamed one deal at a
time (``JsonReader``), in memory that does not grow with the file; and its "pipelines", the
definitions of the pipelines its deals name (small: read whole when met before the deals)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from pipectl.domain.pipeline import Pipeline, fold_name
from pipectl.domain.rates import Rate
from pipectl.errors import UsageError
from pipectl.transfer.formats import FORMAT
from pipectl.transfer.json_reader import JsonReader


class JsonExport:
    """pipectl's export object, its "deals" array streamed one deal at a time.

    The object's other members are read on the way (the format number may come before or
    after the deals). As with ``json.load``, a key given twice counts once, with its last
    value: when a later "deals" turns up, ``again()`` asks for a new pass that streams it; so
    does a format number, read after the deals, that is not the one they were read as. The
    "pipelines" member is read only when it comes before the deals streamed (as export writes
    it); after them it is skipped.
    """

    def __init__(self, path: Path, fh: BinaryIO) -> None:
        self.path, self.fh = path, fh
        self.size = os.fstat(fh.fileno()).st_size  # path names the file in messages only
        self.target = 1  # which "deals" member is streamed
        self.is_object = self.is_list = False
        self.found = 0
        self.version: Any = FORMAT  # the file's format number, as far as read
        self._assumed: Any = FORMAT  # what it is taken for until its member is read
        self.read_as: Any = None  # the format number when the deals were read
        self.pipelines: dict[str, dict[str, Any]] = {}  # name -> its member of "pipelines"
        self.rates: list[Rate] = []  # its "rates", when they come before the deals

    def deals(self) -> Iterator[tuple[int, Any]]:
        reader = JsonReader(self.fh, self.path)
        self.is_object = reader.first() == "{"
        self.is_list = False
        self.found = 0
        self.version, self.read_as = self._assumed, None
        self.pipelines = {}
        self.rates = []
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
                elif key == "pipelines" and self.read_as is None:
                    self.pipelines = self._pipelines(reader.value())
                elif key == "rates" and self.read_as is None:
                    self.rates = rates_of(self.path, reader.value())
                else:
                    reader.skip()
        reader.end()

    def _pipelines(self, value: Any) -> dict[str, dict[str, Any]]:
        """The "pipelines" member by name, its shape checked (each definition is checked
        when it is used, ``definition``)."""
        bad = UsageError(
            f"{self.path}: 'pipelines' should be a list of {{\"name\": ..., \"default\": ..., "
            "\"definition\": {...}}, as pipectl export writes it",
        )
        if not isinstance(value, list):
            raise bad
        out: dict[str, dict[str, Any]] = {}
        for item in value:
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and item["name"].strip()):
                raise bad
            out.setdefault(item["name"], item)
        return out

    def definition(self, name: str) -> Pipeline | None:
        """The pipeline called ``name`` as the file defines it (exactly, else folded), read
        in the pass so far; None when the file has no definition of it. A definition that is
        not one pipectl could store (the checks of a TOML definition) is a bad file."""
        item = self.pipelines.get(name)
        if item is None:
            found = [v for k, v in self.pipelines.items() if fold_name(k) == fold_name(name)]
            item = found[0] if len(found) == 1 else None
        return None if item is None else defined(self.path, item["name"], item.get("definition"))

    def history(self, name: str) -> list[tuple[str, Pipeline]]:
        """Every version of pipeline ``name`` the file carries, oldest first, each with the
        moment it came into force ([] when the file has none: an older export). Checked as
        ``definition`` checks one; moments must be ISO UTC times in order."""
        from pipectl.values import from_iso

        item = self.pipelines.get(name)
        if item is None:
            found = [v for k, v in self.pipelines.items() if fold_name(k) == fold_name(name)]
            item = found[0] if len(found) == 1 else None
        versions = None if item is None else item.get("versions")
        if not versions:
            return []
        bad = UsageError(f"{self.path}: the versions of pipeline {item['name']!r} should be a "
                         "list of {\"version\": N, \"at\": TIME, \"definition\": {...}} in "
                         "order, as pipectl export writes them; nothing was imported")
        if not isinstance(versions, list):
            raise bad
        out: list[tuple[str, Pipeline]] = []
        for v in versions:
            if not (isinstance(v, dict) and isinstance(v.get("at"), str)):
                raise bad
            try:
                at = from_iso(v["at"]).strftime("%Y-%m-%dT%H:%M:%SZ")
            except (ValueError, UsageError):
                raise bad from None
            if out and at < out[-1][0]:
                raise bad
            out.append((at, defined(self.path, item["name"], v.get("definition"))))
        return out

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


def rates_of(path: Path, value: Any) -> list[Rate]:
    """The "rates" member: every exchange rate row of the exporting database, each checked
    (codes, moments, an exact positive decimal or null); else one UsageError for the file."""
    from pipectl.domain.rates import parse_rate
    from pipectl.values import currency_code, from_iso, iso

    def bad(why: str) -> UsageError:
        return UsageError(
            f"{path}: 'rates' should be a list of {{\"from\", \"to\", \"at\", \"rate\", "
            f"\"recorded_at\"}}, as pipectl export writes it ({why}); nothing was imported")

    if not isinstance(value, list):
        raise bad("it is not a list")
    out: list[Rate] = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("from", "to", "at", "recorded_at")):
            raise bad(f"rate {n} is not such an object")
        rate = item.get("rate")
        if rate is not None and not isinstance(rate, str):
            raise bad(f"rate {n}: the rate is not decimal text")
        try:
            source, target = currency_code(item["from"]), currency_code(item["to"])
            at, recorded = iso(from_iso(item["at"])), iso(from_iso(item["recorded_at"]))
            text = None if rate is None else parse_rate(rate)
        except (UsageError, ValueError) as exc:
            raise bad(f"rate {n}: {getattr(exc, 'message', exc)}") from None
        if source == target:
            raise bad(f"rate {n} converts {source} into itself")
        out.append(Rate(source, target, at, text, recorded))
    return out


def defined(path: Path, name: str, doc: Any) -> Pipeline:
    """The pipeline ``name`` from its definition in the file (the object of
    ``domain.pipeline.to_json``), checked as ``pipectl pipeline apply`` checks a TOML file;
    else one UsageError line that names it."""
    import json
    import re
    from dataclasses import replace

    from pipectl.domain import pipeline_file
    from pipectl.domain.pipeline import from_json

    def bad(why: str) -> UsageError:
        return UsageError(
            f"{path}: the file's definition of pipeline {name!r} is not valid: {why}; "
            "nothing was imported",
            hint=f"give the database the pipeline first (pipectl pipeline apply FILE), or "
            f"export {name!r} again",
        )

    if not isinstance(doc, dict):
        raise bad("its 'definition' is not an object")
    try:
        made = from_json(json.dumps(doc))
    except (ValueError, OverflowError) as exc:
        raise bad(str(exc)) from None
    # a removed pipeline is exported under its stored name ("X (removed ...)"), its
    # definition under the name it had
    made = replace(made, name=name)
    source = "definition"
    try:
        return pipeline_file.parse(pipeline_file.dump(made), source=source)
    except UsageError as exc:
        problems = [re.sub(rf"^{source}:\d+: ", "", line) for line in (exc.message, *exc.more)]
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise bad(problems[0] + more) from None
