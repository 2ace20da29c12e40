"""Agent tools for videos: count distinct objects (tracks, not boxes), find the frames a class or
track is on, and rename, merge, split or delete tracks.

Reads go through :mod:`ops.tracks` and :mod:`ops.videos`; every change is one call of an
``ops.tracks`` operation (one change batch: ``undo`` reverts it) with the confirmation of
:mod:`ops.bulk`: a change of more than :data:`~tools.edit.CONFIRM_OVER` annotations answers with a
:class:`~tools.edit.DryRun` and applies only through the tool's ``confirm`` when the person says
yes (``agent.pending``). Labeling a video is ``auto_label``, which starts the tracking job in a
project of videos.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, Field, model_validator

from ops import bulk, tracks, videos
from ops.errors import OpError
from tools.edit import CONFIRM_OVER, DryRun
from tools.pipeline import Label
from tools.registry import Asks, From, Source, Tool, ToolContext, ToolError, ToolResult

SHOWN = 10  # tracks or frame ranges listed in a result's text

VideoRef = int | str
TRACK_EDITS = frozenset({"delete_track", "merge_tracks", "split_track", "rename_track"})


def _video(ctx: ToolContext, ref: VideoRef | None) -> videos.VideoInfo | None:
    """The project's video ``ref`` (id or file name); None for None (every video)."""
    if ref is None:
        return None
    found = videos.list_videos(ctx.env, ctx.caller, ctx.project_id)
    for v in found:
        if (isinstance(ref, int) and v.id == ref) or str(ref) in (str(v.id), v.file_name):
            return v
    names = ", ".join(f"{v.id}:{v.file_name!r}" for v in found[:SHOWN]) or "none"
    raise ToolError(f"no video {ref!r} in this project; videos (id:file_name): {names}")


def _ranges(indices: list[int], order: dict[int, int]) -> list[tuple[int, int]]:
    """Runs of frames that follow each other among the sampled frames (``order``: frame -> its
    position among them), as (first, last) frame indices."""
    out: list[tuple[int, int]] = []
    for f in sorted(set(indices)):
        if out and order.get(f, -2) == order.get(out[-1][1], -9) + 1:
            out[-1] = (out[-1][0], f)
        else:
            out.append((f, f))
    return out


def _spans(ranges: list[tuple[int, int]]) -> str:
    shown = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges[:SHOWN])
    return shown + (f", ... ({len(ranges) - SHOWN} more)" if len(ranges) > SHOWN else "")


# -- count objects --------------------------------------------------------------------------------


class CountObjectsArgs(BaseModel):
    label: Annotated[Label | None, From(Source.CLASS)] = Field(None, description="Only this class.")
    video: VideoRef | None = Field(None, description="Video id or file name; omit for every video.")


class CountObjectsResult(ToolResult):
    label: str | None
    objects: int
    boxes: int
    by_class: dict[str, int]
    tracks: list[str]

    def text(self) -> str:
        what = f"{self.label} " if self.label else ""
        per = "" if self.label else " (" + ", ".join(f"{k}: {v}" for k, v in self.by_class.items()) + ")"
        listed = f"; tracks: {', '.join(self.tracks[:SHOWN])}" if self.tracks else ""
        more = f" ... ({len(self.tracks) - SHOWN} more)" if len(self.tracks) > SHOWN else ""
        return f"{self.objects} distinct {what}objects (tracks){per} in {self.boxes} boxes{listed}{more}"


def count_objects(ctx: ToolContext, args: CountObjectsArgs) -> CountObjectsResult:
    video = _video(ctx, args.video)
    found = tracks.list_tracks(
        ctx.env, ctx.caller, ctx.project_id, video_id=video.id if video else None, label=args.label
    )
    by_class: dict[str, int] = {}
    for t in found:
        by_class[t.label] = by_class.get(t.label, 0) + 1
    return CountObjectsResult(
        label=args.label, objects=len(found), boxes=sum(t.annotations for t in found), by_class=by_class,
        tracks=[f"{t.id} ({t.label}, frames {t.first_frame}-{t.last_frame})" for t in found],
    )  # fmt: skip


# -- find frames ----------------------------------------------------------------------------------


class FindFramesArgs(BaseModel):
    label: Annotated[Label | None, From(Source.CLASS)] = Field(None, description="Frames showing this class.")
    track: int | None = Field(None, ge=0, description="Frames of this track id.")
    video: VideoRef | None = Field(None, description="Video id or file name; omit for every video.")

    @model_validator(mode="after")
    def _what(self) -> FindFramesArgs:
        if self.label is None and self.track is None:
            raise ValueError("give label or track")
        return self


class VideoFrames(BaseModel):
    video_id: int
    file_name: str
    frames: int
    ranges: list[tuple[int, int]]


class FindFramesResult(ToolResult):
    what: str
    videos: list[VideoFrames]

    def text(self) -> str:
        if not self.videos:
            return f"{self.what} appears on no frame"
        parts = [f"{v.file_name}: {v.frames} frames ({_spans(v.ranges)})" for v in self.videos]
        return f"{self.what} appears on " + "; ".join(parts)


