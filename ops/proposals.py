"""Proposals: a model's suggestion for one image (a mask from a click or a box), written nowhere.

A proposal costs model time (a segmenter pass of seconds on a CPU), so asking for one needs what
creating the annotation needs (``annotation.propose``, the annotator's rule), although nothing is
stored: a viewer cannot keep a shared server's models busy. Storing the proposal is a separate
operation (:func:`ops.annotations.create`), checked again there. The model work comes in as a
callable (ops imports only ``store``), run after the check and outside any open session.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from ops import images
from ops.caller import Caller
from ops.unit import Env, require
from store.models import Image

T = TypeVar("T")


def propose(
    env: Env,
    caller: Caller | None,
    project_id: int,
    ref: int | str,
    compute: Callable[[Image, Path], T],
) -> T:
    """``compute(image, path)`` for image ``ref`` of the project, once the caller may propose.

    Refuses before the model runs (Forbidden, Unauthenticated); NotFound for an unknown image.
    """
    require(env, caller, project_id, "annotation.propose")
    image, path = images.file_path(env, caller, project_id, ref)
    return compute(image, path)
