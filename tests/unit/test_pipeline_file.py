"""The TOML and JSON forms of a pipeline, and the diff of two: table-driven and property tests."""

from __future__ import annotations

import json
import tomllib
import unicodedata
from dataclasses import replace
from textwrap import dedent

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.domain.pipeline import DEFAULT, LOST, Pipeline, StageDef, fold_name
from pipectl.domain.pipeline_file import (
    CHANGE_KINDS,
    Change,
    _bad_text,
    _positions,
    _toml_str,
    default_label,
    diff,
    dump,
    from_json,
    parse,
    to_json,
)
from pipectl.errors import UsageError

EXAMPLE = """\
name = "Agency retainers"
checklist = ["budget", "authority", "need"]   # this pipeline's qualification criteria
stages = [
  { key = "lead",      label = "New lead",       probability = 5,  rot_days = 7, action = "Call within a day" },
  { key = "discovery", label = "Discovery call", probability = 20, gate = "checklist" },
  { key = "pitch",     label = "Pitch",          probability = 50, skippable = true },
  { key = "signed",    label = "Signed",         kind = "won" },
  { key = "live",      label = "Live",           kind = "after_won" },
]
"""  # noqa: E501

EXAMPLE_TABLES = """\
name = "Agency retainers"
# this pipeline's qualification criteria
checklist = ["budget", "authority", "need"]

[[stages]]
key = "lead"
label = "New lead"
probability = 5
rot_days = 7
action = "Call within a day"

[[stages]]
key = "discovery"
label = "Discovery call"
probability = 20
gate = "checklist"

[[stages]]
key = "pitch"
label = "Pitch"
probability = 50
skippable = true

[[stages]]
key = "signed"
label = "Signed"
kind = "won"

[[stages]]
key = "live"
label = "Live"
kind = "after_won"
"""

EXAMPLE_PIPELINE = Pipeline.of(
    "Agency retainers",
    [
        StageDef("lead", "New lead", probability=5, rot_days=7, action="Call within a day"),
        StageDef("discovery", "Discovery call", probability=20, gate=True),
        StageDef("pitch", "Pitch", probability=50, skippable=True),
        StageDef("signed", "Signed", kind="won", probability=100),
        StageDef("live", "Live", kind="after_won", probability=100),
    ],
    ("budget", "authority", "need"),
)


def problems(text: str, source: str = "pipeline.toml") -> list[str]:
    """The lines of the UsageError parse raises for ``text`` (the test fails if none)."""
    with pytest.raises(UsageError) as info:
        parse(text, source)
    assert info.value.exit_code == 2
    assert info.value.hint is None
    return info.value.lines()


# ====================================================================== parse: valid files


@pytest.mark.parametrize("text", [EXAMPLE, EXAMPLE_TABLES], ids=["inline", "array-of-tables"])
def test_the_example_in_both_layouts(text: str) -> None:
    p = parse(text)
    assert p == EXAMPLE_PIPELINE
    assert [s.order for s in p.line] == [1, 2, 3, 4, 5]
    assert p.gate is not None and p.gate.key == "discovery"
    assert p.won_key == "signed" and p.won_keys == ("signed", "live")
    assert p.stage("lead").rot == 7 and p.stage("pitch").rot == 14


FOUR = """\
name = "Four"

[[stages]]
key = "new_lead"
probability = 10

[[stages]]
key = "call"
probability = 40
aliases = ["phone", "Phone call"]

[[stages]]
key = "closed"
kind = "won"
probability = 100

[[stages]]
key = "paid"
kind = "after_won"
"""


def test_a_four_stage_pipeline() -> None:
    p = parse(FOUR)
    assert p.keys == ("new_lead", "call", "closed", "paid")
    assert [s.label for s in p.line] == ["New lead", "Call", "Closed", "Paid"]
    assert [s.probability for s in p.line] == [10, 40, 100, 100]
    assert [s.kind for s in p.line] == ["open", "open", "won", "after_won"]
    assert p.stage("call").aliases == ("phone", "Phone call")
    assert p.checklist == () and p.descriptions == () and p.gate is None
    assert p.parse_stage("phone call") == "call"
    assert parse(dump(p)) == p


def twelve(bad_last: str = "") -> str:
    """Ten open stages, a won stage and an after-won stage, one per line from line 3."""
    rows = [f'  {{ key = "s{i:02}", probability = {i * 9} }},' for i in range(1, 11)]
    rows.append('  { key = "won", kind = "won" },')
    rows.append(f'  {{ key = "after", kind = "after_won"{bad_last} }},')
    return 'name = "Twelve"\nstages = [\n' + "\n".join(rows) + "\n]\n"


def test_a_twelve_stage_pipeline() -> None:
    p = parse(twelve())
    assert len(p.line) == 12 and p.open_keys == tuple(f"s{i:02}" for i in range(1, 11))
    assert [s.order for s in p.line] == list(range(1, 13))
    assert p.stage("s10").probability == 90 and p.stage("s07").label == "S07"
    assert p.won_keys == ("won", "after")
    assert parse(dump(p)) == p
    # the 12th stage is on line 14: 2 header lines, then one stage a line
    assert problems(twelve(", probability = 50")) == [
        "pipeline.toml:14: stage 'after': the probability of an after_won stage is 100, "
        "not 50 (leave it out)",
    ]


