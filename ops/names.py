"""Names are data: one check for every project, class and user name, on every surface.

A name is trimmed and must be 1..``max_length`` characters with no control characters (NUL,
CR/LF, tabs) and no bidirectional overrides or isolates (which make ``abc`` display as ``cba``
to another user). A project name additionally has no path meaning: no ``/`` or ``\\``, not ``.``
or ``..``; files are never named after it raw anyway (see :mod:`ops.files`). Rows written before
these rules stay readable; the check applies when a name is written.
"""

from __future__ import annotations

import unicodedata

from ops.errors import Invalid

PROJECT_MAX = 200
CLASS_MAX = 64
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def clean_name(value: object, what: str, max_length: int) -> str:
    """``value`` trimmed, or :class:`Invalid` saying which rule it breaks."""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string, got {type(value).__name__}")
    name = value.strip()
    if not name:
        raise Invalid(f"{what} must not be empty, got {value!r}")
    if len(name) > max_length:
        raise Invalid(f"{what} must be at most {max_length} characters, got {len(name)}")
    bad = sorted({c for c in name if unicodedata.category(c) == "Cc" or c in BIDI})
    if bad:
        shown = ", ".join(f"U+{ord(c):04X}" for c in bad)
        raise Invalid(f"{what} must not contain control or text-direction characters, got {shown}")
    return name


def project_name(value: object) -> str:
    name = clean_name(value, "project name", PROJECT_MAX)
    if "/" in name or "\\" in name or name in (".", ".."):
        raise Invalid(f"project name must not contain '/' or '\\' or be '.' or '..', got {name!r}")
    return name


def class_name(value: object) -> str:
    """A class name, with inner runs of white space folded to one space ("traffic  light")."""
    return " ".join(clean_name(value, "class name", CLASS_MAX).split())
