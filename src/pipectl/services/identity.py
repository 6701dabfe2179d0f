"""Who is using pipectl: the actor every event is recorded with, and what ``--owner me``
means.

On a file, the login name, or ``PIPECTL_USER`` when set (a shared machine account, a script
acting for someone). On a PostgreSQL server it will be the database role, set by the server.
"""

from __future__ import annotations

import os
import sqlite3


def actor() -> str | None:
    """PIPECTL_USER, else the login name; None when neither can be found."""
    name = os.environ.get("PIPECTL_USER", "").strip()
    if not name:
        import getpass

        try:
            name = getpass.getuser().strip()
        except Exception:  # no USER/LOGNAME and no passwd entry (a container's uid)
            return None
    if not name:
        return None
    import unicodedata

    return unicodedata.normalize("NFC", name)


def use(conn: sqlite3.Connection) -> None:
    """Record this user as the actor of the events written through ``conn``."""
    from pipectl.store.db import act_as

    act_as(conn, actor())
