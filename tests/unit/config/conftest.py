"""The loader tests' fixture: the good config written with its mounted secret file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.config_files import FILE_SECRET, GOOD, write


@pytest.fixture
def good_config(tmp_path: Path) -> Path:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "books-token").write_text(FILE_SECRET + "\n", encoding="utf-8")
    return write(tmp_path, GOOD)
