"""``verify``: how well do crops match a label? Scores in [0, 1], or "cannot verify" for labels
the verifier does not know (the lite verifier is an ImageNet classifier: it has no "person")."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field, model_validator

from store.categories import get_category
from store.db import new_session
from store.models import Annotation
from tools.pipeline import ImageRef, Label, load_rgb, resolve_image, verify_scores
from tools.registry import Tool, ToolContext, ToolError, ToolResult


class VerifyArgs(BaseModel):
    annotation_ids: list[int] | None = Field(
        None, min_length=1, max_length=200, description="Annotations to check against their own class."
    )
    image: ImageRef | None = None
    box: list[float] | None = Field(
        None, min_length=4, max_length=4, description="With image: the region [x1, y1, x2, y2] to check."
    )
    label: Label | None = Field(None, description="With image and box: the class to check; else overrides.")

    @model_validator(mode="after")
    def _target(self) -> VerifyArgs:
        if self.annotation_ids is None and (self.image is None or self.box is None or self.label is None):
            raise ValueError("give annotation_ids, or image with box and label")
        return self


class Check(BaseModel):
    target: str  # "#12" or "box"
    label: str
    score: float | None  # None: the verifier cannot judge this label


class VerifyResult(ToolResult):
    model: str
    checks: list[Check]

    def text(self) -> str:
        return "; ".join(
            f"{c.target} {c.label}: " + ("cannot verify" if c.score is None else f"{c.score:.2f}")
            for c in self.checks
        )


def verify(ctx: ToolContext, args: VerifyArgs) -> VerifyResult:
    verifier = ctx.backends.verifier
    if verifier is None:
        raise ToolError("this model stack has no verifier")
    checks: list[Check] = []
    with new_session(ctx.engine) as session:
        if args.annotation_ids is None:
            image = resolve_image(session, project_id=ctx.project_id, ref=args.image or "")
            label = " ".join((args.label or "").split())
            score = verify_scores(verifier, load_rgb(ctx.home, image), np.asarray([args.box]), [label])[0]
            return VerifyResult(
                model=verifier.model_id, checks=[Check(target="box", label=label, score=score)]
            )
        anns = [session.get(Annotation, i) for i in args.annotation_ids]
        missing = [
            i
            for i, a in zip(args.annotation_ids, anns, strict=True)
            if a is None or a.project_id != ctx.project_id
        ]
        if missing:
            raise ToolError(f"no annotations {missing} in this project")
        by_image: dict[int, list[Annotation]] = {}
        for ann in anns:
            by_image.setdefault(ann.image_id, []).append(ann)  # type: ignore[union-attr]
        for image_id, group in by_image.items():
            rgb = load_rgb(ctx.home, resolve_image(session, project_id=ctx.project_id, ref=image_id))
            boxes = np.asarray(
                [[a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]] for a in group]
            )
            labels = [args.label or get_category(session, category_id=a.category_id).name for a in group]  # type: ignore[union-attr]
            for ann, label, score in zip(
                group, labels, verify_scores(verifier, rgb, boxes, labels), strict=True
            ):
                checks.append(
                    Check(target=f"#{ann.id}", label=label, score=None if score is None else round(score, 3))
                )
    return VerifyResult(model=verifier.model_id, checks=checks)


TOOL = Tool(
    name="verify",
    description="Check whether annotations (or a box in an image) really show a class; returns a 0-1 score.",
    args=VerifyArgs,
    fn=verify,
)
