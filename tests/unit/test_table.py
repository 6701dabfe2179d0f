"""views/table.py: the Rich-free table writer every table of pipectl goes through."""

from __future__ import annotations

import io

import pytest

from pipectl.views.table import UNLIMITED, Column, Styled, Table, cut, echo, safe, width

ESC = "\x1b"


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch):
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def draw(table: Table, columns: int = 80, stream: io.StringIO | None = None, rows=None) -> str:
    out = stream or io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", str(columns))
        table.write(rows, stream=out)
    return out.getvalue()


# ---------------------------------------------------------------- measuring and cutting


@pytest.mark.parametrize(
    ("text", "cells"),
    [
        ("", 0),
        ("Acme", 4),
        ("Nguyễn Thị Mai", 14),  # Vietnamese, NFC: one cell per letter
        ("Kraków Żagle", 12),  # Polish
        ("Nguye\u0302\u0303n", 6),  # decomposed: the combining marks take no cell
        ("東京", 4),  # CJK: two cells each
        ("ｱ", 1),  # half-width katakana
        ("Ｒ", 2),  # full-width Latin
        ("😀", 2),  # emoji
        ("❤\ufe0f", 2),  # a narrow symbol made emoji by U+FE0F
        ("👨\u200d👩\u200d👧", 2),  # a joined emoji sequence is one grapheme
    ],
)
def test_display_width(text, cells):
    assert width(text) == cells


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Acme Corporation", 16, "Acme Corporation"),  # fits: unchanged
        ("Acme Corporation", 8, "Acme Co…"),
        ("Acme", 1, "…"),
        ("Acme", 0, ""),
        ("東京都庁", 5, "東京…"),  # 2 + 2 + … = 5
        ("東京都庁", 4, "東…"),  # the third cell cannot hold half a wide character
        ("ae\u0301e\u0301e\u0301", 3, "ae\u0301…"),  # the mark stays with its letter
        ("xe\u0302\u0303yz", 3, "xe\u0302\u0303…"),  # both marks stay with their letter
        ("a👨\u200d👩\u200d👧b", 3, "a…"),  # a joined sequence is never split
        ("Nguyễn Thị Mai", 8, "Nguyễn …"),
    ],
)
def test_cut_ends_with_an_ellipsis_and_never_splits_a_grapheme(text, limit, expected):
    got = cut(text, limit)
    assert got == expected
    assert width(got) <= limit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Acme [/x] :warning:", "Acme [/x] :warning:"),  # no markup, no emoji codes
        ("red\x1b[31mtext", "red\\x1b[31mtext"),
        ("a\nb\rc\td", "a\\nb\\rc\\td"),
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("Zürich", "Zürich"),
    ],
)
def test_safe_shows_control_characters_as_escapes(text, expected):
    assert safe(text) == expected


# ---------------------------------------------------------------- tables


def deals_table(**kw) -> Table:
    return Table(
        Column("ID", justify="right", flexible=False), Column("Deal"),
        Column("Value", justify="right", flexible=False), **kw,
    )


def test_looks_like_richs_heavy_head_box_with_right_justified_numbers():
    t = deals_table(title="Deals")
    t.add_row("1", "Acme", "1,200.00 EUR")
    t.add_row("12", "Sao Mai rollout", "18,000.00 EUR")
    assert draw(t) == (
        "Deals\n"
        "┏━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓\n"
        "┃ ID ┃ Deal            ┃         Value ┃\n"
        "┡━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩\n"
        "│  1 │ Acme            │  1,200.00 EUR │\n"
        "│ 12 │ Sao Mai rollout │ 18,000.00 EUR │\n"
        "└────┴─────────────────┴───────────────┘\n"
    )


