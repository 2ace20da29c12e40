"""Interactive segmentation: a box or clicks on an image -> a mask proposal, stored on request.

A thin adapter over :func:`ops.proposals.propose` (the segmenter pass, which needs
``annotation.propose``: it costs model time, so a viewer may not ask for one) and, with
``save=true``, :func:`tools.segment.save` (through ``ops.annotations.create``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from annotated_types import Ge, Le, Len
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, FiniteFloat, ValidationError, model_validator

from ops import proposals
from ops.errors import Invalid
from server.deps import CallerDep, EnvDep
from server.routes.schema import Id, Points, errors
from tools import segment
from tools.registry import ToolError

router = APIRouter(prefix="/projects/{project_id}/images/{image_id}", tags=["segment"], responses=errors())


class SegmentRequest(BaseModel):
    box: Annotated[list[FiniteFloat], Len(4, 4)] | None = Field(
        None, min_length=4, max_length=4, description="Box around the object: [x1, y1, x2, y2] in pixels."
    )
    points: Points | None = Field(
        None, min_length=1, max_length=20, description="Clicks [[x, y], ...] in pixels of the stored image."
    )
    labels: list[Annotated[int, Ge(0), Le(1)]] | None = Field(
        None, max_length=20, description="Per click: 1 = on the object, 0 = background. Default: all 1."
    )
    save: bool = Field(False, description="Store the mask as a proposed annotation of class `label`.")
    label: str | None = Field(None, min_length=1, max_length=64, description="The class (needed with save).")
    track: int | Literal["new"] | None = Field(
        None,
        description="With save, on a video frame: the id of a track of its video to add the object to, "
        "or 'new' for a new track.",
    )

    model_config = {
        "json_schema_extra": {
            "examples": [
                {"box": [20, 230, 800, 720]},
                {"points": [[560, 300], [100, 100]], "labels": [1, 0]},
                {"box": [20, 230, 800, 720], "save": True, "label": "bus"},
                {"points": [[120, 80]], "save": True, "label": "person", "track": 3},
            ]
        }
    }

    @model_validator(mode="after")
    def _label_to_save(self) -> SegmentRequest:
        if self.save and not self.label:
            raise ValueError("save=true needs the class to store the mask as: give 'label'")
        if self.track is not None and not self.save:
            raise ValueError("'track' puts the stored annotation on a track: it needs save=true")
        return self


SEGMENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The mask proposal (and the stored annotation's id with save=true).",
        "content": {
            "application/json": {
                "example": {
                    "image_id": 1,
                    "rle": {"size": [1080, 810], "counts": "Xk`0<...>"},
                    "polygon": [20.0, 475.0, 21.0, 440.0, 800.0, 475.0],
                    "polygon_fidelity": 0.995,
                    "score": 0.9,
                    "bbox": [20.0, 230.0, 780.0, 490.0],
                    "model": "sam2.1-tiny",
                    "annotation_id": None,
                    "track_id": None,
                }
            }
        },
    }
}


@router.post("/segment", responses=SEGMENT_RESPONSES)
def segment_image(
    project_id: Id, image_id: Id, body: SegmentRequest, request: Request, env: EnvDep, caller: CallerDep
) -> dict[str, Any]:
    """Segment one object from a box or clicks: `rle` (COCO RLE), `polygon` (COCO flat list),
    `score`, `bbox` (COCO `[x, y, w, h]`). Nothing is stored unless `save` is true; on a video
    frame, `track` then puts the object on one of its video's tracks (or a new one)."""
    try:
        prompt = segment.Prompt(box=body.box, points=body.points, point_labels=body.labels)
    except ValidationError as exc:
        raise Invalid("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    backends = request.app.state.backends
    try:
        proposal = proposals.propose(
            env,
            caller,
            project_id,
            image_id,
            lambda image, _path: segment.compute_mask(backends(), env.home, image, prompt),
        )
    except ToolError as exc:  # a prompt off the image, or nothing found there
        raise Invalid(str(exc)) from None
    out = {**proposal.public(), "annotation_id": None, "track_id": None}
    if body.save:
        assert caller is not None and body.label is not None
        ctx = request.app.state.agents.tool_context(caller, project_id)
        saved = segment.save(ctx, proposal, body.label, track=body.track)
        out["annotation_id"], out["track_id"] = saved.annotation_id, saved.track_id
    return out
