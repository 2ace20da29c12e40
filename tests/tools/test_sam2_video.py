"""SAM 2.1 tiny's video predictor with random weights: the real architecture, memory and
propagation over real ingested frames, no download; and propagate on the full stack with it.

Each frame costs one image-encoder pass (~6 s on two CPU cores at 1024x1024), so the clip is
three frames and the tests are marked slow.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from ops import history
from ops import tracks as ops_tracks
from ops.caller import local_caller
from ops.unit import Env
from store.db import new_session, open_engine
from store.models import Image
from tests.ops.video_clip import add_squares
from tests.tools.no_network import blocked_network
from tools.backends.sam2_segmenter import SAM2Segmenter
from tools.backends.sam2_video import SAM2VideoTracker
from tools.video_propagate import model_name, propagate, video_tracker

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _no_network() -> Iterator[None]:
    with blocked_network():
        yield


@pytest.fixture(scope="module")
def segmenter() -> SAM2Segmenter:
    return SAM2Segmenter(Path("unused"), "tiny", device="cpu", random_init=True)


@pytest.fixture
def clip(tmp_path: Path):
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    clip = add_squares(Env(engine, home), tmp_path)
    with new_session(engine) as s:
        frames = list(
            s.exec(select(Image).where(Image.video_id == clip.video_id).order_by(col(Image.frame_index)))
        )
    yield Env(engine, home), clip, frames
    engine.dispose()


def test_shares_the_segmenters_weights_and_checks_arguments(segmenter: SAM2Segmenter) -> None:
    tracker = SAM2VideoTracker.from_segmenter(segmenter, max_frames=3)
    image_state, video_state = segmenter._predictor.model.state_dict(), tracker.predictor.state_dict()
    assert image_state.keys() == video_state.keys()
    key = next(iter(image_state))
    assert (
        bool((image_state[key] == video_state[key]).all()) and tracker.model_id == "sam2.1_hiera_tiny_video"
    )
    with pytest.raises(ValueError, match="a mask or a box"):
        next(tracker.track([Path("a.jpg"), Path("b.jpg")]))
    with pytest.raises(ValueError, match="at least 2"):
        SAM2VideoTracker(Path("unused"), "tiny", random_init=True, max_frames=1)


def test_track_follows_a_mask_through_the_next_frames(segmenter: SAM2Segmenter, clip) -> None:
    env, _, frames = clip
    tracker = SAM2VideoTracker.from_segmenter(segmenter, max_frames=3)
    mask = np.zeros((240, 320), dtype=bool)
    mask[20:60, 10:50] = True
    out = list(tracker.track([env.home / f.path for f in frames[:5]], mask=mask))
    assert [i for i, _, _ in out] == [1, 2]  # max_frames bounds the frames held at 1024x1024
    assert all(m.shape == (240, 320) and m.dtype == bool for _, m, _ in out)
    assert all(0.0 <= s <= 1.0 for _, _, s in out)


@dataclass
class FullStack:
    segmenter: SAM2Segmenter
    detector: object = None  # the SAM 2 follower never detects


def test_propagate_on_the_full_stack_uses_the_video_predictor(segmenter: SAM2Segmenter, clip) -> None:
    env, c, frames = clip
    backends = FullStack(segmenter)
    segmenter._video_tracker = SAM2VideoTracker.from_segmenter(segmenter, max_frames=2)  # type: ignore[attr-defined]
    assert video_tracker(backends) is segmenter._video_tracker
    assert model_name(backends) == "sam2.1_hiera_tiny_video"
    caller = local_caller()
    before = ops_tracks.track_frames(env, caller, c.project_id, c.a)
    done = propagate(env, caller, c.project_id, c.a, 4, backends, to_frame=6)
    # random weights: whatever masks come, they replace exactly the frames the predictor covered
    assert done.model == "sam2.1_hiera_tiny_video" and done.from_frame == 4
    assert done.to_frame <= 5 and done.created <= 1  # max_frames=2: the seed and one more frame
    after = ops_tracks.track_frames(env, caller, c.project_id, c.a)
    assert [f.frame_index for f in after if f.frame_index <= 4] == list(range(5))
    if done.batch_id is not None:
        history.step(env, caller, c.project_id, "undo")
        assert [f.annotation_id for f in ops_tracks.track_frames(env, caller, c.project_id, c.a)] == [
            f.annotation_id for f in before
        ]