def test_empty_table_has_its_header_and_no_title_line_without_a_title():
    assert draw(deals_table()) == (
        "┏━━━━┳━━━━━━┳━━━━━━━┓\n"
        "┃ ID ┃ Deal ┃ Value ┃\n"
        "┡━━━━╇━━━━━━╇━━━━━━━┩\n"
        "└────┴──────┴───────┘\n"
    )


def test_lines_rule_between_rows_and_caption_below():
    t = Table("A", "B", lines=True, caption="cap")
    t.add_row("x", ["two", "lines"])
    t.add_row("y", "z")
    assert draw(t) == (
        "┏━━━┳━━━━━━━┓\n"
        "┃ A ┃ B     ┃\n"
        "┡━━━╇━━━━━━━┩\n"
        "│ x │ two   │\n"
        "│   │ lines │\n"
        "├───┼───────┤\n"
        "│ y │ z     │\n"
        "└───┴───────┘\n"
        "     cap\n"
    )


def test_too_wide_shrinks_the_widest_flexible_column_and_keeps_one_line_per_row():
    t = Table(
        Column("ID", justify="right", flexible=False), Column("Deal"), Column("Company"),
        Column("Value", justify="right", flexible=False),
    )
    t.add_row("1", "A very long deal name that cannot fit", "Công ty Sao Mai", "18,000.00 EUR")
    t.add_row("2", "Short", "東京商事株式会社", "5.00 USD")
    text = draw(t, columns=50)
    lines = text.splitlines()
    assert len(lines) == 6  # top, header, rule, two rows, bottom: nothing wrapped
    assert all(width(line) == 50 for line in lines)
    # the two names share what the ID and the amounts (never cut while names can give way)
    # leave: 11 cells each; the wide characters count two cells
    assert lines[3] == "│  1 │ A very lon… │ Công ty Sa… │ 18,000.00 EUR │"
    assert lines[4] == "│  2 │ Short       │ 東京商事株… │      5.00 USD │"


@pytest.mark.parametrize("columns", [40, 60])
def test_every_line_fits_the_width(columns):
    t = deals_table(title="T")
    t.add_row("123", "Nguyễn Thị Mai và 東京 😀 rollout", "1,234,567.00 VND")
    for line in draw(t, columns=columns).splitlines()[1:]:
        assert width(line) <= columns


@pytest.mark.parametrize("columns", [20, 30])
def test_numbers_are_never_cut_even_where_the_table_cannot_fit(columns):
    t = deals_table(title="T")
    t.add_row("123", "Nguyễn Thị Mai và 東京 😀 rollout", "1,234,567.00 VND")
    text = draw(t, columns=columns)
    assert "│ 123 │" in text and "1,234,567.00 VND" in text


def test_columns_are_left_out_in_their_drop_order_before_a_name_is_cut_short():
    t = Table(Column("ID", justify="right", flexible=False), Column("Deal", min_width=20),
              Column("Company", drop=2, min_width=12), Column("Owner", drop=1, min_width=10),
              Column("Value", justify="right", flexible=False))
    t.add_row("1", "Công ty Sao Mai: Support plan", "Công ty Sao Mai", "Anna Kowalska",
              "25,000.00 USD")
    assert draw(t, columns=120).splitlines()[1].split("┃")[1:-1] == [
        " ID ", " Deal                          ", " Company         ", " Owner         ",
        "         Value "]
    at70 = draw(t, columns=70).splitlines()
    assert "Owner" not in at70[1] and "Company" in at70[1]
    at56 = draw(t, columns=56).splitlines()
    assert "Owner" not in at56[1] and "Company" not in at56[1]
    assert "Công ty Sao Mai: Support plan" in at56[3] and "25,000.00 USD" in at56[3]


def test_a_wrapped_amount_never_parts_from_its_currency():
    t = Table(Column("Stage"), Column("Value", justify="right", wrap=True))
    t.add_row("qualification", "12,500.00 EUR + 87,500.00 USD + 1,000.00 GBP")
    for columns in (24, 30, 40):
        lines = draw(t, columns=columns).splitlines()[3:-1]
        cells = [line.split("│")[2].strip() for line in lines]
        assert " ".join(cells) == "12,500.00 EUR + 87,500.00 USD + 1,000.00 GBP"
        assert all(c.split(" + ")[-1].rstrip(" +")[-3:].isalpha() for c in cells), cells


