"""The documentation a user navigates: every command and flag of ``--help`` in docs/cli.md, every
page linked from the README, every relative link pointing at a file that exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from qcheck.cli.parser import build_parser

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 12 * 1024


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_every_command_and_flag_of_help_is_in_the_cli_page() -> None:
    page = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    missing = []
    for name, parser in _commands().items():
        if f"qcheck {name}" not in page:
            missing.append(f"qcheck {name}")
        for action in parser._actions:
            missing += [f"{name} {flag}" for flag in action.option_strings
                        if flag not in ("-h", "--help") and f"`{flag}" not in page]
    assert missing == []


def test_the_readme_is_a_front_page_linking_every_doc() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= README_LIMIT
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))
    assert pages and [p for p in pages if f"]({p})" not in readme] == []
    assert "](benchmarks/README.md)" in readme and "](CHANGELOG.md)" in readme


def test_relative_links_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
                 ROOT / "benchmarks" / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []
