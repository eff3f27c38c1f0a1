"""The project's documentation as tests read it: the pages under docs/, whose tables, requests and commands tests keep
true (README.md is the short overview; the text tests check lives in these pages)."""

from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def docs_text(name: str) -> str:
    """The text of docs/<name>.md, e.g. docs_text("serving")."""
    return (DOCS / f"{name}.md").read_text()
