"""The label_video job on the full stack: SAM 2.1's video predictor masks the tracks, window by window.

The window logic (bounds, where each track lives, its prompts) is checked on tracker output made
by hand; the job itself on real frames of vtest.avi (people walking, halved) with the real lite
detector, ByteTrack and SAM 2.1 tiny's video predictor with random weights (the real
architecture, no download). Every frame costs one or two image-encoder passes (~6 s each on two
CPU cores), so that test is marked slow and runs four frames.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlmodel import select

from store.db import new_session, open_engine
from store.ingest import ingest
from store.models import Annotation
from tests.store.video_clips import reencode
from tests.tools.test_video_label import params_of, rows, run
from tools.video_label import VideoLabelJob
from tools.video_label_sam2 import lives, window_bounds
from tools.video_tracking import Tracked


def box(x: float) -> np.ndarray:
    return np.array([x, 10, x + 20, 50], dtype=np.float32)


def test_windows_start_at_the_videos_first_frame_and_stop_at_its_end() -> None:
    assert window_bounds(7, start=5, size=3, end=12) == (5, 8)
    assert window_bounds(8, start=5, size=3, end=12) == (8, 11)
    assert window_bounds(11, start=5, size=3, end=12) == (11, 12)
    with pytest.raises(ValueError, match="at least 1"):
        window_bounds(0, start=0, size=0, end=3)


def test_lives_span_from_the_detection_that_started_a_track_and_prompt_on_key_frames() -> None:
    a = ("person", 1)
    spawn_b = Tracked("person", -1, box(100), 0.8)
    steps = [
        ([Tracked(*a, box(0), 0.9)], [spawn_b]),  # b's first detection: no id yet
        ([Tracked(*a, box(5), 0.9), Tracked("person", 2, box(104), 0.7)], []),  # b named here
        ([Tracked("person", 2, box(108), 0.7)], []),  # a lost
        ([Tracked("person", 2, box(112), 0.7)], []),
    ]
    keys = [False, False, True, False]
    spans = lives(steps, known={a}, spawned=[], keys=keys)
    assert (spans[a].start, spans[a].end) == (0, 1)  # known before the window: from its start
    # never on a key frame: prompted with its first box, so the predictor still masks it
    assert [p for p, _ in spans[a].prompts] == [0]
    b = spans[("person", 2)]
    assert (b.start, b.end) == (0, 3)  # from the frame whose detection started it
    assert [p for p, _ in b.prompts] == [2] and b.confidence == pytest.approx(0.7)
    with pytest.raises(ValueError, match="key_every"):
        VideoLabelJob(home=Path("unused"), backends_factory=lambda: None, key_every=0)


@dataclass
class FullStack:
    detector: Any
    segmenter: Any


@pytest.mark.slow
def test_full_stack_masks_tracks_with_the_video_predictor_and_resumes_exactly(
    tmp_path: Path, clips, models_dir: Path
) -> None:
    from tests.tools.no_network import blocked_network
    from tools.backends.sam2_segmenter import SAM2Segmenter
    from tools.backends.sam2_video import SAM2VideoTracker
    from tools.backends.stacks import build_backends

    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    small = reencode(clips["vtest.avi"], tmp_path / "vtest.mp4", frames=4, scale=0.5)
    with new_session(engine) as session:
        ingest(session, home=home, project_name="p", source=small)
    params = params_of(engine)
    params["threshold"] = 0.5  # the clearest few people: each one costs memory attention per frame
    assert len(params["frame_ids"]) == 4
    with blocked_network():
        import torch

        torch.manual_seed(0)  # random weights: the same ones whatever ran before in this process
        segmenter = SAM2Segmenter(Path("unused"), "tiny", device="cpu", random_init=True)
        # two frames per predictor session: windows [0, 2) and [2, 4)
        segmenter._video_tracker = SAM2VideoTracker.from_segmenter(segmenter, max_frames=2)  # type: ignore[attr-defined]
        backends = FullStack(build_backends("lite", models_dir).detector, segmenter)
        handler = VideoLabelJob(home=home, backends_factory=lambda: backends, key_every=2)
        whole = run(engine, handler, params)
        assert handler.stats["segmented"] == 0 and handler.stats["propagated"] > 0
        first = VideoLabelJob(home=home, backends_factory=lambda: backends, key_every=2)
        resumed = run(engine, first, params, stop_at=3)  # stopped inside the second window
        second = VideoLabelJob(home=home, backends_factory=lambda: backends, key_every=2)  # no state
        run(engine, second, params, job_id=resumed)
    got = rows(engine, whole)
    assert got and rows(engine, resumed) == got  # nothing lost, nothing written twice
    assert max(Counter((frame, name) for frame, name, _ in got).values()) == 1  # one mask per track
    assert second.stats["replayed"] == 2 and second.stats["frames"] == 1  # replayed to the window
    with new_session(engine) as session:
        models = set(session.exec(select(Annotation.model).where(Annotation.job_id == whole)))
    assert models == {"lite-nanodet+bytetrack+sam2.1_hiera_tiny_video"}
    engine.dispose()
