"""Names are data: the one check for project and class names (length, characters, no path)."""

from __future__ import annotations

import pytest

from ops import names
from ops.errors import Invalid


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("../x", "'/'"),
        ("a/b", "'/'"),
        ("a\\b", "'/'"),
        ("..", "'..'"),
        (".", "'.'"),
        ("nul\x00byte", "U+0000"),
        ("carriage\rreturn", "U+000D"),
        ("line\nfeed", "U+000A"),
        ("tab\tbed", "U+0009"),
        ("rlo\u202eabc", "U+202E"),
        ("isolate\u2066x", "U+2066"),
        ("", "empty"),
        ("   ", "empty"),
        ("x" * 201, "at most 200"),
        (None, "a string"),
    ],
)
def test_bad_project_names_are_refused(value: object, reason: str) -> None:
    with pytest.raises(Invalid, match="project name") as refused:
        names.project_name(value)
    assert reason in str(refused.value)


@pytest.mark.parametrize(
    ("value", "clean"),
    [
        ("streets", "streets"),
        ("  spaced  ", "spaced"),
        ("x" * 200, "x" * 200),
        ("Straße 2026", "Straße 2026"),
    ],
)
def test_good_project_names_are_trimmed(value: str, clean: str) -> None:
    assert names.project_name(value) == clean


def test_class_names_fold_spaces_and_have_their_own_limit() -> None:
    assert names.class_name("  traffic   light ") == "traffic light"
    assert names.class_name("a/b") == "a/b"  # a class name is never a path
    with pytest.raises(Invalid, match="at most 64"):
        names.class_name("c" * 65)
    with pytest.raises(Invalid, match=r"U\+202E"):
        names.class_name("car\u202e")
