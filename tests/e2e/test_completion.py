"""Shell completion in real shells: bash's, zsh's and fish's own completion machinery calls the
function `pipectl --show-completion SHELL` defines, which runs the installed pipectl.

- bash: the function is called as bash calls it on Tab (COMP_LINE, COMP_POINT, COMP_WORDS,
  COMP_CWORD, and readline's word as $2); COMPREPLY is what readline would insert.
- zsh: an interactive zsh in a pseudo-terminal (zsh/zpty) is typed the line and a Tab; a
  wrapper of the compadd builtin records every match zsh's completion system adds.
- fish: `complete -C LINE`, fish's own answer to a Tab (value and description).

A missing shell skips its tests with the reason, unless PIPECTL_REQUIRE_SHELLS is set (.ci/run
sets it: there they fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

EXE = shutil.which("pipectl", path=str(Path(sys.executable).parent)) or shutil.which("pipectl")
pytestmark = pytest.mark.skipif(EXE is None, reason="pipectl is not installed in this environment")

OWNER = "Nguyễn Thị Mai"
AGENCY = textwrap.dedent("""\
    name = "Agency retainers"
    checklist = ["budget"]
    stages = [
      { key = "lead", label = "New lead", probability = 5 },
      { key = "pitch", probability = 50 },
      { key = "signed", kind = "won" },
    ]
    """)


def shell(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("PIPECTL_REQUIRE_SHELLS"):
            pytest.fail(f"{name} is not installed and PIPECTL_REQUIRE_SHELLS is set")
        pytest.skip(f"{name} is not installed (apt-get install {name}; .ci/run installs it)")
    return found


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    """A pipeline: deals 1 and 2 open (owners with a space and accents; EUR and USD), 3 lost
    with a reason, 4 in a second pipeline; PIPECTL_DB names it."""
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PIPECTL_", "_PIPECTL"))}
    e.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), PIPECTL_DB=str(home / "p.db"),
             PATH=f"{Path(EXE).parent}{os.pathsep}{e.get('PATH', '')}", TERM="dumb")
    run("add", "Sao Mai rollout", "--owner", OWNER, "--value", "100", "--currency", "EUR",
        env=e)
    run("add", "Kraków pilot", "--owner", "Anna", "--value", "5", "--currency", "USD", env=e)
    run("add", "Lost one", "--owner", "Anna", env=e)
    run("lose", "3", "--reason", "chose a competitor", env=e)
    (home / "agency.toml").write_text(AGENCY, encoding="utf-8")
    run("pipeline", "apply", str(home / "agency.toml"), env=e)
    run("add", "Retainer", "--pipeline", "Agency retainers", env=e)
    (home / "deals.csv").write_text("name\n", encoding="utf-8")
    (home / "deals.json").write_text("[]", encoding="utf-8")
    return e


# ------------------------------------------------------------------ bash


def bash(line: str, env: dict[str, str], word: str | None = None) -> list[str]:
    """COMPREPLY after a Tab at the end of ``line``; ``word``: readline's word ($2), by
    default the text after the last space."""
    if word is None:
        word = line.rpartition(" ")[2]
    script = textwrap.dedent("""\
        source <(pipectl --show-completion bash) || exit 3
        COMP_LINE=$LINE; COMP_POINT=${#LINE}
        read -ra COMP_WORDS <<< "$LINE"
        [[ $LINE == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        _pipectl_completion pipectl "$WORD" "${COMP_WORDS[COMP_CWORD-1]}"
        printf '%s\\n' "${COMPREPLY[@]}"
        """)
    proc = subprocess.run([shell("bash"), "--norc", "--noprofile", "-c", script],
                          capture_output=True, text=True, timeout=60,
                          env={**env, "LINE": line, "WORD": word}, cwd=env["HOME"])
    assert proc.returncode == 0, proc.stderr
    return [r for r in proc.stdout.split("\n") if r]


def test_bash_completes_commands_and_subcommands(env):
    assert bash("pipectl adv", env) == ["advance"]
    assert bash("pipectl pipeline ", env) == ["apply", "list", "show", "export", "default", "rm"]
    assert set(bash("pipectl ", env)) >= {"add", "list", "advance", "pipeline", "rate", "team",
                                          "db"}


def test_bash_completes_options(env):
    options = bash("pipectl advance 1 --", env)
    assert {"--to", "--note", "--at", "--help"} <= set(options)
    assert "--owner" not in options  # advance has none
    assert {"--db", "--show-completion", "--install-completion", "--version"} <= set(
        bash("pipectl --", env))
    assert "--to" in bash("pipectl advance 1 ", env)  # nothing left to give but options


def test_bash_completes_stage_keys_of_the_deals_pipeline(env):
    assert bash("pipectl advance 1 --to ", env) == [
        "prospecting", "qualification", "meeting", "proposal", "negotiation", "won",
        "post_purchase"]
    assert bash("pipectl advance 1 --to ne", env) == ["negotiation"]
    assert bash("pipectl advance 4 --to ", env) == ["lead", "pitch", "signed"]
    assert bash("pipectl add x --pipeline Agency\\ retainers --stage ", env) == [
        "lead", "pitch", "signed"]
    assert bash("pipectl add x --stage New", env) == []  # a label of the other pipeline


def test_bash_completes_deal_ids_for_what_the_command_takes(env):
    assert bash("pipectl show ", env) == ["1", "2", "3", "4"]
    assert bash("pipectl lose ", env) == ["1", "2", "4"]  # open deals
    assert bash("pipectl reopen ", env) == ["3"]  # lost deals
    assert bash("pipectl show 3", env) == ["3"]


def test_bash_completes_owners_reasons_pipelines_currencies(env):
    assert bash("pipectl list --owner ", env) == ["Anna", "Nguyễn\\ Thị\\ Mai"]
    assert bash("pipectl list --owner ngu", env) == ["Nguyễn\\ Thị\\ Mai"]  # case, accents
    assert bash("pipectl list --owner=N", env, word="N") == ["Nguyễn\\ Thị\\ Mai"]
    # inside a quote the user opened: as it is, and the quote closed
    assert bash('pipectl list --owner "Ngu', env, word="Ngu") == ['Nguyễn Thị Mai"']
    assert bash("pipectl lose 1 --reason ", env) == ["chose\\ a\\ competitor"]
    assert bash("pipectl board --pipeline ", env) == ["default", "Agency\\ retainers"]
    assert bash("pipectl list --in ", env) == ["EUR", "USD"]


def test_bash_completes_file_names_for_files(env):
    assert bash("pipectl import dea", env) == ["deals.csv", "deals.json"]
    assert bash("pipectl --db dea", env) == ["deals.csv", "deals.json"]
    assert bash("pipectl --db=dea", env, word="dea") == ["deals.csv", "deals.json"]
    assert bash("pipectl export -o dea", env) == ["deals.csv", "deals.json"]


def test_bash_reads_the_database_the_line_names(env, tmp_path):
    other = tmp_path / "other.db"
    run("--db", str(other), "add", "Elsewhere", "--owner", "Zofia", env=env)
    assert bash(f"pipectl --db {other} list --owner ", env) == ["Zofia"]
    assert bash(f"pipectl list --db {other} --owner ", env) == ["Zofia"]
    assert bash(f"pipectl --db={other} show ", env) == ["1"]
    missing = tmp_path / "missing.db"
    assert bash(f"pipectl --db {missing} show ", env) == []
    assert not missing.exists()


def test_bash_by_hand_with_comp_words_only(env):
    """The function also answers when only COMP_WORDS and COMP_CWORD are set."""
    script = ("source <(pipectl --show-completion bash); COMP_WORDS=(pipectl adv); "
              "COMP_CWORD=1; _pipectl_completion; printf '%s\\n' \"${COMPREPLY[@]}\"")
    proc = subprocess.run([shell("bash"), "--norc", "-c", script], capture_output=True,
                          text=True, env=env, timeout=60)
    assert proc.stdout.split() == ["advance"]


# ------------------------------------------------------------------ zsh

ZSH_SETUP = """\
PS1='> '
autoload -Uz compinit && compinit -u -D
source <(pipectl --show-completion zsh)
compadd() {{
    local -a found
    builtin compadd -O found "$@"
    (( ${{#found}} )) && print -rl -- $found >> {out}
    builtin compadd "$@"
}}
functions -c _pipectl_completion _pipectl_as_shipped
_pipectl_completion() {{ _pipectl_as_shipped "$@"; print done > {done} }}
"""

# Type the line and a Tab only once the shell is ready, and nothing more until the completion
# is over (zsh gives up a completion when keys wait behind it).
ZSH_DRIVER = """\
zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z "source ${(q)1}; print ready > ${(q)3}"
local junk
for i in {1..400}; do
    [[ -e $3 ]] && break
    zpty -r -t z junk '*' 2>/dev/null
    sleep 0.05
done
rm -f $3
zpty -w -n z "$2"$'\\t'
for i in {1..400}; do
    [[ -e $3 ]] && break
    zpty -r -t z junk '*' 2>/dev/null
    sleep 0.05
done
zpty -d z
[[ -e $3 ]]
"""


def zsh(line: str, env: dict[str, str], tmp_path: Path) -> set[str]:
    """The matches zsh's completion system adds on a Tab at the end of ``line``."""
    exe = shell("zsh")
    out, done = tmp_path / "matches", tmp_path / "done"
    out.write_text("")
    done.unlink(missing_ok=True)
    setup = tmp_path / "setup.zsh"
    setup.write_text(ZSH_SETUP.format(out=out, done=done))
    driver = tmp_path / "driver.zsh"
    driver.write_text(ZSH_DRIVER)
    proc = subprocess.run([exe, "-f", str(driver), str(setup), line, str(done)],
                          capture_output=True, text=True, env={**env, "TERM": "xterm"},
                          timeout=60,  # (zsh has no line editor on a "dumb" terminal)
                          cwd=env["HOME"])
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return set(out.read_text().splitlines())


def test_zsh_completes_commands_options_and_values(env, tmp_path):
    assert zsh("pipectl adv", env, tmp_path) == {"advance"}
    assert {"apply", "list", "rm"} <= zsh("pipectl pipeline ", env, tmp_path)
    assert {"--to", "--note"} <= zsh("pipectl advance 1 --", env, tmp_path)
    assert zsh("pipectl advance 4 --to ", env, tmp_path) == {"lead", "pitch", "signed"}
    assert zsh("pipectl lose ", env, tmp_path) == {"1", "2", "4"}
    assert zsh("pipectl list --owner N", env, tmp_path) == {OWNER}
    assert zsh("pipectl list --owner=N", env, tmp_path) == {OWNER}
    assert zsh("pipectl import dea", env, tmp_path) == {"deals.csv", "deals.json"}
    assert zsh("pipectl --db=dea", env, tmp_path) == {"deals.csv", "deals.json"}


def test_zsh_gives_the_deals_names_as_descriptions(env):
    """What zsh's function reads: each id with its deal's name (shown beside it)."""
    proc = subprocess.run([EXE, "lose", ""], capture_output=True, text=True, timeout=60,
                          env={**env, "_PIPECTL_COMPLETE": "complete_zsh"})
    assert proc.stdout.splitlines() == [
        "values", "", "1:Sao Mai rollout", "2:Kraków pilot", "4:Retainer"]


# ------------------------------------------------------------------ fish


def fish(line: str, env: dict[str, str]) -> list[str]:
    script = f"pipectl --show-completion fish | source; complete -C {quote_fish(line)}"
    proc = subprocess.run([shell("fish"), "--no-config", "-c", script], capture_output=True,
                          text=True, env=env, timeout=60, cwd=env["HOME"])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def quote_fish(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_fish_completes_with_descriptions(env):
    assert fish("pipectl adv", env)[0].startswith("advance\tMove a deal")
    assert fish("pipectl lose ", env) == ["1\tSao Mai rollout", "2\tKraków pilot",
                                          "4\tRetainer"]
    assert fish("pipectl advance 4 --to ", env) == ["lead\tNew lead", "pitch\tPitch",
                                                    "signed\tSigned"]
    assert fish("pipectl list --owner 'Ngu", env) == [OWNER]
    assert fish("pipectl list --owner=A", env) == ["--owner=Anna"]
    assert fish("pipectl import dea", env) == ["deals.csv", "deals.json"]
    assert fish("pipectl --db=dea", env) == ["--db=deals.csv", "--db=deals.json"]


# ------------------------------------------------------------------ the database, carefully


def tab(line: str, env: dict[str, str]) -> tuple[list[str], float]:
    started = time.perf_counter()
    proc = subprocess.run([EXE], capture_output=True, text=True, timeout=60, env={
        **env, "_PIPECTL_COMPLETE": "complete_bash", "_PIPECTL_LINE": line})
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    return proc.stdout.splitlines(), time.perf_counter() - started


def test_no_database_creates_nothing(env, tmp_path):
    e = {**env, "XDG_DATA_HOME": str(tmp_path / "data")}
    e.pop("PIPECTL_DB")
    assert tab("pipectl show ", e)[0] == ["values"]  # the default file: not there
    assert not (tmp_path / "data").exists()
    assert tab(f"pipectl --db {tmp_path / 'new.db'} list --owner ", e)[0] == ["values"]
    assert list(tmp_path.iterdir()) == []


def test_a_locked_database_answers_at_once(env, tmp_path):
    """A writer holding the file exclusively (its -wal not yet written back): nothing, fast."""
    import sqlite3

    db = tmp_path / "locked.db"
    run("--db", str(db), "add", "Held", "--owner", "Anna", env=env)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE deals SET owner = 'Bea'")
        replies, took = tab(f"pipectl --db {db} list --owner ", env)
        assert replies in (["values"], ["values", "Anna"])  # never Bea: not committed
        assert took < 1.5
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert tab(f"pipectl --db {db} list --owner ", env)[0] == ["values", "Anna"]


def test_a_server_that_does_not_answer_costs_about_a_second(env):
    """10.255.255.1 drops packets: the connect would wait; the Tab gives up after ~1 s."""
    replies, took = tab("pipectl --db postgresql://u@10.255.255.1:5432/x list --owner ", env)
    assert replies == ["values"]
    assert took < 2.5