def test_texts_are_normalised_and_defaults_applied() -> None:
    text = dedent("""\
        name = "  Cafe\u0301 pipeline "
        checklist = [" budget "]
        checklist_descriptions = { " budget " = "  they can pay  " }

        [[stages]]
        key = "first_call"
        probability = 0
        action = " Ring\u0020"
        aliases = [" Cafe\u0301 "]

        [[stages]]
        key = "done"
        kind = "won"
        probability = 100
        rot_days = 30
        """)
    p = parse(text)
    assert p.name == "Café pipeline" and unicodedata.is_normalized("NFC", p.name)
    assert p.checklist == ("budget",)
    assert p.descriptions == (("budget", "they can pay"),)
    first, done = p.line
    assert first == StageDef("first_call", "First call", probability=0, action="Ring",
                             aliases=("Café",), order=1)
    assert done.rot_days == 30 and done.probability == 100 and not done.skippable


@pytest.mark.parametrize(("key", "label"), [
    ("lead", "Lead"), ("post_sale", "Post sale"), ("a_", "A"), ("x1_y2", "X1 y2"),
])
def test_default_label(key: str, label: str) -> None:
    assert default_label(key) == label


def test_the_descriptions_table_after_the_stages() -> None:
    text = EXAMPLE + '\n[checklist_descriptions]\nneed = "a real need"\n"budget" = "money"\n'
    p = parse(text)
    assert p.descriptions == (("need", "a real need"), ("budget", "money"))
    assert p.description("budget") == "money" and p.description("authority") == ""


def test_a_bom_and_crlf_line_ends_are_read() -> None:
    assert parse("\ufeff" + EXAMPLE.replace("\n", "\r\n")) == EXAMPLE_PIPELINE
    lines = problems(EXAMPLE.replace("\n", "\r\n").replace("probability = 50", "probability = 500"))
    assert lines == ["pipeline.toml:6: stage 'pitch': probability 500 is outside 0-100"]


# ====================================================================== parse: problems

OK_TAIL = '  { key = "done", kind = "won" },\n]\n'  # a won stage and the end of the list

