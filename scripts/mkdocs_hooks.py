"""MkDocs hook: the site's front page is README.md itself (its links to docs/X.md made
relative), so that the two never drift apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_README = Path(__file__).resolve().parent.parent / "README.md"


def on_files(files: Files, config: Any) -> Files:
    """Adds index.md, generated from README.md."""
    text = _README.read_text(encoding="utf-8").replace("](docs/", "](")
    files.append(File.generated(config, "index.md", content=text))
    return files
