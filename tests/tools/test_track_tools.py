"""The video agent tools through the real operations on a real SQLite file: distinct objects,
frames, and track changes with the dry run of large changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import history, jobs
from ops.caller import local_caller
from ops.unit import Env
from store.db import open_engine
from tests.ops.video_clip import add_squares
from tools.catalog import command_tools
from tools.edit import DryRun
from tools.registry import ToolContext, ToolError


@pytest.fixture
def ctx(tmp_path: Path):
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    clip = add_squares(Env(engine, home), tmp_path)  # creates the project "streets"
    ctx = ToolContext(
        engine=engine, project_id=clip.project_id, home=home, models_dir=tmp_path, caller=local_caller()
    )
    yield ctx, clip
    engine.dispose()


def run(ctx: ToolContext, name: str, **args):
    return command_tools().get(name)(ctx, args)


def test_count_objects_counts_tracks_not_boxes(ctx) -> None:
    ctx, clip = ctx
    out = run(ctx, "count_objects", label="person")
    assert (out.objects, out.boxes) == (3, 40)
    assert out.text().startswith("3 distinct person objects (tracks) in 40 boxes; tracks: ")
    assert run(ctx, "count_objects", video="sq.mp4").by_class == {"person": 3}
    with pytest.raises(ToolError, match="no video 'other.mp4'.*1:'sq.mp4'"):
        run(ctx, "count_objects", video="other.mp4")


def test_find_frames_of_a_track_and_a_class(ctx) -> None:
    ctx, clip = ctx
    out = run(ctx, "find_frames", track=clip.c)
    assert (
        out.videos[0].ranges == [(10, 19)]
        and out.text() == f"track {clip.c} appears on sq.mp4: 10 frames (10-19)"
    )
    run(ctx, "delete_track", track=clip.a)  # a dry run: nothing changes
    assert run(ctx, "find_frames", label="person").videos[0].ranges == [(0, 19)]
    with pytest.raises(ToolError, match="no class 'dog'"):
        run(ctx, "find_frames", label="dog")
    with pytest.raises(ToolError, match="give label or track"):
        run(ctx, "find_frames")


def test_track_changes_dry_run_then_confirm(ctx) -> None:
    ctx, clip = ctx
    tool = command_tools().get("delete_track")
    dry = tool(ctx, {"track": clip.a})
    assert isinstance(dry, DryRun) and dry.summary == f"delete track {clip.a} (20 annotations)"
    assert run(ctx, "count_objects").objects == 3
    done = tool.confirm(ctx, tool.parse({"track": clip.a}), dry.token)
    assert done.text() == f"done: delete track {clip.a} (20 annotations) (20 changed; undo reverts it)"
    assert run(ctx, "count_objects").objects == 2
    history.step(ctx.env, ctx.caller, ctx.project_id, "undo")

    split = command_tools().get("split_track")
    dry = split(ctx, {"track": clip.a, "frame": 17})  # 3 annotations: small, applied at once
    assert not isinstance(dry, DryRun) and dry.new_track and dry.changed == 3
    merge = command_tools().get("merge_tracks")
    dry = merge(ctx, {"into": clip.b, "others": [clip.c]})
    assert isinstance(dry, DryRun)
    run(ctx, "rename_track", track=clip.c, to="car")  # a dry run too (10 annotations): nothing moved
    done = merge.confirm(ctx, merge.parse({"into": clip.b, "others": [clip.c]}), dry.token)
    assert done.changed == 10 and run(ctx, "count_objects").objects == 3  # a, b+c, the split-off part
    with pytest.raises(ToolError, match="changed since the preview"):
        merge.confirm(ctx, merge.parse({"into": clip.b, "others": [clip.c]}), "0" * 16)


def test_auto_label_starts_the_tracking_job_in_a_video_project(ctx) -> None:
    ctx, clip = ctx
    out = run(ctx, "auto_label", classes=["person"])
    job = jobs.get(ctx.env, ctx.caller, ctx.project_id, out.job_id)
    assert job.kind == "label_video" and job.total == 20
    assert out.text() == f"started job {out.job_id}: labeling person on 20 frames of 1 videos (as tracks)"
    named = run(ctx, "auto_label", classes=["person"], videos=["sq.mp4"])
    assert jobs.get(ctx.env, ctx.caller, ctx.project_id, named.job_id).params["video_ids"] == [clip.video_id]
    with pytest.raises(ToolError, match="no video 'x.mp4'"):
        run(ctx, "auto_label", classes=["person"], videos=["x.mp4"])
