"""A pipeline as text: the TOML a user writes, the JSON the store keeps, and what changed.

``parse`` reads a user's TOML definition (``pipectl pipeline apply``) into a ``Pipeline``. It
collects every problem of the file and raises one ``UsageError`` that lists them, one per line,
as ``{source}:{line}: {problem}``. tomllib gives no line numbers, so ``_positions`` scans the
text once more for the line of every key, table and array item.

``dump`` writes a pipeline back as TOML (one inline table per stage, only the fields that
differ from their defaults); ``parse(dump(p)) == p``. ``to_json`` / ``from_json`` are the
canonical compact form a database stores. ``diff`` lists the changes from one pipeline to
another, one human line each.

Pure: text in, values out; no I/O.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# The stored (JSON) form lives beside the value: every command reads it, few read TOML.
from pipectl.domain.pipeline import (  # noqa: F401
    DEFAULT,
    DEFAULT_ROT_DAYS,
    KINDS,
    LOST,
    Pipeline,
    StageDef,
    fold_name,
    from_json,
    to_json,
)
from pipectl.errors import UsageError

TOP_KEYS = ("name", "checklist", "checklist_descriptions", "stages")
STAGE_KEYS = (
    "key", "label", "kind", "probability", "rot_days", "gate", "skippable",
    "action", "meaning", "leaves_when", "aliases",
)
GATE = "checklist"  # the only gate there is: the pipeline's qualification checklist
MAX_KEY = 40
_KEY = re.compile(r"[a-z][a-z0-9_]*\Z")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_ORDER = "open stages come first, then the won stage, then after_won stages"

# What diff reports, in this order for one stage.
CHANGE_KINDS = (
    "name", "checklist", "removed", "added", "reordered", "renamed", "kind", "probability",
    "rot_days", "gate", "skippable", "aliases", "action", "meaning", "leaves_when",
)


def default_label(key: str) -> str:
    """The label of a stage that names none: its key with spaces, capitalised."""
    text = key.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


# ====================================================================== parse


def parse(text: str, source: str = "pipeline.toml") -> Pipeline:
    """The pipeline a TOML definition describes; every problem of it in one ``UsageError``."""
    import tomllib  # only a definition being applied needs it (start-up: docs/performance.md)

    text = text.removeprefix("\ufeff")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{source}:{_error_line(str(e), text)}: {e}") from None
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply to be a pipeline") from None
    try:
        reader = _Reader(_positions(text))
        pipeline = reader.pipeline(data)
    except RecursionError:
        raise UsageError(f"{source}: nested too deeply to be a pipeline") from None
    if pipeline is None:
        problems = sorted(reader.problems, key=lambda p: p[0])
        said = [f"{source}:{line}: {text}" for line, text in problems]
        raise UsageError(said[0], more=tuple(said[1:]))
    return pipeline


def _error_line(message: str, text: str) -> int:
    found = re.search(r"at line (\d+)", message)
    if found:
        return int(found.group(1))
    return max(1, len(text.splitlines()))  # "(at end of document)"


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


MAX_NAME = 200  # characters in a pipeline's name, a label, an alias, a criterion
MAX_TEXT = 2000  # in an action, a meaning, a description (as in every text of a deal)
MAX_STAGES = 100  # "a typical pipeline has 4 to 10": far beyond any real one
# Characters that change how a terminal shows what follows, or show nothing at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_INVISIBLE = re.compile(r"[\s\u200b-\u200f\u2060\ufeff]")


def _bad_text(text: str, most: int) -> str | None:
    """Why a (cleaned) text of a definition may not be used, or None."""
    if _CONTROL.search(text):
        return "contains a control character"
    if len(text) > most:
        return f"is too long ({len(text)} characters; at most {most})"
    if not _INVISIBLE.sub("", text):
        return "shows nothing (only invisible characters)"
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _what(value: Any) -> str:
    """A value as a type error names it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text {value!r}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a date or time ({value})"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


@dataclass
class _Draft:
    """One stage as read, valid or not: what the whole-line checks need."""

    n: int  # 1-based position in the file
    pos: _Pos
    key: str | None
    kind: str | None  # None when the kind was invalid
    gate: bool
    names: list[tuple[str, str, int]]  # (what, text, line): key, label, aliases
    stage: StageDef | None  # None when the stage had a problem

    @property
    def who(self) -> str:
        return f"stage {self.key!r}" if self.key else f"stage {self.n}"


