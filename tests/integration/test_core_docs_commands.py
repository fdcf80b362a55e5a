"""Every vimo command and config override shown in README.md and docs/*.md exists as written."""
import re

import pytest

from conftest import SOURCE_DIR, run_vimo

DOCS = [SOURCE_DIR / "README.md", *sorted((SOURCE_DIR / "docs").glob("*.md"))]
OVERRIDE = re.compile(r"^([a-z_]+(?:\.[a-z_0-9]+)+)=(.+)$")
# Config-driven commands whose schemas the README's generic override examples may come from.
CONFIG_COMMANDS = [["tokenizer", "train"], ["pretrain"], ["data", "prepare"]]


def doc_lines():
    """(file, line number, text, inside a fenced code block) of every line; in a code block a line ending
    in a backslash is joined with the next (a shell continuation), numbered by its first line."""
    for f in DOCS:
        fenced = False
        held, start = "", 0
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced and line.rstrip().endswith("\\"):
                held, start = held + line.rstrip()[:-1] + " ", start or i
                continue
            if held:
                line, i, held, start = held + line.strip(), start, "", 0
            yield f.name, i, line, fenced


def commands():
    """(where, argv after `vimo`) for each `vimo ...` invocation in a code line or inline code span."""
    out = []
    for name, i, line, fenced in doc_lines():
        if fenced:
            spans = [line] if re.match(r"^\s*(build/)?vimo ", line) else []
        else:
            spans = [c for c in line.split("`")[1::2] if re.search(r"\bvimo ", c)]
        for s in spans:
            s = s.split("#")[0]
            m = re.search(r"(?:^|\s)(?:build/)?vimo\s+(.*)$", s.strip())
            if m:
                out.append((f"{name}:{i}", m.group(1).split()))
    return out


def subcommand(argv):
    words = []
    for w in argv:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", w):
            break
        words.append(w)
    return words


def test_docs_show_commands():
    assert len(commands()) > 20


@pytest.mark.parametrize("where,argv", commands(), ids=lambda x: x if isinstance(x, str) else None)
def test_every_documented_command_exists(vimo_bin, where, argv):
    words = subcommand(argv)
    if not words:
        pytest.skip(f"{where}: `vimo {' '.join(argv)}` names no subcommand")
    # The longest prefix that is a command (positional arguments follow the subcommand words).
    for n in range(len(words), 0, -1):
        if run_vimo(vimo_bin, *words[:n], "--help", check=False).returncode == 0:
            break
    else:
        pytest.fail(f"{where}: `vimo {' '.join(words)}` is not a vimo command")
    if "--config" not in argv:
        return
    cfg = argv[argv.index("--config") + 1]
    if "<" in cfg or not (SOURCE_DIR / cfg).exists():
        pytest.skip(f"{where}: {cfg} is a placeholder")
    # As written, less optional parts ([...]) and placeholders (<...>); --dump-config resolves and exits.
    args = [str(SOURCE_DIR / a) if a == cfg else a for a in argv if not re.search(r"[\[\]<>]|\.\.\.", a)]
    p = run_vimo(vimo_bin, *args, "--dump-config", check=False, cwd=SOURCE_DIR)
    assert p.returncode == 0, f"{where}: vimo {' '.join(argv)}\n{p.stdout}\n{p.stderr}"


def test_readme_override_examples_are_real_keys(vimo_bin):
    readme = (SOURCE_DIR / "README.md").read_text()
    examples = [m.group(1) for m in (OVERRIDE.match(s) for s in re.findall(r"`([^`\s]+)`", readme)) if m]
    assert examples, "README.md shows no override examples"
    dumps = [run_vimo(vimo_bin, *c, "--dump-config").stdout for c in CONFIG_COMMANDS]
    keys = set()
    for d in dumps:
        section = None
        for line in d.splitlines():
            m = re.match(r"^([a-z_]+):", line)
            if m:
                section = m.group(1)
            m = re.match(r"^  ([a-z_0-9]+):", line)
            if m and section:
                keys.add(f"{section}.{m.group(1)}")
    unknown = [e for e in examples if e not in keys]
    assert not unknown, f"README.md overrides that no command accepts: {unknown}"
