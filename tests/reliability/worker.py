"""A pipectl user in its own process, for the concurrency tests.

    python -m tests.reliability.worker DB WORKER_NO ROUNDS OWN_DEAL SHARED_DEAL

Each round: `advance OWN --to proposal` or `--to meeting` (forward, then back), and
`note SHARED "w<no>-<round>"`, both through pipectl's real CLI code (in-process CliRunner, so
8 workers x 200 rounds take seconds, not minutes). Prints a JSON summary: the exit codes seen
and every failure's stderr.
"""

from __future__ import annotations

import json
import sys
from collections import Counter


def main(argv: list[str]) -> int:
    db, no, rounds, own, shared = argv[0], int(argv[1]), int(argv[2]), argv[3], argv[4]
    from typer.testing import CliRunner

    from pipectl.cli import app

    runner = CliRunner()
    codes: Counter[int] = Counter()
    failures: list[str] = []
    for r in range(rounds):
        target = "proposal" if r % 2 == 0 else "meeting"
        for args in (["advance", own, "--to", target], ["note", shared, f"w{no}-{r}"]):
            res = runner.invoke(app, ["--db", db, *args])
            codes[res.exit_code] += 1
            if res.exit_code or (res.exception and not isinstance(res.exception, SystemExit)):
                failures.append(f"{args}: {res.exit_code} {res.stderr.strip()} {res.exception!r}")
    print(json.dumps({"codes": dict(codes), "failures": failures[:20]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