ERRORS: list[tuple[str, str, list[str]]] = [
    ("unknown top-level key",
     'name = "x"\nnmae = "y"\nstages = [\n  { key = "a", probability = 10 },\n' + OK_TAIL,
     ["2: unknown key 'nmae' (did you mean 'name'?)"]),
    ("unknown top-level key without a near name",
     'name = "x"\nzzz = 1\nstages = [\n  { key = "a", probability = 10 },\n' + OK_TAIL,
     ["2: unknown key 'zzz' (known keys: name, checklist, checklist_descriptions, stages)"]),
    ("unknown top-level table",
     'name = "x"\nstages = [\n  { key = "a", probability = 10 },\n' + OK_TAIL
     + "\n[checklist_description]\na = 'b'\n",
     ["7: unknown key 'checklist_description' (did you mean 'checklist_descriptions'?)"]),
    ("unknown stage key, inline",
     'name = "x"\nstages = [\n  { key = "a", probabilty = 10 },\n' + OK_TAIL,
     ["3: stage 'a': unknown key 'probabilty' (did you mean 'probability'?)",
      "3: stage 'a': no probability (an integer from 0 to 100, required for an open stage)"]),
    ("unknown stage key, array of tables",
     'name = "x"\n\n[[stages]]\nkey = "a"\nprobability = 10\nrot_dayz = 3\n\n'
     '[[stages]]\nkey = "b"\nkind = "won"\n',
     ["6: stage 'a': unknown key 'rot_dayz' (did you mean 'rot_days'?)"]),
    ("missing probability, array of tables: the stage's header line",
     'name = "x"\n\n[[stages]]\nkey = "a"\n\n[[stages]]\nkey = "b"\n\n'
     '[[stages]]\nkey = "c"\nkind = "won"\n',
     ["3: stage 'a': no probability (an integer from 0 to 100, required for an open stage)",
      "6: stage 'b': no probability (an integer from 0 to 100, required for an open stage)"]),
    ("duplicate stage",
     'name = "x"\nstages = [\n  { key = "a", probability = 10 },\n'
     '  { key = "a", probability = 20 },\n' + OK_TAIL,
     ["4: duplicate stage 'a' (stage 1 at line 3 has the same key)"]),
    ("duplicate stage, array of tables",
     'name = "x"\n[[stages]]\nkey = "a"\nprobability = 1\n[[stages]]\nprobability = 2\n'
     'key = "a"\n[[stages]]\nkey = "w"\nkind = "won"\n',
     ["7: duplicate stage 'a' (stage 1 at line 2 has the same key)"]),
    ("no won stage: the stages line",
     'name = "x"\n\nstages = [\n  { key = "a", probability = 10 },\n]\n',
     ['3: no won stage: one stage needs kind = "won"']),
    ("no won stage, array of tables: the first [[stages]] line",
     'name = "x"\n\n\n[[stages]]\nkey = "a"\nprobability = 1\n',
     ['4: no won stage: one stage needs kind = "won"']),
    ("two won stages",
     'name = "x"\nstages = [\n  { key = "a", probability = 10 },\n  { key = "b", kind = "won" },\n'
     '  { key = "c", kind = "won" },\n]\n',
     ["5: stage 'c': a second won stage (stage 'b' is won already); a pipeline has exactly one"]),
    ("no open stage",
     'name = "x"\nstages = [\n' + OK_TAIL,
     ["2: no open stage: a pipeline needs at least one open stage before its won stage"]),
    ("no stage at all",
     'name = "x"\nstages = []\n',
     ["2: no open stage: a pipeline needs at least one open stage before its won stage",
      '2: no won stage: one stage needs kind = "won"']),
    ("probability above 100",
     'name = "x"\nstages = [\n  { key = "a", probability = 101 },\n' + OK_TAIL,
     ["3: stage 'a': probability 101 is outside 0-100"]),
    ("probability below 0",
     'name = "x"\nstages = [\n  { key = "a", probability = -1 },\n' + OK_TAIL,
     ["3: stage 'a': probability -1 is outside 0-100"]),
    ("probability as text",
     'name = "x"\nstages = [\n  { key = "a", probability = "5" },\n' + OK_TAIL,
     ["3: stage 'a': probability must be an integer from 0 to 100, not text '5'"]),
    ("probability as a fraction",
     'name = "x"\nstages = [\n  { key = "a", probability = 5.5 },\n' + OK_TAIL,
     ["3: stage 'a': probability must be an integer from 0 to 100, not the number 5.5"]),
    ("probability as a boolean",
     'name = "x"\nstages = [\n  { key = "a", probability = true },\n' + OK_TAIL,
     ["3: stage 'a': probability must be an integer from 0 to 100, not true"]),
    ("won probability not 100",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { key = "w", kind = "won", probability = 90 },\n]\n',
     ["4: stage 'w': the probability of a won stage is 100, not 90 (leave it out)"]),
    ("gate without a checklist, array of tables: the gate's line",
     'name = "x"\n[[stages]]\nkey = "a"\nprobability = 1\ngate = "checklist"\n'
     '[[stages]]\nkey = "w"\nkind = "won"\n',
     ["5: stage 'a': a gate needs a checklist: add checklist = [...] with the criteria a deal "
      "must meet to pass it"]),
    ("gate with an empty checklist",
     'name = "x"\nchecklist = []\nstages = [\n'
     '  { key = "a", probability = 1, gate = "checklist" },\n' + OK_TAIL,
     ["4: stage 'a': a gate needs a checklist: add checklist = [...] with the criteria a deal "
      "must meet to pass it"]),
    ("gate = true",
     'name = "x"\nchecklist = ["b"]\nstages = [\n  { key = "a", probability = 1, gate = true },\n'
     + OK_TAIL,
     ['4: stage \'a\': gate must be "checklist", not true']),
    ("gate on the won stage",
     'name = "x"\nchecklist = ["b"]\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { key = "w", kind = "won", gate = "checklist" },\n]\n',
     ["5: stage 'w': only an open stage may be the gate, not a won stage"]),
    ("two gates",
     'name = "x"\nchecklist = ["b"]\nstages = [\n'
     '  { key = "a", probability = 1, gate = "checklist" },\n'
     '  { key = "c", probability = 2, gate = "checklist" },\n' + OK_TAIL,
     ["5: stage 'c': a second gate (stage 'a' is the gate); a pipeline has at most one"]),
    ("skippable gate",
     'name = "x"\nchecklist = ["b"]\nstages = [\n'
     '  { key = "a", probability = 1, gate = "checklist", skippable = true },\n' + OK_TAIL,
     ["4: stage 'a': the gate stage cannot be skippable (a deal passes it only once qualified)"]),
    ("skippable won stage",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { key = "w", kind = "won", skippable = true },\n]\n',
     ["4: stage 'w': only an open stage may be skippable, not a won stage"]),
    ("skippable as text",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, skippable = "yes" },\n' + OK_TAIL,
     ["3: stage 'a': skippable must be true or false, not text 'yes'"]),
    ("upper-case key",
     'name = "x"\nstages = [\n  { key = "Lead", probability = 1 },\n' + OK_TAIL,
     ["3: stage 1: key 'Lead' must be lowercase letters, digits and '_', starting with a letter"]),
    ("key starting with a digit",
     'name = "x"\nstages = [\n  { key = "1a", probability = 1 },\n' + OK_TAIL,
     ["3: stage 1: key '1a' must be lowercase letters, digits and '_', starting with a letter"]),
    ("key with a hyphen",
     'name = "x"\nstages = [\n  { key = "a-b", probability = 1 },\n' + OK_TAIL,
     ["3: stage 1: key 'a-b' must be lowercase letters, digits and '_', starting with a letter"]),
    ("empty key",
     'name = "x"\nstages = [\n  { key = " ", probability = 1 },\n' + OK_TAIL,
     ["3: stage 1: key '' must be lowercase letters, digits and '_', starting with a letter"]),
    ("key too long",
     'name = "x"\nstages = [\n  { key = "' + "a" * 41 + '", probability = 1 },\n' + OK_TAIL,
     [f"3: stage 1: key '{'a' * 41}' is longer than 40 characters"]),
    ("key as a number",
     'name = "x"\nstages = [\n  { key = 7, probability = 1 },\n' + OK_TAIL,
     ["3: stage 1: key must be text, not the integer 7"]),
    ("key lost",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { key = "lost", probability = 0 },\n' + OK_TAIL,
     ["4: stage 2: key 'lost' is reserved: lost is the terminal state every pipeline has"]),
    ("no key: the stage's line",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n'
     '  { label = "B", probability = 2 },\n' + OK_TAIL,
     ["4: stage 2 has no key"]),
    ("an open stage after the won stage",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n  { key = "w", kind = "won" },\n'
     '  { key = "b", probability = 2 },\n]\n',
     ["5: stage 'b': an open stage after the won stage 'w': open stages come first, then the won "
      "stage, then after_won stages"]),
    ("an after_won stage before the won stage: its kind line",
     'name = "x"\n[[stages]]\nkey = "a"\nprobability = 1\n[[stages]]\nkey = "live"\n'
     'kind = "after_won"\n[[stages]]\nkey = "w"\nkind = "won"\n',
     ["7: stage 'live': an after_won stage before the won stage 'w': open stages come first, "
      "then the won stage, then after_won stages"]),
    ("an unknown kind",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, kind = "closed" },\n' + OK_TAIL,
     ["3: stage 'a': kind must be one of open, won, after_won, not text 'closed'"]),
    ("a label that is another stage's key",
     'name = "x"\nstages = [\n  { key = "lead", probability = 1 },\n'
     '  { key = "call", label = "LEAD", probability = 2 },\n' + OK_TAIL,
     ["4: stage 'call': label 'LEAD' collides with key 'lead' of stage 'lead'"]),
    ("an alias that is another stage's label, folded",
     'name = "x"\nstages = [\n  { key = "a", label = "First call", probability = 1 },\n'
     '  { key = "b", probability = 2, aliases = [\n    "x",\n    "first-call",\n  ] },\n'
     + OK_TAIL,
     ["6: stage 'b': alias 'first-call' collides with label 'First call' of stage 'a'"]),
    ("a key that is another stage's alias",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, aliases = ["demo"] },\n'
     '  { key = "demo", probability = 2 },\n' + OK_TAIL,
     ["4: stage 'demo': key 'demo' collides with alias 'demo' of stage 'a'"]),
    ("an alias of lost",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, aliases = ["Dead"] },\n' + OK_TAIL,
     ["3: stage 'a': alias 'Dead' is also the alias 'dead' of 'lost', the terminal state every "
      "pipeline has"]),
    ("an empty label",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, label = "  " },\n' + OK_TAIL,
     ["3: stage 'a': label is empty"]),
    ("aliases as text",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, aliases = "b" },\n' + OK_TAIL,
     ["3: stage 'a': aliases must be a list of texts, not text 'b'"]),
    ("an empty alias",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, aliases = ["b", ""] },\n' + OK_TAIL,
     ["3: stage 'a': alias 2 is empty"]),
    ("action as a number",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, action = 3 },\n' + OK_TAIL,
     ["3: stage 'a': action must be text, not the integer 3"]),
    ("rot_days zero",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, rot_days = 0 },\n' + OK_TAIL,
     ["3: stage 'a': rot_days must be at least 1, not 0"]),
    ("rot_days as text",
     'name = "x"\nstages = [\n  { key = "a", probability = 1, rot_days = "7" },\n' + OK_TAIL,
     ["3: stage 'a': rot_days must be a positive integer (days), not text '7'"]),
    ("name missing: line 1",
     '\nstages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ['1: no name: add name = "..." at the top']),
    ("name as a number",
     'name = 3\nstages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["1: name must be text, not the integer 3"]),
    ("name empty",
     'stages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL.replace("]\n", "]\nname = ''\n"),
     ["5: name is empty"]),
    ("stages missing",
     'name = "x"\n',
     ["1: no stages: add stages = [ { key = ..., ... }, ... ]"]),
    ("stages as text",
     'name = "x"\n\nstages = "lead, won"\n',
     ["3: stages must be a list of tables, not text 'lead, won'"]),
    ("stage as a number",
     'name = "x"\nstages = [\n  { key = "a", probability = 1 },\n  7,\n' + OK_TAIL,
     ["4: stage 2 must be a table, not the integer 7"]),
    ("checklist as text",
     'name = "x"\nchecklist = "budget"\nstages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["2: checklist must be a list of texts, not text 'budget'"]),
    ("checklist criterion twice: its own line",
     'name = "x"\nchecklist = [\n  "budget",\n  "need",\n  " budget",\n]\n'
     'stages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["5: checklist: 'budget' is listed twice"]),
    ("checklist criterion empty or not text",
     'name = "x"\nchecklist = ["", 3]\nstages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["2: checklist: criterion 1 is empty", "2: checklist: criterion 2 must be text, not the "
      "integer 3"]),
    ("a description of an unknown criterion",
     'name = "x"\nchecklist = ["need"]\nstages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL
     + '\n[checklist_descriptions]\nneed = "a need"\nbudgte = "money"\n',
     ["10: checklist_descriptions: 'budgte' is not in the checklist"]),
    ("an empty description",
     'name = "x"\nchecklist = ["need"]\nchecklist_descriptions = { need = " " }\n'
     'stages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["3: checklist_descriptions: the description of 'need' is empty (leave it out instead)"]),
    ("descriptions as a list",
     'name = "x"\nchecklist = ["need"]\nchecklist_descriptions = ["x"]\n'
     'stages = [\n  { key = "a", probability = 1 },\n' + OK_TAIL,
     ["3: checklist_descriptions must be a table (criterion = text), not a list"]),
    ("comments, blank lines and multi-line strings before the problem",
     '# a comment\nname = """two \\\n  lines"""  # another\n\n'
     'checklist = [ # c\n  "a", # "b" = 1\n]\n'
     "stages = [\n  { key = 'x', action = '''say \"hi\"''', probability = 1 }, # {\n"
     '  { key = "y", kind = "won", probability = 3 },\n]\n',
     ["10: stage 'y': the probability of a won stage is 100, not 3 (leave it out)"]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in ERRORS],
                         ids=[name for name, _, _ in ERRORS])
def test_each_problem_with_its_line(text: str, expected: list[str]) -> None:
    tomllib.loads(text)  # the case is valid TOML: the problem is the pipeline's
    assert problems(text) == [f"pipeline.toml:{line}" for line in expected]


def test_every_problem_is_reported_once_in_line_order() -> None:
    text = dedent("""\
        name = "x"
        nmae = 3
        stages = [
          { key = "lead", probabilty = 5 },
          { key = "lead", probability = 500, gate = "checklist" },
          { key = "Signed", kind = "won" },
          { key = "won2", kind = "won", probability = 90 },
          { key = "lost" },
        ]
        """)
    assert problems(text, "retainers.toml") == [
        "retainers.toml:2: unknown key 'nmae' (did you mean 'name'?)",
        "retainers.toml:4: stage 'lead': unknown key 'probabilty' (did you mean 'probability'?)",
        "retainers.toml:4: stage 'lead': no probability (an integer from 0 to 100, required for "
        "an open stage)",
        "retainers.toml:5: stage 'lead': probability 500 is outside 0-100",
        "retainers.toml:5: stage 'lead': a gate needs a checklist: add checklist = [...] with the "
        "criteria a deal must meet to pass it",
        "retainers.toml:5: duplicate stage 'lead' (stage 1 at line 4 has the same key)",
        "retainers.toml:6: stage 3: key 'Signed' must be lowercase letters, digits and '_', "
        "starting with a letter",
        "retainers.toml:7: stage 'won2': the probability of a won stage is 100, not 90 (leave it "
        "out)",
        "retainers.toml:7: stage 'won2': a second won stage (stage 3 is won already); a pipeline "
        "has exactly one",
        "retainers.toml:8: stage 5: key 'lost' is reserved: lost is the terminal state every "
        "pipeline has",
        "retainers.toml:8: stage 5: no probability (an integer from 0 to 100, required for an "
        "open stage)",
        "retainers.toml:8: stage 5: an open stage after the won stage 3: open stages come first, "
        "then the won stage, then after_won stages",
    ]


@pytest.mark.parametrize(("text", "line", "message"), [
    ('name = "x"\nstages = [\n  { key = "a" probability = 1 },\n]\n', 3,
     "Unclosed inline table"),
    ('name = "x"\nname = "y"\n', 2, "Cannot overwrite a value"),
    ('name = "x\nstages = []\n', 1, "Illegal character"),
    ('name = "x"\nstages = [\n', 2, "(at end of document)"),
])
def test_a_toml_syntax_error_names_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(tomllib.TOMLDecodeError) as toml:
        tomllib.loads(text)
    [only] = problems(text, "p.toml")
    assert only == f"p.toml:{line}: {toml.value}"
    assert message in only


def test_a_stage_written_over_several_lines() -> None:
    """TOML 1.0 (tomllib up to 3.13) refuses newlines in an inline table: the syntax error then
    names the line; a TOML 1.1 reader accepts them and the problem has its key's line."""
    text = dedent("""\
        name = "x"
        stages = [
          { key = "a",
            probability = 120 },
          { key = "w", kind = "won" },
        ]
        """)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        [only] = problems(text)
        assert only.startswith("pipeline.toml:3: ") and "(at line 3," in only
    else:  # pragma: no cover - TOML 1.1
        assert problems(text) == ["pipeline.toml:4: stage 'a': probability 120 is outside 0-100"]


def test_line_numbers_of_stages_written_over_several_lines() -> None:
    """What tomllib does not give: the scanner behind parse's line numbers, on layouts TOML 1.0
    readers refuse (newlines in inline tables) as well as on the usual ones."""
    text = dedent("""\
        name = "x"  # 1
        stages = [
          { key = "a",
            label = "A",
            aliases = [
              "b",
              'c' ] },
          { "key" = "w", kind = "won" }, { key = "v",
          kind = "after_won" }
        ]
        [checklist_descriptions]
        "x.y" = '''
        z'''
        q = 1
        """)
    root = _positions(text)
    stages = root.keys["stages"]
    assert (root.line_of("name"), stages.line) == (1, 2)
    assert [s.line for s in stages.items] == [3, 8, 8]
    first = stages.items[0]
    assert [first.line_of(k) for k in ("key", "label", "aliases")] == [3, 4, 5]
    assert [i.line for i in first.keys["aliases"].items] == [6, 7]
    assert stages.items[1].line_of("kind") == 8 and stages.items[2].line_of("kind") == 9
    described = root.keys["checklist_descriptions"]
    assert (described.line, described.line_of("x.y"), described.line_of("q")) == (11, 12, 14)
    assert first.line_of("missing") == 3 and stages.item(7).line == 2


# ====================================================================== dump


def test_dump_of_the_example() -> None:
    assert dump(EXAMPLE_PIPELINE) == dedent("""\
        name = "Agency retainers"
        checklist = ["budget", "authority", "need"]
        stages = [
          { key = "lead", label = "New lead", probability = 5, rot_days = 7, action = "Call within a day" },
          { key = "discovery", label = "Discovery call", probability = 20, gate = "checklist" },
          { key = "pitch", probability = 50, skippable = true },
          { key = "signed", kind = "won" },
          { key = "live", kind = "after_won" },
        ]
        """)  # noqa: E501


def test_dump_of_default_parses_back_to_default() -> None:
    text = dump(DEFAULT)
    back = parse(text)
    assert back == DEFAULT
    assert [s.order for s in back.line] == [s.order for s in DEFAULT.line]
    assert back.descriptions == DEFAULT.descriptions
    assert dump(back) == text
    lines = text.splitlines()
    assert lines[:3] == ['name = "default"',
                         'checklist = ["location", "budget", "authority", "need"]', "stages = ["]
    assert lines[-5:] == ["[checklist_descriptions]",
                          'location = "the prospect is somewhere we sell to"',
                          'budget = "they can pay for it"',
                          'authority = "we talk to someone who can decide"',
                          'need = "our product fits a real need"']
    assert sum(line.startswith("  { key = ") for line in lines) == len(DEFAULT.line)


@pytest.mark.parametrize(("text", "encoded"), [
    ('say "hi"', r'"say \"hi\""'),
    ("C:\\temp", r'"C:\\temp"'),
    ("Café – 日本 😀", '"Café – 日本 😀"'),
    ("'single' # not a comment", "\"'single' # not a comment\""),
])
def test_strings_are_escaped(text: str, encoded: str) -> None:
    p = Pipeline.of(text, [StageDef("a", text, probability=1, action=text, aliases=(text,)),
                           StageDef("w", "W", kind="won", probability=100)],
                    (text,), descriptions=((text, text),))
    out = dump(p)
    assert out.splitlines()[0] == f"name = {encoded}"
    assert f"label = {encoded}" in out
    assert parse(out) == p
    assert tomllib.loads(out)["checklist_descriptions"] == {text: text}


@pytest.mark.parametrize(("text", "encoded"), [
    ("two\nlines", r'"two\u000Alines"'),
    ("tab\there", r'"tab\u0009here"'),
    ("del\x7f", r'"del\u007F"'),
    ("nul\x00", r'"nul\u0000"'),
])
def test_control_characters_are_escaped_and_refused(text: str, encoded: str) -> None:
    """The TOML writer escapes every control character; the reader refuses them in a text."""
    assert _toml_str(text) == encoded
    assert tomllib.loads(f"k = {encoded}")["k"] == text
    assert any("control character" in line for line in problems(
        f"name = {encoded}\nstages = [\n  {{ key = \"a\", probability = 1 }},\n" + OK_TAIL))


def test_dump_writes_only_what_differs_from_the_defaults() -> None:
    p = Pipeline.of("p", [StageDef("new_lead", "New lead", probability=0),
                          StageDef("won", "Won", kind="won", probability=100)])
    assert dump(p) == dedent("""\
        name = "p"
        stages = [
          { key = "new_lead", probability = 0 },
          { key = "won", kind = "won" },
        ]
        """)


# ====================================================================== JSON


def test_json_of_default() -> None:
    text = to_json(DEFAULT)
    assert from_json(text) == DEFAULT
    doc = json.loads(text)
    assert list(doc) == ["name", "checklist", "descriptions", "stages"]
    assert list(doc["stages"][0]) == ["key", "label", "kind", "probability", "rot_days", "gate",
                                      "skippable", "action", "aliases", "meaning", "leaves_when"]
    assert doc["descriptions"][0] == ["location", "the prospect is somewhere we sell to"]
    assert text == json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
    assert from_json(text).descriptions == DEFAULT.descriptions


def test_json_is_canonical_and_keeps_unicode() -> None:
    p = replace(EXAMPLE_PIPELINE, name="Café 日本", id=3, version=9)
    text = to_json(p)
    assert '"name":"Café 日本"' in text
    assert text == to_json(replace(p, id=None, version=None))  # the store's fields are not in it
    back = from_json(text)
    assert back == p and back.id is None
    assert to_json(back) == text
    assert [s.order for s in back.line] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("text", ['{"name": "x"}', "[]", '{"name": "x", "stages": [{}]}'])
def test_from_json_refuses_what_is_not_a_pipeline(text: str) -> None:
    with pytest.raises(ValueError, match="not a stored pipeline"):
        from_json(text)


# ====================================================================== diff


def _edit(p: Pipeline, key: str, **changes: object) -> Pipeline:
    return Pipeline.of(p.name, [replace(s, **changes) if s.key == key else s for s in p.line],
                       p.checklist, descriptions=p.descriptions)


def _edited(old: str, new: str, count: int = 1) -> Pipeline:
    assert EXAMPLE.count(old) == count
    return parse(EXAMPLE.replace(old, new))


DEMO = '  { key = "demo", probability = 30 },\n'
LEAD = '  { key = "lead",      label = "New lead",       probability = 5,  rot_days = 7, action = "Call within a day" },\n'  # noqa: E501
DISCOVERY = '  { key = "discovery", label = "Discovery call", probability = 20, gate = "checklist" },\n'  # noqa: E501
PITCH = '  { key = "pitch",     label = "Pitch",          probability = 50, skippable = true },\n'

DIFFS: list[tuple[str, Pipeline, list[Change]]] = [
    ("nothing", parse(EXAMPLE), []),
    ("probability", _edited("probability = 50", "probability = 60"),
     [Change("probability", "pitch", "stage 'pitch': probability 50% -> 60%")]),
    ("added", _edited(DISCOVERY, DISCOVERY + DEMO),
     [Change("added", "demo", "stage 'demo' added (open, 30%) after 'discovery'")]),
    ("added first", _edited(LEAD, DEMO + LEAD),
     [Change("added", "demo", "stage 'demo' added (open, 30%) at the start")]),
    ("removed", _edited(PITCH, ""), [Change("removed", "pitch", "stage 'pitch' removed")]),
    ("renamed", _edited('label = "New lead"', 'label = "Lead"'),
     [Change("renamed", "lead", "stage 'lead': label 'New lead' -> 'Lead'")]),
    ("reordered", _edited(DISCOVERY + PITCH, PITCH + DISCOVERY),
     [Change("reordered", "discovery", "stage 'discovery' moved after 'pitch'")]),
    ("moved to the start", _edited(LEAD + DISCOVERY + PITCH, PITCH + LEAD + DISCOVERY),
     [Change("reordered", "pitch", "stage 'pitch' moved to the start")]),
    ("moved down", _edited(LEAD + DISCOVERY + PITCH, DISCOVERY + PITCH + LEAD),
     [Change("reordered", "lead", "stage 'lead' moved after 'pitch'")]),
    ("rot_days", _edited("rot_days = 7, ", ""),
     [Change("rot_days", "lead", "stage 'lead': rot_days 7 -> 14 (default)")]),
    ("gate moved", Pipeline.of(
        "Agency retainers",
        [replace(EXAMPLE_PIPELINE.line[0], gate=True),
         replace(EXAMPLE_PIPELINE.line[1], gate=False), *EXAMPLE_PIPELINE.line[2:]],
        EXAMPLE_PIPELINE.checklist),
     [Change("gate", "lead", "stage 'lead': now the checklist gate"),
      Change("gate", "discovery", "stage 'discovery': no longer the checklist gate")]),
    ("skippable", _edited(", skippable = true", ""),
     [Change("skippable", "pitch", "stage 'pitch': no longer skippable")]),
    ("action", _edited("Call within a day", "Call today"),
     [Change("action", "lead", "stage 'lead': action 'Call within a day' -> 'Call today'")]),
    ("action removed", _edited(', action = "Call within a day"', ""),
     [Change("action", "lead", "stage 'lead': action 'Call within a day' -> (none)")]),
    ("aliases", _edited('label = "Pitch",', 'label = "Pitch", aliases = ["demo", "deck"],'),
     [Change("aliases", "pitch", "stage 'pitch': aliases (none) -> 'demo', 'deck'")]),
    ("meaning and leaves_when", _edit(EXAMPLE_PIPELINE, "live", meaning="Live", leaves_when="x"),
     [Change("meaning", "live", "stage 'live': meaning (none) -> 'Live'"),
      Change("leaves_when", "live", "stage 'live': leaves_when (none) -> 'x'")]),
    ("kind", _edit(EXAMPLE_PIPELINE, "pitch", kind="won", probability=100, skippable=False),
     [Change("kind", "pitch", "stage 'pitch': kind open -> won"),
      Change("probability", "pitch", "stage 'pitch': probability 50% -> 100%"),
      Change("skippable", "pitch", "stage 'pitch': no longer skippable")]),
    ("checklist", _edited('"authority", "need"', '"need", "timeline"'),
     [Change("checklist", "", "checklist: 'authority' removed"),
      Change("checklist", "", "checklist: 'timeline' added")]),
    ("checklist order", _edited('"budget", "authority"', '"authority", "budget"'),
     [Change("checklist", "", "checklist: order 'budget', 'authority', 'need' -> 'authority', "
                              "'budget', 'need'")]),
    ("description", parse(EXAMPLE + "[checklist_descriptions]\nneed = 'pain'\n"),
     [Change("checklist", "", "checklist: description of 'need' (none) -> 'pain'")]),
    ("name", _edited("Agency retainers", "Retainers"),
     [Change("name", "", "name 'Agency retainers' -> 'Retainers'")]),
    ("several, in order", parse(
        EXAMPLE.replace("Agency retainers", "R").replace(PITCH, "")
        .replace(DISCOVERY, DISCOVERY.replace("20", "25") + DEMO)),
     [Change("name", "", "name 'Agency retainers' -> 'R'"),
      Change("removed", "pitch", "stage 'pitch' removed"),
      Change("probability", "discovery", "stage 'discovery': probability 20% -> 25%"),
      Change("added", "demo", "stage 'demo' added (open, 30%) after 'discovery'")]),
]


@pytest.mark.parametrize(("new", "expected"), [(n, e) for _, n, e in DIFFS],
                         ids=[name for name, _, _ in DIFFS])
def test_diff(new: Pipeline, expected: list[Change]) -> None:
    assert diff(EXAMPLE_PIPELINE, new) == expected
    assert (diff(new, EXAMPLE_PIPELINE) == []) == (expected == [])


def test_diff_of_default_against_the_example() -> None:
    changes = diff(DEFAULT, EXAMPLE_PIPELINE)
    kinds = {c.kind for c in changes}
    assert {"name", "checklist", "removed", "added"} <= kinds
    assert sum(c.kind == "removed" for c in changes) == len(DEFAULT.line)
    assert [c.key for c in changes if c.kind == "added"] == list(EXAMPLE_PIPELINE.keys)


# ====================================================================== properties

_LOST = DEFAULT.stage(LOST)
_LOST_NAMES = frozenset(fold_name(n) for n in (_LOST.key, _LOST.label, *_LOST.aliases))


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


# Mostly characters that need care (quotes, backslashes, '#', '.', combining marks, wide
# characters), sometimes any character a definition's text may hold (no control characters:
# the parser refuses them, see test_texts_of_a_definition_follow_the_text_rules).
_CHARS = st.sampled_from('abAB _-."\'\\#=[]{}é日😀\u0301\u00a0') | st.characters(
    blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
    blacklist_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
TEXT = (st.text(_CHARS, min_size=1, max_size=8).map(_clean)
        .filter(lambda t: bool(t) and _clean(t) == t and _bad_text(t, 200) is None))
KEY = st.builds(lambda first, rest: first + rest, st.sampled_from("abcz"),
                st.text("ab9_", max_size=5)).filter(lambda k: k != LOST)


@st.composite
def pipelines(draw: st.DrawFn) -> Pipeline:
    """A valid pipeline: 1-4 open stages, one won, 0-2 after-won, names that never collide."""
    used = set(_LOST_NAMES)
    n_open = draw(st.integers(1, 4))
    kinds = ["open"] * n_open + ["won"] + ["after_won"] * draw(st.integers(0, 2))
    checklist = draw(st.lists(TEXT, max_size=4, unique=True))
    gate_at = draw(st.none() | st.integers(0, n_open - 1)) if checklist else None
    line = []
    for i, kind in enumerate(kinds):
        free = TEXT.filter(lambda t, used=used: fold_name(t) not in used)
        key = draw(KEY.filter(lambda k, used=used: fold_name(k) not in used))
        label = draw(st.none() | free)
        label = default_label(key) if label is None else label
        aliases = tuple(draw(st.lists(free, max_size=2)))
        gate = i == gate_at
        line.append(StageDef(
            key, label, kind=kind,
            probability=draw(st.integers(0, 100)) if kind == "open" else 100,
            rot_days=draw(st.none() | st.integers(1, 400)), gate=gate,
            skippable=kind == "open" and not gate and draw(st.booleans()),
            action=draw(st.just("") | TEXT), aliases=aliases,
            meaning=draw(st.just("") | TEXT), leaves_when=draw(st.just("") | TEXT),
        ))
        used |= {fold_name(n) for n in (key, label, *aliases)}
    described = draw(st.lists(st.sampled_from(checklist), unique=True)) if checklist else []
    descriptions = tuple((c, draw(TEXT)) for c in described)
    return Pipeline.of(draw(TEXT), line, checklist, descriptions=descriptions)


@settings(max_examples=100, deadline=None)
@given(pipelines())
def test_dump_round_trips(p: Pipeline) -> None:
    text = dump(p)
    back = parse(text)
    assert back == p
    assert dump(back) == text


@settings(max_examples=100, deadline=None)
@given(pipelines())
def test_json_round_trips(p: Pipeline) -> None:
    text = to_json(p)
    back = from_json(text)
    assert back == p and back.descriptions == p.descriptions
    assert to_json(back) == text
    assert json.loads(text)["name"] == p.name


@settings(max_examples=100, deadline=None)
@given(pipelines(), pipelines(), st.integers(0, 100))
def test_diff_is_empty_exactly_when_equal(a: Pipeline, b: Pipeline, probability: int) -> None:
    assert diff(a, a) == [] and diff(a, from_json(to_json(a))) == []
    first = a.line[0]
    moved = diff(a, _edit(a, first.key, probability=probability))
    assert moved == ([] if probability == first.probability else [Change(
        "probability", first.key,
        f"stage {first.key!r}: probability {first.probability}% -> {probability}%")])
    assert (diff(a, b) == []) == (a == b)
    changes = diff(a, b)
    assert all(c.text and "\n" not in c.text and c.kind in CHANGE_KINDS for c in changes)
    added = {c.key for c in changes if c.kind == "added"}
    removed = {c.key for c in changes if c.kind == "removed"}
    assert added == set(b.keys) - set(a.keys) and removed == set(a.keys) - set(b.keys)
