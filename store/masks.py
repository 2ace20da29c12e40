"""COCO RLE masks as small pure functions (after segment-anything's ``utils/amg.py``).

The store keeps one mask representation: a COCO RLE dict ``{"size": [h, w], "counts": str}`` with
*compressed* counts as text, so it is JSON-safe and pycocotools reads it as is. These helpers
convert to and from numpy masks and accept the other spellings found in COCO files (counts as
bytes, or uncompressed counts as a list of run lengths).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

# The most runs a written mask may have: deriving a mask's polygon costs about 75 us per run on
# 2 cores (a 256 px one-pixel checkerboard, 65k runs, took 5 s), so 20k runs bound one write to
# about 1.5 s while a real object mask of a 4000 px wide photo has well under 10k.
MAX_RLE_RUNS = 20_000


def _check_size(rle: dict[str, Any]) -> tuple[int, int]:
    size = rle.get("size") if isinstance(rle, dict) else None
    if not (isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        raise ValueError(f"RLE needs size [height, width] of two ints, got {size!r}")
    h, w = size
    if h <= 0 or w <= 0:
        raise ValueError(f"RLE size must be positive, got {size!r}")
    return h, w


def rle_runs(rle: dict[str, Any]) -> int:
    """How many runs ``rle`` has, without decoding (a compressed count ends in a character whose
    continuation bit is clear)."""
    counts = rle.get("counts") if isinstance(rle, dict) else None
    if isinstance(counts, list):
        return len(counts)
    if isinstance(counts, str | bytes):
        text = counts.encode("ascii", "replace") if isinstance(counts, str) else counts
        raw = np.frombuffer(text, np.uint8)
        return int((((raw.astype(np.int16) - 48) & 0x20) == 0).sum())
    return 0


def check_rle_limits(rle: dict[str, Any], max_runs: int = MAX_RLE_RUNS) -> None:
    """ValueError naming the limit when a mask to be written has more than ``max_runs`` runs."""
    runs = rle_runs(rle)
    if runs > max_runs:
        raise ValueError(
            f"mask too complex: {runs:,} run-length counts, the limit is {max_runs:,} "
            "(MAX_RLE_RUNS); send a simpler mask or a polygon"
        )


def normalize_rle(rle: dict[str, Any], *, max_runs: int | None = MAX_RLE_RUNS) -> dict[str, Any]:
    """Return ``rle`` as the store spells it: compressed counts as ``str``.

    Accepts compressed counts as ``str`` or ``bytes`` and uncompressed counts as a list of ints
    (COCO's ``iscrowd`` spelling), whose lengths must add up to ``h * w``. A mask being written
    has at most ``max_runs`` runs (:data:`MAX_RLE_RUNS`); reading a stored one passes None.
    """
    h, w = _check_size(rle)
    if max_runs is not None:
        check_rle_limits(rle, max_runs)
    counts = rle.get("counts")
    if isinstance(counts, bytes):
        return {"size": [h, w], "counts": counts.decode("ascii")}
    if isinstance(counts, str):
        return {"size": [h, w], "counts": counts}
    if isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts):
        if sum(counts) != h * w:
            raise ValueError(f"uncompressed RLE counts sum to {sum(counts)}, expected h*w = {h * w}")
        compressed = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return {"size": [h, w], "counts": compressed["counts"].decode("ascii")}
    raise ValueError(f"RLE counts must be str, bytes or a list of non-negative ints, got {type(counts)}")


def _coco(rle: dict[str, Any]) -> dict[str, Any]:
    """The dict pycocotools' C functions want: counts as bytes."""
    norm = normalize_rle(rle, max_runs=None)  # rows written before a limit stay readable
    return {"size": norm["size"], "counts": norm["counts"].encode("ascii")}


def rle_from_mask(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean (or 0/1) mask as a compressed COCO RLE with ``str`` counts."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (h, w), got shape {mask.shape}")
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8, copy=False)))
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": encoded["counts"].decode("ascii")}


def mask_from_rle(rle: dict[str, Any]) -> np.ndarray:
    """Decode an RLE (any accepted spelling) to a boolean ``(h, w)`` array."""
    return mask_utils.decode(_coco(rle)).astype(bool)


def area_from_rle(rle: dict[str, Any]) -> int:
    """Number of foreground pixels, without decoding."""
    return int(mask_utils.area(_coco(rle)))


def bbox_from_rle(rle: dict[str, Any]) -> list[float]:
    """Tight ``[x, y, w, h]`` box around the foreground in pixels (all zeros for an empty mask)."""
    return [float(v) for v in mask_utils.toBbox(_coco(rle))]


def rle_iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Intersection over union of two masks of the same size (1.0 when both are empty)."""
    if list(a["size"]) != list(b["size"]):
        raise ValueError(f"RLE sizes differ: {a['size']} vs {b['size']}")
    ca, cb = _coco(a), _coco(b)
    union = mask_utils.area(mask_utils.merge([ca, cb], intersect=False))
    if union == 0:
        return 1.0
    inter = mask_utils.area(mask_utils.merge([ca, cb], intersect=True))
    return float(inter) / float(union)
