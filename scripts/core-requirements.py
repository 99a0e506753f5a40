"""Prints facedb's core requirements (pyproject.toml's [project] dependencies), one per line:
what `make demo` installs, held to requirements-test.lock's versions by pip's --constraint."""

import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
for requirement in project["dependencies"]:
    print(requirement)
