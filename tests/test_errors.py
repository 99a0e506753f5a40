"""The error family has one table, the classes of facedb/errors.py: the Rust engine's codes,
docs/engine.md's table and ../shared/CONTRACTS.md's table must agree with it."""

from __future__ import annotations

import builtins
import re
from pathlib import Path

import pytest

import facedb
from facedb import _native, errors

from .helpers import missing

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = ROOT.parent / "shared" / "CONTRACTS.md"


def family() -> dict[str, type[errors.FaceDBError]]:
    """Every class errors.py exports, by name."""
    classes = {name: getattr(errors, name) for name in errors.__all__}
    assert all(issubclass(c, errors.FaceDBError) for c in classes.values())
    return classes


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first Markdown table after ``heading``, without the header rows."""
    lines = text[text.index(heading) :].splitlines()
    rows: list[list[str]] = []
    for line in lines[1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return [r for r in rows[2:]]


def names(cell: str) -> list[str]:
    """The names in a cell, without backticks and parenthesised remarks."""
    cell = re.sub(r"\([^)]*\)", "", cell).replace("`", "")
    return [n.strip() for n in cell.split(",") if n.strip()]


def builtin_bases(cls: type) -> set[str]:
    """The builtin exceptions a class is also, below Exception."""
    return {
        b.__name__
        for b in cls.__mro__
        if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
    }


def test_every_error_class_has_its_own_code_http_status_and_exit() -> None:
    for name, cls in family().items():
        assert re.fullmatch(r"[a-z_]+", cls.code), name
        assert 400 <= cls.http_status <= 599, name
        assert 1 <= cls.exit_code <= 6, name
    # A code names one kind of error: a subclass either keeps its parent's row or has its own code.
    by_code: dict[str, set[tuple[int, int]]] = {}
    for cls in family().values():
        by_code.setdefault(cls.code, set()).add((cls.http_status, cls.exit_code))
    assert all(len(v) == 1 for v in by_code.values()), by_code


def test_every_rust_error_maps_to_the_class_with_its_code() -> None:
    """Each variant of rust/error.rs, through python.rs's mapping, is a class with that code."""
    kinds = _native.error_kinds()
    assert len(kinds) == len({code for code, _ in kinds}) >= 6
    for code, class_name in kinds:
        cls = family()[class_name]
        assert cls.code == code, (class_name, cls.code, code)


def test_the_rust_codes_are_the_ones_in_error_rs() -> None:
    """Nothing in rust/error.rs's code() escapes error_kinds (checked when the sources ship)."""
    source = ROOT / "rust" / "error.rs"
    if not source.is_file():
        pytest.skip("no Rust sources here")
    written = set(re.findall(r'=> "([a-z_]+)"', source.read_text()))
    assert written == {code for code, _ in _native.error_kinds()}


def test_native_errors_are_raised_as_their_classes(engine: facedb.FaceEngine, tmp_path: Path) -> None:
    with pytest.raises(facedb.ImageNotFound) as info:
        engine.detect(tmp_path / "missing.jpg")
    assert info.value.code == "image_not_found"
    with pytest.raises(facedb.ConfigError) as config:
        facedb.similarity([1.0], [1.0, 2.0])
    assert config.value.code == "invalid_config"


def test_readme_table_agrees_with_the_classes() -> None:
    rows = table_rows((ROOT / "docs" / "engine.md").read_text(), "### Errors")
    documented: dict[str, list[str]] = {}
    for row in rows:
        assert len(row) == 5, row
        (name,) = names(row[0])
        documented[name] = row
    missing = set(family()) - set(documented)
    assert not missing, f"docs/engine.md's error table lacks {sorted(missing)}"
    unknown = set(documented) - set(family())
    assert not unknown, f"docs/engine.md's error table names classes errors.py lacks: {sorted(unknown)}"
    for name, (_, also, code, http, exit_code) in documented.items():
        cls = family()[name]
        assert code.strip("`") == cls.code, name
        assert int(http) == cls.http_status, name
        assert int(exit_code) == cls.exit_code, name
        want = set() if also == "-" else set(names(also))
        assert want <= builtin_bases(cls), name
        assert (not want) == (not builtin_bases(cls)), name
        for builtin in want:
            assert issubclass(cls, getattr(builtins, builtin)), name


def test_contracts_table_agrees_with_the_classes() -> None:
    if not CONTRACTS.is_file():
        missing("no ../shared/CONTRACTS.md here")
    rows = table_rows(CONTRACTS.read_text(), "## Errors, CLI and HTTP")
    assert rows
    for row in rows:
        classes, also, codes, statuses, exits = row[0], row[1], names(row[2]), names(row[3]), names(row[4])
        for i, name in enumerate(names(classes)):
            cls = family()[name]
            # A row may list several classes with a code each, or one class and its subclasses'
            # codes ("image_invalid, image_too_large" with "422, 413").
            code = codes[i] if len(codes) == len(names(classes)) else cls.code
            assert code in codes and cls.code == code, (name, codes)
            status = statuses[codes.index(code)] if len(statuses) == len(codes) else statuses[0]
            assert int(status) == cls.http_status, name
            assert int(exits[0] if len(exits) == 1 else exits[i]) == cls.exit_code, name
            assert issubclass(cls, getattr(builtins, also)), name


def test_a_refusal_says_enroll_anyway_in_the_caller_s_terms() -> None:
    e = facedb.EnrollmentRefused("nothing enrolled: a.jpg: a likely mislabel (force=True to enroll)")
    assert e.message_for("--force").endswith("(--force to enroll)")
    assert "force=True" in str(e), "Python callers read Python's spelling"


def test_a_missing_extra_names_its_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facedb.extras import load

    with pytest.raises(facedb.MissingExtra) as caught:
        load("facedb_no_such_module", "video", "watching a video")
    assert isinstance(caught.value, ImportError) and caught.value.extra == "video"
    assert str(caught.value) == (
        "watching a video needs the 'video' extra (facedb_no_such_module is not installed): "
        "pip install 'facedb-rs[video]'"
    )
    # A module that is there but fails on an import of its own is not a missing extra.
    (tmp_path / "half_installed.py").write_text("import facedb_also_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="facedb_also_missing") as other:
        load("half_installed", "video", "watching a video")
    assert not isinstance(other.value, facedb.MissingExtra)


def test_the_milvus_drivers_own_error_logs_reach_no_output(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """During a Milvus restart the CLI printed pymilvus's whole traceback before facedb's
    one-line error: the driver's records go to the log at DEBUG only."""
    import logging

    import facedb.milvus  # noqa: F401 (installs the redirection)

    # pymilvus's own stderr handler (made at its import, so not capsys's) is gone...
    driver = logging.getLogger("pymilvus")
    assert not [h for h in driver.handlers if isinstance(h, logging.StreamHandler)], driver.handlers
    try:
        raise ConnectionError("server gone")
    except ConnectionError:
        logging.getLogger("pymilvus.decorators").error("RPC error: [search]", exc_info=True)
    assert "server gone" not in capsys.readouterr().err  # ...and no handler of ours prints it
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("pymilvus.client").error("again")
    (record,) = [r for r in caplog.records if r.getMessage() == "again"]
    assert record.levelno == logging.DEBUG
