"""A file's stage names as stages of the pipeline the import writes into; and a new pipeline made
from a file's stage names (``--create-pipeline``).

A stage cell is mapped, first match wins, by

1. the user's ``--stage-map "THEIRS=OURS"`` (OURS: a key, label or alias of the target pipeline);
2. the map saved for this pipeline and source by an earlier import that was given one;
3. the preset: for the default pipeline its whole map; for any other pipeline only its won
   and lost entries (every pipeline has a won stage and the lost state);
4. the target pipeline's own names (key, label or alias, exactly, case and spacing folded).

Nothing here names a stage key: stage facts come from the target pipeline, and what a CRM's
stage means in the default pipeline from the preset (``transfer.fields``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipectl.domain.pipeline import DEFAULT, LOST, Pipeline, StageDef, Status, fold_name
from pipectl.errors import UsageError
from pipectl.transfer.fields import Preset, norm, parse_pairs

MAX_SEEN = 10_000  # distinct stage cells remembered (a file of free text has many)


def source_key(preset: Preset | None, header: list[str]) -> str:
    """What a remembered stage map belongs to besides its pipeline: the preset (the same CRM
    exports the same stages), else the file's columns."""
    if preset is not None:
        return preset.name
    return "csv:" + ",".join(sorted(norm(h) for h in header))


def stage_list(pipeline: Pipeline) -> str:
    return ", ".join((*pipeline.keys, LOST))


def given_map(pipeline: Pipeline, items: list[str]) -> dict[str, str]:
    """``--stage-map`` items -> {norm(their name): stage key of ``pipeline``}."""
    out: dict[str, str] = {}
    for theirs, ours in parse_pairs(items, "--stage-map"):
        key = pipeline.lookup(ours)
        if key is None:
            raise UsageError(
                f"--stage-map {theirs}={ours}: unknown stage {ours!r}",
                hint=f"stages of pipeline {pipeline.name!r}: {stage_list(pipeline)}",
            )
        out[norm(theirs)] = key
    return out


@dataclass
class StageMap:
    """How this import reads stage cells (see the module's docstring for the order)."""

    pipeline: Pipeline
    preset: Preset | None = None
    is_default: bool = True  # the target is the database's default pipeline
    saved: dict[str, str] = field(default_factory=dict)  # norm(name) -> key, remembered
    given: dict[str, str] = field(default_factory=dict)  # norm(name) -> key, --stage-map
    _seen: dict[str, str | None] = field(default_factory=dict, repr=False)
    _preset: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        p = self.pipeline
        self.saved = {k: v for k, v in self.saved.items() if p.has(v)}  # a key since removed
        for theirs, key in (self.preset.stages if self.preset else {}).items():
            if key == LOST:
                self._preset[theirs] = LOST
            elif self.is_default and p.has(key):
                self._preset[theirs] = key
            elif not self.is_default and DEFAULT.has(key) and DEFAULT.is_won(key):
                self._preset[theirs] = p.won_key

    def key(self, text: str) -> str | None:
        """The stage key a file's stage cell names, or None (unknown)."""
        try:
            return self._seen[text]
        except KeyError:
            pass
        name = norm(text)
        found = (self.given.get(name) or self.saved.get(name) or self._preset.get(name)
                 or self.pipeline.lookup(text))
        if len(self._seen) < MAX_SEEN:
            self._seen[text] = found
        return found

    def own_name(self, text: str) -> bool:
        """Is ``text`` one of the pipeline's own names (not the CRM's word for it)?"""
        return self.pipeline.lookup(text) is not None

    def _preset_open(self, key: str | None) -> str | None:
        """A stage the preset names in the default pipeline's terms, as an open stage of the
        target: itself in the default pipeline, else the stage the preset's name for it maps to."""
        p = self.pipeline
        if key is None:
            return None
        if self.is_default and p.has(key) and p.is_open(key):
            return key
        for theirs, k in (self.preset.stages if self.preset else {}).items():
            if k == key:
                found = self.key(theirs)
                if found is not None and found != LOST and p.is_open(found):
                    return found
        return None

    @property
    def won_from(self) -> str:
        """The open stage a won deal was in when the file does not say."""
        given = self._preset_open(self.preset.won_from if self.preset else None)
        return given or self.pipeline.open_keys[-1]

    @property
    def lost_from(self) -> str:
        """The open stage a lost deal died at when the file does not say."""
        given = self._preset_open(self.preset.lost_from if self.preset else None)
        return given or self.pipeline.first

    @property
    def lost_from_known(self) -> bool:
        """Does the preset know where a lost deal died when the file does not say (Maven's
        lost deals were engaging), rather than ``lost_from`` standing in for it?"""
        return self._preset_open(self.preset.lost_from if self.preset else None) is not None


