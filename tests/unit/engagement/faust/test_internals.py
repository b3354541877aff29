"""Every private internal of Faust that engagement/faust/README.md names is still where it says:
a Faust upgrade that moves one fails here, not in production."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import version
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[4] / "src" / "engagement" / "faust" / "README.md"
ROW = re.compile(r"^\| `([\w/]+\.py)` \| `(_\w+)` \|", re.M)


def _rows() -> list[tuple[str, str]]:
    return ROW.findall(README.read_text(encoding="utf-8"))


def _source(path: str) -> str:
    package, _, rest = path.partition("/")
    origin = importlib.import_module(package).__file__
    assert origin is not None
    return (Path(origin).parent / rest).read_text(encoding="utf-8")


def test_the_readme_names_the_pinned_faust_version() -> None:
    assert version("faust-streaming") == "0.15.3"
    assert "faust-streaming==0.15.3" in README.read_text(encoding="utf-8")


def test_the_table_is_read() -> None:
    assert len(_rows()) >= 20


@pytest.mark.parametrize(("path", "name"), _rows())
def test_each_internal_is_defined_where_the_readme_says(path: str, name: str) -> None:
    defined = re.compile(rf"(def {name}\b|self\.{name}\s*[:=])")
    assert defined.search(_source(path)), f"{name} is no longer defined in {path}"
