"""Which backends make up a model stack, and how each model id is built: a plain dict, no plugins.

``build_backends("lite", models_dir)`` returns the detector, segmenter and verifier of a stack;
each is built on first access, so a stack whose verifier file is missing can still detect. Model
files are found through ``tools.models.resolve``, whose ``ModelMissing`` tells the user which
command provides them. The one deliberate exception: a missing ISNet file degrades the lite
segmenter to GrabCut (no weights), logged, and visible in the segmenter's ``model_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from tools.backends.base import Detector, Segmenter, Verifier

log = logging.getLogger(__name__)

Role = Literal["detector", "segmenter", "verifier"]
Builder = Callable[..., Any]


def _resolve(models_dir: Path, catalog_id: str) -> Path:
    from tools.models.resolve import resolve

    return resolve(models_dir, catalog_id)


def _lite_detector(arch: str) -> Builder:
    def build(models_dir: Path, *, threads: int | None = None, **_: Any) -> Detector:
        from tools.backends.lite_detector import LiteDetector

        return LiteDetector(
            _resolve(models_dir, arch),
            arch=arch,
            threads=threads,
            model_id=f"lite-{arch}",  # type: ignore[arg-type]
        )

    return build


def _lite_isnet(size: str) -> Builder:
    """ISNet of ``size``: its any-size graph if fetched, else the fixed 1024-px file, else GrabCut."""

    def build(models_dir: Path, *, threads: int | None = None, **_: Any) -> Segmenter:
        from tools.backends.lite_segmenter import LiteSegmenter
        from tools.models.catalog import entries
        from tools.models.resolve import ModelMissing

        known = {entry.id for entry in entries("lite")}
        wanted = [cid for cid in (f"isnet-{size}-dynamic", f"isnet-{size}") if cid in known]
        for catalog_id in wanted:
            try:
                path = _resolve(models_dir, catalog_id)
            except ModelMissing as missing:
                log.info("%s", missing)
                continue
            if catalog_id != wanted[0]:
                log.warning(
                    "Segmenting with %s at its fixed 1024x1024, about 2 s a box; `labelwright models "
                    "fetch %s` builds the any-size graph, several times faster.",
                    path.name,
                    wanted[0],
                )
            return LiteSegmenter(path, threads=threads, model_id=f"lite-isnet-{size}")
        log.warning(
            "No ISNet %s file: run `labelwright models fetch %s`. Segmenting with GrabCut (no "
            "weights) instead.",
            size,
            wanted[0],
        )
        return LiteSegmenter(None)

    return build


def _lite_grabcut(models_dir: Path, **_: Any) -> Segmenter:
    from tools.backends.lite_segmenter import LiteSegmenter

    return LiteSegmenter(None)


def _lite_efficientnet(models_dir: Path, *, threads: int | None = None, **_: Any) -> Verifier:
    from tools.backends.lite_verifier import LiteVerifier

    return LiteVerifier(_resolve(models_dir, "efficientnet-lite0"), threads=threads)


def _yolo_world(size: str) -> Builder:
    def build(
        models_dir: Path,
        *,
        device: str = "auto",
        random_init: bool = False,
        precision: str = "auto",
        **_: Any,
    ) -> Detector:
        from tools.backends.yolo_world import YOLOWorldDetector

        return YOLOWorldDetector(
            models_dir, size, device=device, random_init=random_init, precision=precision
        )

    return build


def _sam2(config: str) -> Builder:
    def build(
        models_dir: Path,
        *,
        device: str = "auto",
        random_init: bool = False,
        precision: str = "auto",
        **_: Any,
    ) -> Segmenter:
        from tools.backends.sam2_segmenter import SAM2Segmenter

        return SAM2Segmenter(models_dir, config, device=device, random_init=random_init, precision=precision)

    return build


def _clip(
    models_dir: Path, *, device: str = "auto", random_init: bool = False, precision: str = "auto", **_: Any
) -> Verifier:
    from tools.backends.clip_verifier import ClipVerifier

    return ClipVerifier(models_dir, "ViT-B-32", device=device, random_init=random_init, precision=precision)


MODELS: dict[str, tuple[Role, Builder]] = {
    "lite-centernet": ("detector", _lite_detector("centernet")),
    "lite-nanodet": ("detector", _lite_detector("nanodet")),
    "lite-isnet-small": ("segmenter", _lite_isnet("small")),
    "lite-isnet-medium": ("segmenter", _lite_isnet("medium")),
    "lite-grabcut": ("segmenter", _lite_grabcut),
    "lite-efficientnet": ("verifier", _lite_efficientnet),
    **{f"yolo-world-v2-{size}": ("detector", _yolo_world(size)) for size in ("s", "m", "l", "x")},
    **{f"sam2.1-{cfg}": ("segmenter", _sam2(cfg)) for cfg in ("tiny", "small", "base_plus", "large")},
    "clip-vit-b-32": ("verifier", _clip),
}

# NanoDet is the lite default: on bus.jpg, zidane.jpg and three skimage photos, boxed by hand, it found
# 10 of 13 objects at threshold 0.3 (CenterNet 7) for 80 ms of CPU per image (CenterNet 145 ms).
# ISNet medium is the default segmenter: its masks equal small's (IoU 0.999 on bus.jpg), and on CPU it
# is faster at every input size (small is a dynamically quantised copy whose ConvInteger runs slower:
# 1024 px 4.5 vs 2.0 s, 384 px 0.59 vs 0.23 s on two cores). Its any-size form (isnet-medium-dynamic)
# is used when present, so each crop runs at a side that follows its size.
STACKS: dict[str, dict[Role, str]] = {
    "lite": {"detector": "lite-nanodet", "segmenter": "lite-isnet-medium", "verifier": "lite-efficientnet"},
    "full": {"detector": "yolo-world-v2-s", "segmenter": "sam2.1-tiny", "verifier": "clip-vit-b-32"},
}


def _project_yolo(model_id: str) -> Builder:
    def build(models_dir: Path, *, device: str = "auto", **_: Any) -> Detector:
        from tools.backends.clip_verifier import pick_device
        from tools.backends.project_yolo import ProjectYOLODetector
        from tools.models.trained import find

        model = find(models_dir, model_id)
        return ProjectYOLODetector(
            models_dir / model.weights, model.classes, model_id=model.model_id,
            imgsz=int(model.provenance.get("imgsz", 640)), device=pick_device(device),
        )  # fmt: skip

    return build


def model(model_id: str) -> tuple[Role, Builder]:
    """The role and builder of ``model_id``: a catalog model, or a detector trained on a project
    (``project-<id>-yolo``, see ``tools.models.trained``). KeyError when it is neither."""
    from tools.models.trained import is_trained_id

    if model_id in MODELS:
        return MODELS[model_id]
    if is_trained_id(model_id):
        return "detector", _project_yolo(model_id)
    raise KeyError(model_id)


# what the builders take; anything else is a mistake
OPTIONS = ("threads", "device", "random_init", "precision")


@dataclass
class Backends:
    """A stack's three backends, each built on first access with the stack's options."""

    stack: str
    models_dir: Path
    ids: dict[Role, str]
    options: dict[str, Any] = field(default_factory=dict)

    def _build(self, role: Role) -> Any:
        _, builder = model(self.ids[role])
        return builder(self.models_dir, **self.options)

    @cached_property
    def detector(self) -> Detector:
        return self._build("detector")

    @cached_property
    def segmenter(self) -> Segmenter:
        return self._build("segmenter")

    @cached_property
    def verifier(self) -> Verifier:
        return self._build("verifier")


def build_backends(
    stack: str,
    models_dir: Path,
    *,
    detector: str | None = None,
    segmenter: str | None = None,
    verifier: str | None = None,
    **options: Any,
) -> Backends:
    """The backends of ``stack`` ("lite" or "full"), with any role swapped for another model id.

    ``options`` go to every builder, which takes what it knows: ``threads`` (lite), ``device``,
    ``random_init`` and ``precision`` ("auto", "fp32", "fp16", "bf16"; full). Nothing is loaded
    here; unknown stacks and ids fail here, though.
    """
    if stack not in STACKS:
        raise ValueError(f"unknown model stack {stack!r}: expected one of {sorted(STACKS)}")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown backend options {unknown}: expected some of {list(OPTIONS)}")
    ids = dict(STACKS[stack])
    for role, chosen in (("detector", detector), ("segmenter", segmenter), ("verifier", verifier)):
        if chosen is None:
            continue
        choices = sorted(mid for mid, (r, _) in MODELS.items() if r == role)
        if chosen not in choices and not (role == "detector" and chosen.startswith("project-")):
            raise ValueError(
                f"unknown {role} model id {chosen!r}: expected one of {choices} or project-<id>-yolo"
            )
        if role == "detector" and chosen not in choices:
            from tools.models.trained import find

            find(Path(models_dir), chosen)  # ValueError: not such an id, or nothing trained yet
        ids[role] = chosen  # type: ignore[index]
    return Backends(stack=stack, models_dir=Path(models_dir), ids=ids, options=options)  # type: ignore[arg-type]