# ---------------------------------------------------------------- --create-pipeline


def _slug(text: str) -> str:
    ascii_ = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_.lower()).strip("_")
    if not slug[:1].isalpha():
        slug = ("stage_" + slug).rstrip("_")
    return slug[:40].rstrip("_")


def _meaning(text: str, preset: Preset | None) -> str | None:
    """What a stage name means in the default pipeline: the preset's word for it, else
    pipectl's own names."""
    if preset is not None and norm(text) in preset.stages:
        return preset.stages[norm(text)]
    return DEFAULT.lookup(text)


def new_pipeline(name: str, values: Iterable[str], preset: Preset | None,
                 won_like: Iterable[str] = (), skip: Iterable[str] = (),
                 after_won: Iterable[str] = ()) -> Pipeline:
    """A pipeline made of a file's stage names (``values``, in file order, repeats allowed).

    Open stages come in the order the preset knows (the default pipeline's order of what it
    maps them to, then the preset's own order), then the others in the order first seen, with
    probabilities spread evenly from 10 to 90. A name the preset (or pipectl's own names) take
    for won becomes the won stage (a second one its alias; one taken for an after-won stage an
    after-won stage), one taken for lost the lost state; so does any name in ``won_like`` (the
    stage of a deal the file says is won), and a name in ``after_won`` (a stage a won deal's
    history shows it reached from its won stage) is an after-won stage. No gate, no checklist.
    ``skip``: names a --stage-map maps elsewhere (not stages of their own).
    """
    from pipectl.domain import pipeline_file

    skipped = {norm(s) for s in skip}
    after_names = {fold_name(a) for a in after_won}
    won_names = {fold_name(w) for w in won_like} - after_names
    seen: dict[str, tuple[str, int]] = {}  # folded -> (first spelling, first position)
    for i, raw in enumerate(values):
        text = unicodedata.normalize("NFC", raw).strip()
        folded = fold_name(text)
        if text and folded not in seen and norm(text) not in skipped:
            seen[folded] = (text, i)
    preset_order = {k: n for n, k in enumerate(preset.stages)} if preset else {}
    opens: list[tuple[tuple, str]] = []
    wons: list[tuple[tuple, str, str]] = []  # (rank, text, kind)
    for folded, (text, first) in seen.items():
        meaning = _meaning(text, preset)
        rank: tuple = (1, first)
        if meaning is not None:
            rank = (0, DEFAULT.order(meaning), preset_order.get(norm(text), -1), first)
        if meaning == LOST:
            continue
        if meaning is not None and DEFAULT.status(meaning) is Status.WON:
            wons.append((rank, text, DEFAULT.stage(meaning).kind))
        elif folded in after_names:
            wons.append(((3, first), text, "after_won"))
        elif folded in won_names:
            wons.append(((2, first), text, "won"))
        else:
            opens.append((rank, text))
    opens.sort()
    wons.sort()
    taken: set[str] = set()

    def key_of(text: str) -> str:
        """A key for the stage named ``text``: its name in lowercase ASCII, made unique (not
        another stage's name either)."""
        base = _slug(text)
        key, n = base, 1

        def clash(key: str) -> bool:
            folded = fold_name(key)
            return key in taken or key == LOST or (folded in seen and folded != fold_name(text))

        while clash(key):
            n += 1
            key = f"{base[:36]}_{n}"
        taken.add(key)
        return key

    line: list[StageDef] = []
    n_open = len(opens) or 1
    for i, (_, text) in enumerate(opens or [((0,), "Open")]):
        probability = 50 if n_open == 1 else 10 + round(80 * i / (n_open - 1))
        line.append(StageDef(key_of(text), text, probability=probability))
    won_text = next((t for _, t, kind in wons if kind == "won"), None)
    if won_text is None:
        won_text = next((t for _, t, _ in wons), "Won")
    aliases = tuple(t for _, t, kind in wons if t != won_text and kind == "won")
    line.append(StageDef(key_of(won_text), won_text, kind="won", probability=100,
                         aliases=aliases))
    for _, text, kind in wons:
        if kind == "after_won" and text != won_text:
            line.append(StageDef(key_of(text), text, kind="after_won", probability=100))
    pipeline = Pipeline.of(name, line)
    # the same checks as a definition a user writes (names colliding, lengths, ...)
    return pipeline_file.parse(pipeline_file.dump(pipeline), source=f"--create-pipeline {name}")
