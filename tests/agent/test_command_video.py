"""The command agent on a project of videos, against a scripted model and a real store: it offers
the track tools and their examples, counts objects as tracks, asks before a large track change,
and labels the video as tracks through the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.command import CommandAgent
from agent.prompts import COMMAND_TOOLS, VIDEO_SYSTEM, VIDEO_TOOLS
from ops import tracks
from ops.caller import local_caller
from ops.unit import Env
from store.db import open_engine
from tests.agent.conftest import ScriptedModel, call, qwen  # noqa: F401 (the embedded Qwen, a fixture)
from tests.ops.video_clip import add_squares
from tests.tools.conftest import FakeSegmenter
from tests.tools.test_video_label import SquareDetector
from tools.catalog import command_tools
from tools.registry import ToolContext


@dataclass
class Backends:
    detector: Any = field(default_factory=SquareDetector)
    segmenter: Any = field(default_factory=FakeSegmenter)


@pytest.fixture
def video_project(tmp_path: Path):
    from server.jobs import JobRunner
    from tools.video_label import KIND, VideoLabelJob

    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    clip = add_squares(Env(engine, home), tmp_path)
    backends = Backends()
    runner = JobRunner(
        engine, {KIND: VideoLabelJob(home=home, backends_factory=lambda: backends)}, lock_dir=home / "jobs"
    )
    ctx = ToolContext(
        engine=engine, project_id=clip.project_id, home=home, models_dir=home / "models",
        caller=local_caller(), backends_factory=lambda: backends, on_job=runner.run_job,
    )  # fmt: skip
    yield ctx, clip
    engine.dispose()


def agent(ctx: ToolContext, model: ScriptedModel) -> CommandAgent:
    return CommandAgent.start(model, "m", ctx, command_tools(), model_answers=False, insist=None)


def calls(name: str, **args: Any) -> dict[str, Any]:
    return {"content": "", "tool_calls": [call(name, **args)]}


def test_offers_track_tools_and_counts_objects(video_project) -> None:
    ctx, clip = video_project
    model = ScriptedModel(calls("count_objects", label="person"))
    turn = agent(ctx, model).send("how many distinct people are in the video?")
    request = model.requests[0]
    offered = [t["function"]["name"] for t in request["tools"]]
    assert offered == COMMAND_TOOLS + VIDEO_TOOLS
    assert request["messages"][0]["content"].endswith(VIDEO_SYSTEM)
    assert "3 tracks" in request["messages"][-2]["content"]  # the project facts name the tracks
    assert turn.text.startswith("3 distinct person objects (tracks) in 40 boxes")


def test_delete_track_waits_for_yes(video_project) -> None:
    ctx, clip = video_project
    model = ScriptedModel(calls("delete_track", track=clip.a))
    bot = agent(ctx, model)
    turn = bot.send(f"delete track {clip.a}")
    assert turn.pending == f"delete track {clip.a} (20 annotations)"
    assert len(tracks.list_tracks(ctx.env, ctx.caller, ctx.project_id)) == 3
    done = bot.send("yes")
    assert done.text.startswith(f"Applied: done: delete track {clip.a}")
    assert [t.id for t in tracks.list_tracks(ctx.env, ctx.caller, ctx.project_id)] == [clip.b, clip.c]


def test_delete_track_without_a_delete_verb_is_refused(video_project) -> None:
    ctx, clip = video_project
    model = ScriptedModel(calls("delete_track", track=clip.a), {"content": "I could not."})
    turn = agent(ctx, model).send(f"what is track {clip.a}?")
    assert turn.tool_calls[0].error and "did not ask to delete" in turn.tool_calls[0].result
    assert len(tracks.list_tracks(ctx.env, ctx.caller, ctx.project_id)) == 3


def test_split_then_find_frames(video_project) -> None:
    ctx, clip = video_project
    model = ScriptedModel(calls("split_track", track=clip.b, frame=8), calls("find_frames", track=clip.b))
    bot = agent(ctx, model)
    split = bot.send(f"the object on frame 8 is another one, split track {clip.b}")
    assert split.text.startswith(f"Done: split track {clip.b} at frame 8 (2 annotations to track")
    found = bot.send(f"on which frames does track {clip.b} appear?")
    assert found.text == f"Track {clip.b} appears on sq.mp4: 8 frames (0-7)"


def test_label_the_video_runs_the_tracking_job(video_project) -> None:
    ctx, clip = video_project
    model = ScriptedModel(calls("auto_label", classes=["person"]))
    turn = agent(ctx, model).send("label every person in the video")
    assert "labeling person on 20 frames of 1 videos (as tracks)" in turn.text
    assert "done: 20/20" in turn.text
    labeled = [
        t
        for t in tracks.list_tracks(ctx.env, ctx.caller, ctx.project_id)
        if t.id not in (clip.a, clip.b, clip.c)
    ]
    assert len(labeled) == 3  # the three squares, each one track through its frames


@pytest.mark.slow
def test_the_embedded_model_counts_tracks_and_finds_frames(video_project, qwen: Any) -> None:  # noqa: F811
    """Qwen2.5-Coder-1.5B (the default agent model) on two video requests, one run each: it picks
    the track tools, not the photo ones (count_objects, not a box count; find_frames). A fresh
    conversation each: the session fixture's 4096-token context (the server's is 8192) does not
    hold the video prompt, its tools and a second turn."""
    ctx, clip = video_project
    bot = CommandAgent.start(qwen.client, qwen.model, ctx, command_tools(), model_answers=False)
    turn = bot.send("how many distinct people are in the video?")
    assert [c.name for c in turn.tool_calls][:1] == ["count_objects"], turn.tool_calls
    assert turn.text.startswith("3 distinct person objects (tracks)"), turn.text
    bot = CommandAgent.start(qwen.client, qwen.model, ctx, command_tools(), model_answers=False)
    turn = bot.send(f"on which frames is track {clip.b}?")
    assert "find_frames" in [c.name for c in turn.tool_calls], turn.tool_calls
    assert any(c.name == "find_frames" and c.args.get("track") == clip.b for c in turn.tool_calls)
