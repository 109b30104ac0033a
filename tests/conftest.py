"""Shared test options and fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).parent / "golden"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="Rewrite tests/golden/* from the current output instead of comparing.",
    )


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[str, bytes], None]:
    """golden(name, output): compare `output` with tests/golden/<name>, byte for byte
    (rewrite the file instead with --update-goldens)."""
    update = request.config.getoption("--update-goldens")

    def check(name: str, output: bytes) -> None:
        path = GOLDEN_DIR / name
        if update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(output)
            return
        assert path.exists(), f"no golden {path}; run pytest --update-goldens to create it"
        # Compared as text (surrogateescape keeps it exact) so that pytest shows a diff.
        expected = path.read_bytes().decode("utf-8", "surrogateescape")
        assert output.decode("utf-8", "surrogateescape") == expected, f"differs from {path}"

    return check
