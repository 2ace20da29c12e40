"""Videos and their frames as operations: counts from grouped queries, paging, policy."""

from __future__ import annotations

import pytest

from ops import videos
from ops.errors import Forbidden, NotFound
from tests.ops.video_clip import Clip, who


def test_list_videos_counts_frames_and_tracks(squares_clip: Clip) -> None:
    clip = squares_clip
    (video,) = videos.list_videos(clip.env, who(clip, "viewer"), clip.project_id)
    assert (video.id, video.frames, video.annotated_frames, video.tracks) == (clip.video_id, 20, 20, 3)
    assert (video.width, video.height, video.frame_count) == (320, 240, 20)
    assert videos.get_video(clip.env, who(clip, "viewer"), clip.project_id, clip.video_id) == video
    with pytest.raises(NotFound):
        videos.get_video(clip.env, who(clip, "viewer"), clip.project_id, 999)
    with pytest.raises(Forbidden):
        videos.list_videos(clip.env, who(clip, "outsider"), clip.project_id)


def test_list_frames_in_order_with_paging(squares_clip: Clip) -> None:
    clip = squares_clip
    frames = videos.list_frames(clip.env, who(clip, "viewer"), clip.project_id, clip.video_id)
    assert [f.frame_index for f in frames] == list(range(20))
    assert all(f.annotations == 2 for f in frames)
    assert frames[3].timestamp_s == pytest.approx(0.3, abs=0.01)
    page = videos.list_frames(
        clip.env, who(clip, "viewer"), clip.project_id, clip.video_id, offset=5, limit=3
    )
    assert [f.frame_index for f in page] == [5, 6, 7]
    with pytest.raises(NotFound):
        videos.list_frames(clip.env, who(clip, "viewer"), clip.project_id, 999)
