"""Make ``import torchvision`` work when its compiled extension cannot load.

PyPI's torchvision matching CPU torch 2.13.0 is a CUDA build: its ``_C.so`` fails to load beside
a CPU torch, and ``torchvision/_meta_registrations.py`` then dies on import because the
``torchvision::nms`` / ``torchvision::qnms`` operators were never defined. That breaks
ultralytics, timm and open_clip. Here we define just those two schemas with a pure-torch NMS,
before torchvision's first import, and only when the real extension is unusable: a matched
torchvision keeps its own kernels untouched.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_state: dict[str, bool] = {}


def _extension_loads() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision installed: nothing to patch
    import torch

    for so in Path(next(iter(spec.submodule_search_locations))).glob("_C*.so"):
        try:
            torch.ops.load_library(str(so))
        except OSError:
            return False
        return True
    return False


def nms(boxes, scores, iou_threshold: float):  # type: ignore[no-untyped-def]
    """Greedy NMS over ``[x1, y1, x2, y2]`` boxes: indices kept, by decreasing score."""
    import torch

    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep: list[int] = []
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        xx1 = torch.maximum(x1[i], x1)
        yy1 = torch.maximum(y1[i], y1)
        xx2 = torch.minimum(x2[i], x2)
        yy2 = torch.minimum(y2[i], y2)
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas - inter).clamp(min=1e-12)
        suppressed |= iou > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=boxes.device)


def ensure_torchvision() -> bool:
    """Install the pure-torch ops if needed; returns True when the fallback is in use.

    Must run before torchvision is first imported; safe to call many times.
    """
    if "patched" in _state:
        return _state["patched"]
    if "torchvision" in sys.modules or _extension_loads():
        _state["patched"] = False
        return False
    import torch

    lib = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 (process-lifetime library)
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", nms, "CompositeExplicitAutograd")
    lib.impl("qnms", nms, "CompositeExplicitAutograd")
    _state["lib"] = lib  # type: ignore[assignment]  # keep the registration alive
    import torchvision.extension

    # torchvision.ops.nms asks this before dispatching; the ops it guards now exist.
    torchvision.extension._has_ops = lambda: True
    _state["patched"] = True
    return True