def test_wrapped_column_breaks_at_spaces_and_keeps_words_whole():
    t = Table(Column("Stage"), Column("Value", justify="right", wrap=True))
    t.add_row("qualification", "12,500.00 EUR + 87,500.00 USD")
    lines = draw(t, columns=35).splitlines()
    assert lines[3] == "│ qualification │ 12,500.00 EUR + │"
    assert lines[4] == "│               │   87,500.00 USD │"


def test_streamed_rows_beyond_the_sample_keep_the_sampled_widths():
    rows = iter([("1", "Acme", "1.00 EUR"), ("2", "Beta", "2.00 EUR"),
                 ("3", "A name longer than the sample", "3.00 EUR")])
    t = deals_table(sample=2)
    out = io.StringIO()
    assert t.write(rows, stream=out) == 3
    lines = out.getvalue().splitlines()
    assert lines[5] == "│  3 │ A n… │ 3.00 EUR │"
    assert len({width(x) for x in lines}) == 1


def test_users_text_is_printed_verbatim_and_never_emits_escape_sequences():
    t = deals_table()
    t.add_row("1", "Acme [/x] :warning: [bold]", "-")
    t.add_row("2", "evil\x1b[2J\x1b]0;title\x07", "-")
    text = draw(t, columns=200, stream=Tty())
    assert "Acme [/x] :warning: [bold]" in text
    assert "evil\\x1b[2J\\x1b]0;title\\x07" in text
    assert ESC + "[2J" not in text and "\x07" not in text


# ---------------------------------------------------------------- colour


def styled_table() -> Table:
    t = Table("Name", title="Title")
    t.add_row(Styled(("bold name", "bold"), " plain"))
    return t


def test_no_ansi_when_not_a_terminal():
    assert ESC not in draw(styled_table())


def test_ansi_on_a_terminal():
    text = draw(styled_table(), stream=Tty())
    assert "\x1b[1mName\x1b[0m" in text  # the header is bold
    assert "\x1b[3mTitle\x1b[0m" in text  # the title italic, as Rich draws it
    assert "\x1b[1mbold name\x1b[0m plain" in text


def test_force_color_turns_ansi_on_for_a_pipe(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[1mName\x1b[0m" in draw(styled_table())


@pytest.mark.parametrize("stream", [io.StringIO, Tty])
def test_no_color_wins_over_a_terminal_and_over_force_color(monkeypatch, stream):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ESC not in draw(styled_table(), stream=stream())


def test_echo_styles_only_its_own_pieces(monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = io.StringIO()
    echo(("Rules", "bold"), " [red]x\x1b[0m", "\n", "end", stream=out)
    assert out.getvalue() == "\x1b[1mRules\x1b[0m [red]x\\x1b[0m\nend\n"


@pytest.mark.parametrize(
    ("columns_env", "expected"),
    [(None, UNLIMITED), ("120", 120), ("abc", UNLIMITED)],
)
def test_width_of_a_pipe_is_columns_else_unlimited(monkeypatch, columns_env, expected):
    from pipectl.views.table import terminal_width

    if columns_env is not None:
        monkeypatch.setenv("COLUMNS", columns_env)
    assert terminal_width(io.StringIO()) == expected


def test_a_pipe_without_columns_gets_whole_cells(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    long = "Dubois & Fils: Annual licence, renewed with the Lyon office " * 3
    out = io.StringIO()
    Table(Column("ID", justify="right"), Column("Deal")).write([["1", long.strip()]], out)
    assert long.strip() in out.getvalue() and "…" not in out.getvalue()