class _Reader:
    def __init__(self, root: _Pos) -> None:
        self.root = root
        self.problems: list[tuple[int, str]] = []
        self.has_checklist = False  # a non-empty checklist was given (a gate may use it)

    def problem(self, line: int, text: str) -> None:
        self.problems.append((line, text))

    def pipeline(self, data: dict[str, Any]) -> Pipeline | None:
        root = self.root
        self.unknown(data, root, TOP_KEYS, "")
        name = ""
        if "name" not in data:
            self.problem(1, 'no name: add name = "..." at the top')
        elif not isinstance(data["name"], str):
            self.problem(root.line_of("name"), f"name must be text, not {_what(data['name'])}")
        elif not _clean(data["name"]):
            self.problem(root.line_of("name"), "name is empty")
        elif why := _bad_text(_clean(data["name"]), MAX_NAME):
            self.problem(root.line_of("name"), f"name {why}")
        else:
            name = _clean(data["name"])
        checklist = self.checklist(data)
        descriptions = self.descriptions(data, checklist)
        line = self.stages(data)
        if self.problems:
            return None
        return Pipeline.of(name, line, checklist, descriptions=descriptions)

    def unknown(self, table: dict[str, Any], pos: _Pos, known: tuple[str, ...], who: str
                ) -> None:
        for key in table:
            if key in known:
                continue
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            if close:
                hint = f" (did you mean {close[0]!r}?)"
            else:
                hint = f" (known keys: {', '.join(known)})"
            self.problem(pos.line_of(key), f"{who}unknown key {key!r}{hint}")

    # ------------------------------------------------------------ checklist

    def checklist(self, data: dict[str, Any]) -> tuple[str, ...]:
        if "checklist" not in data:
            return ()
        value, pos = data["checklist"], self.root.child("checklist")
        if not isinstance(value, list):
            self.problem(pos.line, f"checklist must be a list of texts, not {_what(value)}")
            return ()
        self.has_checklist = bool(value)
        out: list[str] = []
        for i, item in enumerate(value):
            line = pos.item(i).line
            if not isinstance(item, str):
                self.problem(line, f"checklist: criterion {i + 1} must be text, not {_what(item)}")
                continue
            criterion = _clean(item)
            if not criterion:
                self.problem(line, f"checklist: criterion {i + 1} is empty")
            elif why := _bad_text(criterion, MAX_NAME):
                self.problem(line, f"checklist: criterion {i + 1} {why}")
            elif criterion in out:
                self.problem(line, f"checklist: {criterion!r} is listed twice")
            else:
                out.append(criterion)
        return tuple(out)

    def descriptions(self, data: dict[str, Any], checklist: tuple[str, ...]
                     ) -> tuple[tuple[str, str], ...]:
        if "checklist_descriptions" not in data:
            return ()
        value, pos = data["checklist_descriptions"], self.root.child("checklist_descriptions")
        if not isinstance(value, dict):
            self.problem(pos.line, "checklist_descriptions must be a table (criterion = text), "
                                   f"not {_what(value)}")
            return ()
        out: dict[str, str] = {}
        for raw, text in value.items():
            line, criterion = pos.line_of(raw), _clean(raw)
            if criterion not in checklist:
                self.problem(line, f"checklist_descriptions: {criterion!r} is not in the checklist")
            elif criterion in out:
                self.problem(line, f"checklist_descriptions: {criterion!r} is described twice")
            elif not isinstance(text, str):
                self.problem(line, f"checklist_descriptions: the description of {criterion!r} "
                                   f"must be text, not {_what(text)}")
            elif not _clean(text):
                self.problem(line, f"checklist_descriptions: the description of {criterion!r} "
                                   "is empty (leave it out instead)")
            elif why := _bad_text(_clean(text), MAX_TEXT):
                self.problem(line, f"checklist_descriptions: the description of {criterion!r} "
                                   f"{why}")
            else:
                out[criterion] = _clean(text)
        return tuple(out.items())

    # ------------------------------------------------------------ stages

    def stages(self, data: dict[str, Any]) -> list[StageDef]:
        if "stages" not in data:
            self.problem(1, "no stages: add stages = [ { key = ..., ... }, ... ]")
            return []
        value, pos = data["stages"], self.root.child("stages")
        if not isinstance(value, list):
            self.problem(pos.line, f"stages must be a list of tables, not {_what(value)}")
            return []
        if len(value) > MAX_STAGES:
            self.problem(pos.line, f"{len(value)} stages: at most {MAX_STAGES}")
            return []
        drafts: list[_Draft] = []
        for i, raw in enumerate(value):
            if isinstance(raw, dict):
                drafts.append(self.stage(i + 1, raw, pos.item(i)))
            else:
                self.problem(pos.item(i).line, f"stage {i + 1} must be a table, not {_what(raw)}")
        self.line_checks(drafts, pos.line)
        return [d.stage for d in drafts if d.stage is not None]

    def stage(self, n: int, raw: dict[str, Any], pos: _Pos) -> _Draft:
        before = len(self.problems)
        key: str | None = None
        if "key" not in raw:
            self.problem(pos.line, f"stage {n} has no key")
        else:
            key = self.stage_key(n, raw["key"], pos.line_of("key"))
        draft = _Draft(n, pos, key, "open", False, [], None)
        who = draft.who
        self.unknown(raw, pos, STAGE_KEYS, f"{who}: ")
        if key:
            draft.names.append(("key", key, pos.line_of("key")))

        def text(name: str) -> str:
            if name not in raw:
                return ""
            if not isinstance(raw[name], str):
                self.problem(pos.line_of(name), f"{who}: {name} must be text, "
                                                f"not {_what(raw[name])}")
                return ""
            cleaned = _clean(raw[name])
            why = _bad_text(cleaned, MAX_NAME if name == "label" else MAX_TEXT) if cleaned \
                else None
            if why:
                self.problem(pos.line_of(name), f"{who}: {name} {why}")
                return ""
            return cleaned

        kind = raw.get("kind", "open")
        if not (isinstance(kind, str) and kind in KINDS):
            self.problem(pos.line_of("kind"), f"{who}: kind must be one of {', '.join(KINDS)}, "
                                              f"not {_what(kind)}")
            draft.kind = None
        else:
            draft.kind = kind

        label = default_label(key) if key else ""
        if "label" in raw:
            label = text("label")
            if isinstance(raw["label"], str) and not _clean(raw["label"]):
                self.problem(pos.line_of("label"), f"{who}: label is empty")
            elif label:
                draft.names.append(("label", label, pos.line_of("label")))
        # (a default label folds to the key: the key stands for it in the collision checks)

        probability = 0 if draft.kind in ("open", None) else 100
        if "probability" in raw:
            value, line = raw["probability"], pos.line_of("probability")
            if not _is_int(value):
                self.problem(line, f"{who}: probability must be an integer from 0 to 100, "
                                   f"not {_what(value)}")
            elif not 0 <= value <= 100:
                self.problem(line, f"{who}: probability {value} is outside 0-100")
            elif draft.kind in ("won", "after_won") and value != 100:
                self.problem(line, f"{who}: the probability of {_a(draft.kind)} stage is 100, "
                                   f"not {value} (leave it out)")
            else:
                probability = value
        elif draft.kind == "open":
            self.problem(pos.line, f"{who}: no probability (an integer from 0 to 100, "
                                   "required for an open stage)")

        rot_days = None
        if "rot_days" in raw:
            value, line = raw["rot_days"], pos.line_of("rot_days")
            if not _is_int(value):
                self.problem(line, f"{who}: rot_days must be a positive integer (days), "
                                   f"not {_what(value)}")
            elif value < 1:
                self.problem(line, f"{who}: rot_days must be at least 1, not {value}")
            else:
                rot_days = value

        if "gate" in raw:
            value, line = raw["gate"], pos.line_of("gate")
            if value != GATE:
                self.problem(line, f'{who}: gate must be "{GATE}", not {_what(value)}')
            elif draft.kind not in ("open", None):
                self.problem(line, f"{who}: only an open stage may be the gate, "
                                   f"not {_a(draft.kind)} stage")
            elif not self.has_checklist:
                self.problem(line, f"{who}: a gate needs a checklist: add checklist = [...] "
                                   "with the criteria a deal must meet to pass it")
            else:
                draft.gate = True

        skippable = False
        if "skippable" in raw:
            value, line = raw["skippable"], pos.line_of("skippable")
            if not isinstance(value, bool):
                self.problem(line, f"{who}: skippable must be true or false, not {_what(value)}")
            elif value and draft.kind not in ("open", None):
                self.problem(line, f"{who}: only an open stage may be skippable, "
                                   f"not {_a(draft.kind)} stage")
            elif value and raw.get("gate") == GATE:
                self.problem(line, f"{who}: the gate stage cannot be skippable "
                                   "(a deal passes it only once qualified)")
            else:
                skippable = value

        aliases: list[str] = []
        if "aliases" in raw:
            value, apos = raw["aliases"], pos.child("aliases")
            if not isinstance(value, list):
                self.problem(apos.line, f"{who}: aliases must be a list of texts, "
                                        f"not {_what(value)}")
                value = []
            for i, alias in enumerate(value):
                line = apos.item(i).line
                if not isinstance(alias, str):
                    self.problem(line, f"{who}: alias {i + 1} must be text, not {_what(alias)}")
                elif not _clean(alias):
                    self.problem(line, f"{who}: alias {i + 1} is empty")
                elif why := _bad_text(_clean(alias), MAX_NAME):
                    self.problem(line, f"{who}: alias {i + 1} {why}")
                else:
                    aliases.append(_clean(alias))
                    draft.names.append(("alias", aliases[-1], line))

        action, meaning, leaves_when = text("action"), text("meaning"), text("leaves_when")
        if len(self.problems) == before and key and draft.kind:
            draft.stage = StageDef(
                key, label, kind=draft.kind, probability=probability, rot_days=rot_days,
                gate=draft.gate, skippable=skippable, action=action, aliases=tuple(aliases),
                meaning=meaning, leaves_when=leaves_when,
            )
        return draft

    def stage_key(self, n: int, value: Any, line: int) -> str | None:
        if not isinstance(value, str):
            self.problem(line, f"stage {n}: key must be text, not {_what(value)}")
            return None
        key = _clean(value)
        if key == LOST:
            self.problem(line, f"stage {n}: key {LOST!r} is reserved: "
                               "lost is the terminal state every pipeline has")
        elif len(key) > MAX_KEY:
            self.problem(line, f"stage {n}: key {key!r} is longer than {MAX_KEY} characters")
        elif not _KEY.match(key):
            self.problem(line, f"stage {n}: key {key!r} must be lowercase letters, digits and "
                               "'_', starting with a letter")
        else:
            return key
        return None

    def line_checks(self, drafts: list[_Draft], stages_line: int) -> None:
        """What is wrong with the line as a whole: duplicates, colliding names, kinds, order."""
        first: dict[str, _Draft] = {}
        for d in drafts:
            if d.key in first:
                other = first[d.key]
                self.problem(d.pos.line_of("key"), f"duplicate stage {d.key!r} (stage {other.n} "
                                                   f"at line {other.pos.line} has the same key)")
            elif d.key:
                first[d.key] = d

        lost = DEFAULT.stage(LOST)
        owners: dict[str, tuple[_Draft | None, str, str]] = {}
        for what, name in [("key", lost.key), ("label", lost.label)] + [
                ("alias", a) for a in lost.aliases]:
            owners.setdefault(fold_name(name), (None, what, name))
        for d in drafts:
            for what, name, line in d.names:
                folded = fold_name(name)
                owner, owner_what, owner_name = owners.get(folded, (d, "", ""))
                if owner is None:
                    self.problem(line, f"{d.who}: {what} {name!r} is also the {owner_what} "
                                       f"{owner_name!r} of {LOST!r}, the terminal state every "
                                       "pipeline has")
                elif owner is not d and not (d.key and owner.key == d.key):
                    self.problem(line, f"{d.who}: {what} {name!r} collides with {owner_what} "
                                       f"{owner_name!r} of {owner.who}")
            for what, name, _line in d.names:
                owners.setdefault(fold_name(name), (d, what, name))

        opens = [d for d in drafts if d.kind == "open"]
        wons = [d for d in drafts if d.kind == "won"]
        known = all(d.kind for d in drafts)  # else the stage of an unknown kind may be either
        if not opens and known:
            self.problem(stages_line, "no open stage: a pipeline needs at least one open stage "
                                      "before its won stage")
        if not wons and known:
            self.problem(stages_line, 'no won stage: one stage needs kind = "won"')
        for d in wons[1:]:
            self.problem(d.pos.line_of("kind"), f"{d.who}: a second won stage ({wons[0].who} "
                                                "is won already); a pipeline has exactly one")

        not_open: _Draft | None = None
        for d in drafts:
            if d.kind == "open" and not_open is not None:
                self.problem(d.pos.line_of("kind"), f"{d.who}: an open stage after the "
                                                    f"{not_open.kind} {not_open.who}: {_ORDER}")
            elif d.kind == "after_won" and wons and d.n < wons[0].n:
                self.problem(d.pos.line_of("kind"), f"{d.who}: an after_won stage before the won "
                                                    f"{wons[0].who}: {_ORDER}")
            if d.kind in ("won", "after_won") and not_open is None:
                not_open = d

        gates = [d for d in drafts if d.gate]
        for d in gates[1:]:
            self.problem(d.pos.line_of("gate"), f"{d.who}: a second gate ({gates[0].who} is "
                                                "the gate); a pipeline has at most one")


