"""PostgreSQL: a team's pipeline on a server (``--db postgresql://...``).

psycopg is imported only by ``connection``, and only when a server URL is used: nothing in
this file imports it, so the SQLite start-up path does not pay for it.
"""

from __future__ import annotations

SCHEMES = ("postgresql://", "postgres://")


def is_url(text: str | None) -> bool:
    """Does ``--db`` (or PIPECTL_DB) name a PostgreSQL server rather than a file?"""
    return bool(text) and text.strip().lower().startswith(SCHEMES)  # type: ignore[union-attr]


def masked(url: str) -> str:
    """The URL as pipectl shows it: a password in it replaced by ``***`` (also one given as a
    ``password=`` parameter). Never raises: a URL it cannot read is shown as its scheme and
    host alone."""
    from urllib.parse import urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            if ":" in user:
                user = user.split(":", 1)[0] + ":***"
            netloc = f"{user}@{host}"
        query = "&".join(
            (p.split("=", 1)[0] + "=***") if p.lower().startswith("password=") else p
            for p in parts.query.split("&")
        ) if parts.query else ""
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return url.split("://", 1)[0] + "://***"


def password_of(url: str) -> str | None:
    """The password written in the URL, if any (so that an error text quoting it can be
    cleaned of it)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    for p in parts.query.split("&"):
        if p.lower().startswith("password="):
            return p.split("=", 1)[1] or None
    return None
