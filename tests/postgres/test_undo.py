"""pipectl undo on a server (issue 16): a team's rep undoes changes of their own deals only, a
viewer none, a manager any; migration 11 upgrades a schema-10 server."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli
from tests.engines import drop_database, new_database, url_of
from tests.postgres.test_team import Team, team  # noqa: F401 (the fixture)


def _stage(on: Team, deal_id: int) -> str:
    return json.loads(on.cli()("show", str(deal_id), "--json").stdout)["stage"]


def test_a_rep_undoes_only_their_own_deals_and_a_viewer_none(team: Team) -> None:  # noqa: F811
    team.cli("anna")("advance", "1")
    team.cli("bob")("advance", "2")
    before = team.state()
    for who in ("anna", "vic"):
        err = team.cli(who)("undo", "2", "--yes", code=1).stderr
        assert "permission denied" in err and "nothing was changed" in err, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert team.state() == before
    assert team.sql("SELECT count(*) FROM undos") == [(0,)]
    out = team.cli("anna")("undo", "1", "--yes").stdout
    assert "Undone: advance prospecting -> qualification" in out
    assert _stage(team, 1) == "prospecting"
    assert team.sql("SELECT actor FROM undos") == [(team.roles["anna"],)]
    team.cli("carol")("undo", "2", "--yes")  # a manager undoes anyone's
    assert _stage(team, 2) == "prospecting"
    voided = team.sql("SELECT deal_id, voided_by FROM events WHERE voided_by IS NOT NULL "
                      "ORDER BY 1")
    assert [d for d, _ in voided] == [1, 2]
    # by hand, the voided event stays voided and nothing else of it changes
    import psycopg

    with psycopg.connect(team.url("carol"), autocommit=True) as conn:
        for statement in ("UPDATE events SET voided_by = NULL WHERE deal_id = 1",
                          "UPDATE events SET at = at WHERE deal_id = 1",
                          "DELETE FROM undos"):
            with pytest.raises(psycopg.Error):
                conn.execute(statement)
    team.cli()("db", "check")


# migrations 11 (and what follows) taken back by hand: the server as pipectl's schema 10 made it
_BACK_TO_10 = """
DROP POLICY IF EXISTS team_rep_void ON events;
DROP TRIGGER events_no_update ON events;
DROP TRIGGER events_void_once ON events;
DROP TRIGGER read_dirty_void ON events;
DROP FUNCTION pipectl_void_once();
ALTER TABLE events DROP COLUMN voided_by;
DROP TABLE undos;
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX events_moves ON events (deal_id, at, to_stage, pipeline_id)
    WHERE to_stage IS NOT NULL;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION pipectl_append_only();
CREATE OR REPLACE FUNCTION pipectl_number_ids() RETURNS void LANGUAGE plpgsql
    SECURITY DEFINER AS $$
BEGIN
    PERFORM setval(pg_get_serial_sequence('events', 'id'),
                   (SELECT coalesce(max(id), 0) + 1 FROM events), false);
END $$;
DROP INDEX IF EXISTS deals_search_start;
DROP INDEX IF EXISTS deals_lost_reason;
DELETE FROM pipectl_migrations WHERE version > 10;
"""


def test_migration_11_upgrades_a_schema_10_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    db = new_database()
    try:
        cli = Cli(url_of(db))  # type: ignore[arg-type]
        cli("add", "Acme", "--value", "100", "--at", "2026-11-02")
        cli("advance", "1", "--at", "2026-11-03")
        report = cli.json("report")
        import psycopg

        with psycopg.connect(url_of(db), autocommit=True) as conn:
            conn.execute(_BACK_TO_10)
            assert conn.execute("SELECT to_regclass('undos')").fetchone() == (None,)
        assert cli.json("report") == report  # upgraded first, the same figures
        with psycopg.connect(url_of(db), autocommit=True) as conn:
            assert conn.execute("SELECT max(version) FROM pipectl_migrations"
                                ).fetchone()[0] >= 11
        assert "Undone: advance prospecting -> qualification" in cli("undo", "--yes").stdout
        assert cli.json("show", "1")["stage"] == "prospecting"
        assert cli.json("report") != report
        cli("db", "check")
    finally:
        drop_database(db)


def test_db_copy_moves_the_undos_and_the_marks(tmp_path, pg_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIPECTL_NOW", "2026-12-01T09:00:00Z")
    source = Cli(tmp_path / "a.db")
    source("add", "Acme", "--value", "100", "--at", "2026-11-02")
    source("advance", "1", "--at", "2026-11-03")
    source("undo", "--yes")
    shown = source.json("show", "1")
    source("db", "copy", "--to", pg_url)
    server = Cli(pg_url)  # type: ignore[arg-type]
    assert server.json("show", "1") == shown
    assert server.json("report") == source.json("report")
    back = tmp_path / "back.db"
    source("db", "copy", "--from", pg_url, "--to", str(back))
    assert Cli(back).json("show", "1") == shown
    server("undo", "--yes", code=1)  # the creation is what is left