# ---------------------------------------------------------------- line numbers


@dataclass
class _Pos:
    """Where a value is in the text: its line, and those of its keys or items."""

    line: int
    keys: dict[str, _Pos] = field(default_factory=dict)
    items: list[_Pos] = field(default_factory=list)

    def child(self, key: str) -> _Pos:
        return self.keys.get(key) or _Pos(self.line)

    def item(self, i: int) -> _Pos:
        return self.items[i] if i < len(self.items) else _Pos(self.line)

    def line_of(self, key: str) -> int:
        """The line of the key, else this value's own (where a missing key belongs)."""
        return self.child(key).line


_TOKEN = re.compile(
    r"""
      (?P<ws>[ \t]+)
    | (?P<nl>\r?\n)
    | (?P<comment>\#[^\n]*)
    | (?P<str>\"\"\"(?:[^\\]|\\.)*?\"\"\"\"{0,2}
             |'''.*?''''{0,2}
             |"(?:[^"\\\n]|\\.)*"
             |'[^'\n]*')
    | (?P<punct>[\[\]{},=])
    | (?P<bare>[A-Za-z0-9_+\-.:]+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    line: int
    start: int


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "other"
        if kind not in ("ws", "comment"):
            out.append(_Token(kind, m.group(), line, m.start()))
        line += m.group().count("\n")
    return out


def _positions(text: str) -> _Pos:
    """The line of every key, table and array item of a TOML text tomllib has accepted."""
    import tomllib

    scanner = _Scanner(_tokens(text))
    # Defensive: on a surprise keep what was found; the rest falls back to enclosing lines.
    with contextlib.suppress(IndexError, ValueError, tomllib.TOMLDecodeError):
        scanner.document()
    return scanner.root


class _Scanner:
    """A forgiving reader of valid TOML that records positions instead of values."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.root = _Pos(1)

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "punct" and tok.text in texts

    def skip_newlines(self) -> None:
        while (tok := self.peek()) is not None and (tok.kind == "nl" or self.at(",")):
            self.i += 1

    def document(self) -> None:
        current = self.root
        while (tok := self.peek()) is not None:
            start = self.i
            if tok.kind == "nl":
                self.i += 1
            elif self.at("["):
                current = self.header(tok)
            else:
                self.key_value(current)
            if self.i == start:
                self.i += 1

    def header(self, tok: _Token) -> _Pos:
        self.i += 1
        nxt = self.peek()
        array = nxt is not None and self.at("[") and nxt.start == tok.start + 1
        if array:
            self.i += 1
        path = self.key_path()
        while self.at("]"):
            self.i += 1
        node = self.root
        for part in path[:-1]:
            child = node.keys.setdefault(part, _Pos(tok.line))
            node = child.items[-1] if child.items else child
        if not path:
            return node
        if array:
            element = _Pos(tok.line)
            node.keys.setdefault(path[-1], _Pos(tok.line)).items.append(element)
            return element
        return node.keys.setdefault(path[-1], _Pos(tok.line))

    def key_path(self) -> list[str]:
        path: list[str] = []
        while (tok := self.peek()) is not None and tok.kind != "nl" and not self.at(
                "=", "]", "}", "[", "{", ","):
            if tok.kind == "str":
                import tomllib

                path.append(str(tomllib.loads(f"k = {tok.text}")["k"]))
            else:
                path.extend(part for part in tok.text.split(".") if part)
            self.i += 1
        return path

    def key_value(self, table: _Pos) -> None:
        tok = self.peek()
        if tok is None:
            return
        path = self.key_path()
        if not self.at("="):
            return
        self.i += 1
        value = self.value()
        node = table
        for part in path[:-1]:
            node = node.keys.setdefault(part, _Pos(tok.line))
        if path:
            node.keys[path[-1]] = _Pos(tok.line, value.keys, value.items)

    def value(self) -> _Pos:
        tok = self.peek()
        if tok is None:
            return _Pos(0)
        self.i += 1
        out = _Pos(tok.line)
        if tok.kind == "punct" and tok.text == "[":
            while True:
                self.skip_newlines()
                if self.peek() is None or self.at("]"):
                    self.i += 1
                    return out
                start = self.i
                out.items.append(self.value())
                if self.i == start:  # pragma: no cover - defensive
                    self.i += 1
        if tok.kind == "punct" and tok.text == "{":
            while True:
                self.skip_newlines()
                if self.peek() is None or self.at("}"):
                    self.i += 1
                    return out
                start = self.i
                self.key_value(out)
                if self.i == start:  # pragma: no cover - defensive
                    self.i += 1
        while (nxt := self.peek()) is not None and nxt.kind == "bare":  # 1979-05-27 07:32:00
            self.i += 1
        return out


# ====================================================================== dump


def dump(pipeline: Pipeline) -> str:
    """The TOML text of a pipeline: one inline table per stage, defaults left out."""
    out = [f"name = {_toml_str(pipeline.name)}"]
    if pipeline.checklist:
        out.append(f"checklist = {_toml_list(pipeline.checklist)}")
    out.append("stages = [")
    out += [f"  {{ {', '.join(_stage_fields(s))} }}," for s in pipeline.line]
    out.append("]")
    if pipeline.descriptions:
        out += ["", "[checklist_descriptions]"]
        out += [f"{_toml_key(c)} = {_toml_str(text)}" for c, text in pipeline.descriptions]
    return "\n".join(out) + "\n"


def _stage_fields(s: StageDef) -> list[str]:
    fields = [f"key = {_toml_str(s.key)}"]
    if s.label != default_label(s.key):
        fields.append(f"label = {_toml_str(s.label)}")
    if s.kind != "open":
        fields.append(f"kind = {_toml_str(s.kind)}")
    if s.kind == "open" or s.probability != 100:
        fields.append(f"probability = {s.probability}")
    if s.rot_days is not None:
        fields.append(f"rot_days = {s.rot_days}")
    if s.gate:
        fields.append(f"gate = {_toml_str(GATE)}")
    if s.skippable:
        fields.append("skippable = true")
    if s.aliases:
        fields.append(f"aliases = {_toml_list(s.aliases)}")
    for name in ("action", "meaning", "leaves_when"):
        if getattr(s, name):
            fields.append(f"{name} = {_toml_str(getattr(s, name))}")
    return fields


def _toml_str(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters as \\uXXXX."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_key(text: str) -> str:
    return text if _BARE_KEY.match(text) else _toml_str(text)


def _toml_list(texts: tuple[str, ...]) -> str:
    return "[" + ", ".join(_toml_str(t) for t in texts) + "]"


# ====================================================================== diff


@dataclass(frozen=True, slots=True)
class Change:
    """One difference between two pipelines; ``key`` is the stage's ("" for the pipeline's
    name and checklist), ``kind`` one of CHANGE_KINDS, ``text`` one human line."""

    kind: str
    key: str
    text: str


def diff(old: Pipeline, new: Pipeline) -> list[Change]:
    """What changes from ``old`` to ``new``; an empty list when they are equal."""
    out: list[Change] = []
    if old.name != new.name:
        out.append(Change("name", "", f"name {old.name!r} -> {new.name!r}"))
    out += _checklist_changes(old, new)

    old_keys, new_keys = old.keys, new.keys
    for key in old_keys:
        if key not in new_keys:
            out.append(Change("removed", key, f"stage {key!r} removed"))
    kept = _lcs([k for k in old_keys if k in new_keys], [k for k in new_keys if k in old_keys])
    for i, s in enumerate(new.line):
        where = f"after {new_keys[i - 1]!r}" if i else "at the start"
        if s.key not in old_keys:
            out.append(Change("added", s.key, f"stage {s.key!r} added ({s.kind}, "
                                              f"{s.probability}%) {where}"))
            continue
        if s.key not in kept:
            where = f"after {new_keys[i - 1]!r}" if i else "to the start"
            out.append(Change("reordered", s.key, f"stage {s.key!r} moved {where}"))
        out += _stage_changes(old.stage(s.key), s)
    return out


def _stage_changes(a: StageDef, b: StageDef) -> list[Change]:
    out: list[Change] = []

    def change(kind: str, text: str) -> None:
        out.append(Change(kind, b.key, f"stage {b.key!r}: {text}"))

    if a.label != b.label:
        change("renamed", f"label {a.label!r} -> {b.label!r}")
    if a.kind != b.kind:
        change("kind", f"kind {a.kind} -> {b.kind}")
    if a.probability != b.probability:
        change("probability", f"probability {a.probability}% -> {b.probability}%")
    if a.rot_days != b.rot_days:
        change("rot_days", f"rot_days {_days(a.rot_days)} -> {_days(b.rot_days)}")
    if a.gate != b.gate:
        change("gate", "now the checklist gate" if b.gate else "no longer the checklist gate")
    if a.skippable != b.skippable:
        change("skippable", "now skippable" if b.skippable else "no longer skippable")
    if a.aliases != b.aliases:
        change("aliases", f"aliases {_texts(a.aliases)} -> {_texts(b.aliases)}")
    for name in ("action", "meaning", "leaves_when"):
        before, after = getattr(a, name), getattr(b, name)
        if before != after:
            change(name, f"{name} {_texts((before,))} -> {_texts((after,))}")
    return out


def _checklist_changes(old: Pipeline, new: Pipeline) -> list[Change]:
    out: list[Change] = []
    for c in old.checklist:
        if c not in new.checklist:
            out.append(Change("checklist", "", f"checklist: {c!r} removed"))
    for c in new.checklist:
        if c not in old.checklist:
            out.append(Change("checklist", "", f"checklist: {c!r} added"))
    common_old = [c for c in old.checklist if c in new.checklist]
    common_new = [c for c in new.checklist if c in old.checklist]
    if common_old != common_new:
        out.append(Change("checklist", "", f"checklist: order {_texts(tuple(common_old))} -> "
                                           f"{_texts(tuple(common_new))}"))
    before, after = dict(old.descriptions), dict(new.descriptions)
    for c in {**before, **after}:
        if before.get(c, "") != after.get(c, ""):
            out.append(Change("checklist", "", f"checklist: description of {c!r} "
                                               f"{_texts((before.get(c, ''),))} -> "
                                               f"{_texts((after.get(c, ''),))}"))
    if before == after and old.descriptions != new.descriptions:
        out.append(Change("checklist", "", "checklist: descriptions reordered"))
    return out


def _days(days: int | None) -> str:
    return f"{DEFAULT_ROT_DAYS} (default)" if days is None else str(days)


def _texts(texts: tuple[str, ...]) -> str:
    shown = ", ".join(repr(t) for t in texts if t)
    return shown or "(none)"


def _lcs(a: list[str], b: list[str]) -> set[str]:
    """The items of one longest common subsequence of two lists of distinct items."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            table[i][j] = (table[i + 1][j + 1] + 1 if a[i] == b[j]
                           else max(table[i + 1][j], table[i][j + 1]))
    out: set[str] = set()
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            out.add(a[i])
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return out