def _class_id(ctx: ToolContext, label: str) -> int:
    from ops import categories

    found = {c.name: c.id or 0 for c, _ in categories.list_(ctx.env, ctx.caller, ctx.project_id)}
    if label not in found:
        raise ToolError(f"no class {label!r} in this project; classes: {', '.join(found) or 'none yet'}")
    return found[label]


def find_frames(ctx: ToolContext, args: FindFramesArgs) -> FindFramesResult:
    video = _video(ctx, args.video)
    if args.track is not None:
        chosen = [tracks.get_track(ctx.env, ctx.caller, ctx.project_id, args.track)]
        if video is not None and chosen[0].video_id != video.id:
            raise ToolError(f"track {args.track} is in video {chosen[0].video_id}, not {video.file_name!r}")
    else:
        chosen = tracks.list_tracks(ctx.env, ctx.caller, ctx.project_id, video_id=video.id if video else None)
    wanted = None if args.track is not None else _class_id(ctx, args.label or "")
    per_video: dict[int, list[int]] = {}
    for t in chosen:
        for f in tracks.track_frames(ctx.env, ctx.caller, ctx.project_id, t.id):
            if wanted is None or f.category_id == wanted:
                per_video.setdefault(t.video_id, []).append(f.frame_index)
    infos = {v.id: v for v in videos.list_videos(ctx.env, ctx.caller, ctx.project_id)}
    out = []
    for video_id, frames in sorted(per_video.items()):
        sampled = videos.list_frames(ctx.env, ctx.caller, ctx.project_id, video_id)
        order = {f.frame_index: i for i, f in enumerate(sampled)}
        ranges = _ranges(frames, order)
        name = infos[video_id].file_name
        out.append(VideoFrames(video_id=video_id, file_name=name, frames=len(set(frames)), ranges=ranges))
    what = f"track {args.track}" if args.track is not None else f"class {args.label!r}"
    return FindFramesResult(what=what, videos=out)


# -- track changes --------------------------------------------------------------------------------


class DeleteTrackArgs(BaseModel):
    ASKS: ClassVar[Asks] = Asks.DELETE  # only when this turn's message asks for a delete
    track: int = Field(ge=0, description="Track id.")


class MergeTracksArgs(BaseModel):
    into: int = Field(ge=0, description="Track id that keeps its id.")
    others: list[int] = Field(min_length=1, max_length=100, description="Track ids merged into it.")


class SplitTrackArgs(BaseModel):
    track: int = Field(ge=0, description="Track id.")
    frame: int = Field(ge=0, description="First frame of the new track.")


class RenameTrackArgs(BaseModel):
    track: int = Field(ge=0, description="Track id.")
    to: Annotated[Label, From(Source.NEW_CLASS)] = Field(description="New class.")


class TrackEdited(ToolResult):
    op: str
    changed: int
    summary: str
    new_track: int | None = None

    def text(self) -> str:
        return f"done: {self.summary} ({self.changed} changed; undo reverts it)"


def _apply(ctx: ToolContext, op: str, args: BaseModel, confirm: str | None = None) -> TrackEdited | DryRun:
    gate: dict[str, Any] = {"confirm": confirm} if confirm is not None else {"confirm_over": CONFIRM_OVER}
    env, caller, pid = ctx.env, ctx.caller, ctx.project_id
    try:
        if op == "delete_track":
            out = tracks.delete_track(env, caller, pid, args.track, **gate)  # type: ignore[attr-defined]
        elif op == "merge_tracks":
            out = tracks.merge_tracks(env, caller, pid, into=args.into, others=args.others, **gate)  # type: ignore[attr-defined]
        elif op == "split_track":
            out = tracks.split_track(env, caller, pid, args.track, frame_index=args.frame, **gate)  # type: ignore[attr-defined]
        else:
            out = tracks.rename_track(env, caller, pid, args.track, label=args.to, **gate)  # type: ignore[attr-defined]
    except OpError as exc:
        raise ToolError(str(exc)) from None
    if isinstance(out, bulk.DryRun):
        return DryRun(
            op=op, token=out.token, annotations=out.annotations, images=out.images, summary=out.summary
        )
    return TrackEdited(op=op, changed=out.changed, summary=out.summary, new_track=out.new_track_id)


def _tool(op: str, args: type[BaseModel], description: str) -> Tool:
    return Tool(
        op, description, args, lambda ctx, a: _apply(ctx, op, a), mutates=True,
        confirm=lambda ctx, a, token: _apply(ctx, op, a, confirm=token),
    )  # fmt: skip


TOOLS = [
    Tool(
        "count_objects",
        "Count distinct objects (tracks) in videos, not boxes; optionally of one class or video.",
        CountObjectsArgs,
        count_objects,
    ),
    Tool("find_frames", "Frames of a video where a class or a track appears.", FindFramesArgs, find_frames),
    _tool("delete_track", DeleteTrackArgs, "Delete a whole track (all its frames)."),
    _tool("merge_tracks", MergeTracksArgs, "Merge tracks into one (same object)."),
    _tool("split_track", SplitTrackArgs, "Split a track in two at a frame."),
    _tool("rename_track", RenameTrackArgs, "Change the class of a whole track."),
]
