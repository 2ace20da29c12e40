"""A video in the browser: one item in the strip, a frame scrubber, tracks in their own colour and
id on every frame, correct-one-frame-then-Propagate, a shape drawn on a frame into a new or an
existing track (then propagated), and Prev/Next stepping through the frames the strip's class
filter keeps, in a real Chromium against the running app.

The clip is the first 2 s of Debian opencv-doc's vtest.avi (people walking), ingested at 5 frames
per second (10 frames); the page labels it with the lite stack (NanoDet, GrabCut masks: the fast
segmenter, so the test stays under a minute). Screenshots go to artifacts/ui/video_*.png.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import col, select

from store import new_session, open_engine
from store.models import Annotation, Image
from store.tracks import list_tracks
from tests.store.video_clips import reencode
from tests.ui.conftest import serve
from tests.ui.test_browser import canvas_picture, field, launch, shot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FRAMES, SAMPLE_FPS = 20, 5  # 2 s of the 10 fps clip at 5 fps -> 10 sampled frames
WAIT = 30_000  # ms an expect() waits for the page: the test machine is shared and slow


@pytest.fixture
def video_app(tmp_path: Path, models_dir: Path, clips: dict[str, Path]) -> Iterator[tuple[str, Path]]:
    """The app (GrabCut segmenter) over a store holding project "walk" with the clip ingested."""
    from ops import images, projects
    from ops.caller import local_caller
    from ops.unit import Env

    clip = reencode(clips["vtest.avi"], tmp_path / "walk.mp4", frames=FRAMES, scale=1.0)
    home = tmp_path / "home"
    engine = open_engine(home / "labelwright.db")
    env = Env(engine, home)
    walk = projects.create_project(env, local_caller(), name="walk").id
    report = images.ingest(env, local_caller(), source=clip, project_id=walk, sample_fps=SAMPLE_FPS)
    assert [v.frames for v in report.videos] == [FRAMES * SAMPLE_FPS // 10], report
    engine.dispose()
    yield from serve(tmp_path, models_dir, "--segmenter", "lite-grabcut")


def stored(home: Path) -> tuple[dict[int, int], list[Annotation], list]:  # type: ignore[type-arg]
    """(frame index per image id, every annotation, the tracks) as the store holds them now."""
    engine = open_engine(home / "labelwright.db")
    try:
        with new_session(engine) as session:
            frames = {i.id: i.frame_index for i in session.exec(select(Image))}
            rows = list(session.exec(select(Annotation).order_by(col(Annotation.id))))
            return frames, rows, list_tracks(session, project_id=1)  # type: ignore[return-value]
    finally:
        engine.dispose()


def chips(page) -> dict[int, str]:  # type: ignore[no-untyped-def]
    """The legend under the canvas: track id -> its colour ("r,g,b")."""
    found = page.locator("#lw-canvas .lw-track")
    return {
        int(found.nth(i).get_attribute("data-track")): found.nth(i).get_attribute("data-color")
        for i in range(found.count())
    }


def to_frame(page, position: int, key: str = ".") -> None:  # type: ignore[no-untyped-def]
    """Press ``key`` (next or previous frame) until the scrubber shows ``position`` (1-based)."""
    from playwright.sync_api import expect

    line = page.locator("#lw-frame-line")
    for _ in range(10):
        now = int(re.search(r"frame (\d+) of", line.inner_text()).group(1))  # type: ignore[union-attr]
        if now == position:
            break
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press(key if now < position else ",")
        expect(line).to_contain_text(f"frame {now + (1 if now < position else -1)} of", timeout=WAIT)
    expect(line).to_contain_text(f"frame {position} of", timeout=WAIT)


def drag(page, box: list[float], width: int = 768) -> None:  # type: ignore[no-untyped-def]
    """Drag the mouse over the canvas from ``box``'s corner to its opposite one (image pixels)."""
    image = page.locator("#lw-canvas .lw-canvas img")
    image.scroll_into_view_if_needed()
    shown = image.bounding_box()
    assert shown is not None
    scale = shown["width"] / width
    page.mouse.move(shown["x"] + box[0] * scale, shown["y"] + box[1] * scale)
    page.mouse.down()
    page.mouse.move(shown["x"] + box[2] * scale, shown["y"] + box[3] * scale, steps=6)
    page.mouse.up()


def outline_color(page, bbox: list[float], size: tuple[int, int]) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The median colour of the box's left edge on the canvas picture (scaled like the page)."""
    picture = np.asarray(canvas_picture(page), np.int16)
    sx = picture.shape[1] / size[0]
    x, y, _, h = bbox
    left = int(np.ceil(x * sx))  # the outline is drawn inwards from the box edge, 2 px wide
    edge = picture[int((y + 0.3 * h) * sx) : int((y + 0.7 * h) * sx), left : left + 2]
    return np.median(edge.reshape(-1, 3), axis=0)


def nearest(color: np.ndarray, candidates: dict[object, tuple[int, int, int]]) -> object:
    """Which of the candidate colours the drawn one is (JPEG blurs thin lines: nearest, not equal)."""
    return min(candidates, key=lambda k: float(np.abs(color - np.array(candidates[k])).sum()))


def test_scrub_a_video_see_stable_tracks_correct_and_propagate(video_app) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    from ui.render import class_color, track_color

    url, home = video_app
    started = time.monotonic()
    with sync_playwright() as pw:
        browser, page = launch(pw)
        page.goto(url)
        page.locator("#lw-project input").click()
        page.get_by_role("option", name="walk").click()
        expect(page.locator("#lw-frame-next")).to_be_visible()  # the scrubber (Gradio nests its group id)
        strip = page.locator("#lw-strip")
        expect(strip).to_contain_text("walk.mp4 · video, 10 frames")
        expect(page.locator("#lw-strip .thumbnail-item")).to_have_count(1)  # one item, not 10 frames
        expect(page.locator("#lw-frame-line")).to_contain_text("frame 1 of 10 (source frame 0")
        shot(page, "video_01_one_item_with_scrubber")

        field(page, "lw-classes").fill("person")
        page.locator("#lw-label").click()
        expect(page.locator("#lw-progress")).to_contain_text("done", timeout=120_000)
        labelled = time.monotonic()
        frames, rows, tracks = stored(home)

        # The largest confident track of 4+ frames starting by the 4th frame: a person near the
        # camera, whom the lite follower keeps (not a cone, nor a small figure far away).
        def mean(track_id: int, of) -> float:  # type: ignore[no-untyped-def]
            return float(np.mean([of(a) for a in rows if a.track_id == track_id]))

        long = [t for t in tracks if t.first_frame <= 6 and t.annotations >= 4]
        sure = [t for t in long if mean(t.id, lambda a: a.score or 0) >= 0.5] or long
        track = max(sure, key=lambda t: mean(t.id, lambda a: a.bbox[2] * a.bbox[3]))
        on = sorted(frames[a.image_id] for a in rows if a.track_id == track.id)
        assert len(on) >= 4, f"too short a track to scrub along: {track}"
        position = sorted(set(frames.values())).index(on[0]) + 1

        to_frame(page, position)
        expect(page.locator(f"#lw-canvas .lw-track[data-track='{track.id}']")).to_be_visible()
        first = chips(page)
        expect(page.locator("#lw-annotations")).to_contain_text(f"track {track.id}")
        ann = next(a for a in rows if a.track_id == track.id and frames[a.image_id] == on[0])
        drawn = outline_color(page, ann.bbox, (768, 576))
        shot(page, "video_02_track_on_first_frame")
        to_frame(page, position + 1)
        expect(page.locator("#lw-frame-line")).to_contain_text(f"source frame {on[1]}")
        second = chips(page)
        assert first[track.id] == second[track.id] == ",".join(map(str, track_color(track.id)))
        assert len(set(first.values())) == len(first)  # each track on a frame has its own colour
        nxt = next(a for a in rows if a.track_id == track.id and frames[a.image_id] == on[1])
        assert np.abs(outline_color(page, nxt.bbox, (768, 576)) - drawn).max() < 40  # same colour drawn
        palette = {t: track_color(t) for t in second} | {"class colour": class_color("person")}
        assert nearest(drawn, palette) == track.id  # drawn in its track's colour, not its class's
        shot(page, "video_03_same_track_next_frame")

        # Correct the box on this frame (Draw box over the selected annotation), then Propagate.
        page.locator("#lw-mode").get_by_text("Draw box").click()
        page.locator("#lw-annotations label").filter(has_text=f"track {track.id}").click()
        expect(page.locator("#lw-annotations input:checked")).to_have_count(1)
        x, y, w, h = nxt.bbox
        fixed = [x - 4, y - 4, x + w + 4, y + h + 4]  # a little looser than the detector's box
        drag(page, fixed)
        expect(page.locator("#lw-status")).to_contain_text(f"redrew #{nxt.id}")
        shot(page, "video_04_corrected")
        page.locator("#lw-propagate").click()
        expect(page.locator("#lw-status")).to_contain_text(
            re.compile(rf"propagated track {track.id} from frame {on[1]} to \d+"), timeout=60_000
        )
        message = page.locator("#lw-status").inner_text()
        shot(page, "video_05_propagated")
        to_frame(page, position + 2)
        expect(page.locator(f"#lw-canvas .lw-track[data-track='{track.id}']")).to_be_visible()
        shot(page, "video_06_after_propagate")
        number = page.locator("#lw-frame input[type=number]")  # the slider's box: type a frame
        number.fill("1")
        number.press("Enter")
        expect(page.locator("#lw-frame-line")).to_contain_text("frame 1 of 10 (source frame 0")
        browser.close()

    _, after, _ = stored(home)
    corrected = next(a for a in after if a.id == nxt.id)
    assert corrected.version == 2 and abs(corrected.bbox[0] - fixed[0]) < 4  # the fix itself is kept
    later = {a.id: a for a in rows if a.track_id == track.id and frames[a.image_id] > on[1]}
    now = {a.id: a for a in after if a.track_id == track.id and frames[a.image_id] > on[1]}
    assert set(later) - set(now), f"propagation replaced none of the later frames: {track}, {message}"
    assert {a.tool for a in now.values()} >= {"propagate"} and all(a.mask is not None for a in now.values())
    earlier = {a.id for a in rows if a.track_id == track.id and frames[a.image_id] < on[1]}
    assert earlier <= {a.id for a in after}  # frames before the fix are untouched
    print(f"labelled in {labelled - started:.1f} s, whole browser test {time.monotonic() - started:.1f} s")


def test_draw_into_a_new_track_propagate_then_step_through_the_filtered_frames(video_app) -> None:  # type: ignore[no-untyped-def]
    """Nothing labelled yet: a person drawn on frame 1 starts a new track (the control's default)
    that Propagate follows; a "sign" drawn on frames 1 and 4 (the second picked into the first's
    track); with the class filter on "sign", Next goes from frame 1 straight to frame 4."""
    from playwright.sync_api import expect, sync_playwright

    url, home = video_app
    status, line = "#lw-status", "#lw-frame-line"
    with sync_playwright() as pw:
        browser, page = launch(pw)
        page.goto(url)
        page.locator("#lw-project input").click()
        page.get_by_role("option", name="walk").click()
        expect(page.locator(line)).to_contain_text("frame 1 of 10 (source frame 0", timeout=WAIT)
        field(page, "lw-classes").fill("person, sign")
        page.locator("#lw-save-classes").click()  # the class filter offers them from now on
        expect(page.locator(status)).to_contain_text("classes: person, sign", timeout=WAIT)
        expect(page.locator("#lw-track-for-new input")).to_have_value("New track", timeout=WAIT)

        # A person walking right of the middle on frame 1 (NanoDet finds them at 640,239-684,324).
        page.locator("#lw-mode").get_by_text("Draw box").click()
        field(page, "lw-class").fill("person")
        field(page, "lw-class").press("Enter")
        drag(page, [636, 236, 688, 328])
        added = re.compile(r"added #(\d+) person on new track (\d+)")
        expect(page.locator(status)).to_contain_text(added, timeout=WAIT)
        person, track = map(int, added.search(page.locator(status).inner_text()).groups())  # type: ignore[union-attr]
        expect(page.locator(f"#lw-canvas .lw-track[data-track='{track}']")).to_be_visible(timeout=WAIT)
        shot(page, "video_07_drawn_on_a_new_track")
        page.locator("#lw-propagate").click()
        propagated = re.compile(rf"propagated track {track} from frame 0 to \d+: [1-9]\d* annotations")
        expect(page.locator(status)).to_contain_text(propagated, timeout=120_000)
        shot(page, "video_08_new_track_propagated")

        # A sign on frame 1 (a new track), then on frame 4 into that same track.
        page.locator("#lw-mode").get_by_text("Select").click()
        page.locator("#lw-mode").get_by_text("Draw box").click()  # a new tool: nothing selected
        expect(page.locator("#lw-annotations input:checked")).to_have_count(0, timeout=WAIT)
        field(page, "lw-class").fill("sign")
        field(page, "lw-class").press("Enter")
        drag(page, [40, 40, 120, 120])
        added = re.compile(r"added #(\d+) sign on new track (\d+)")
        expect(page.locator(status)).to_contain_text(added, timeout=WAIT)
        first_sign, signs = map(int, added.search(page.locator(status).inner_text()).groups())  # type: ignore[union-attr]
        to_frame(page, 4)
        expect(page.locator("#lw-annotations input:checked")).to_have_count(0, timeout=WAIT)
        page.locator("#lw-track-for-new input").click()
        page.get_by_role("option", name=re.compile(rf"^track {signs} · sign")).click()
        picked = re.compile(rf"^track {signs} ")
        expect(page.locator("#lw-track-for-new input")).to_have_value(picked, timeout=WAIT)
        drag(page, [60, 60, 140, 140])
        joined = re.compile(rf"added #\d+ sign on track {signs}(?!\d)")
        expect(page.locator(status)).to_contain_text(joined, timeout=WAIT)

        # The class filter on "sign": the line names frames 1 and 4, and Next steps between them.
        page.locator("#lw-filter-class input").click()
        page.get_by_role("option", name="sign", exact=True).click()
        expect(page.locator(line)).to_contain_text("filter: 2 of 10 frames match (frames 1, 4;", timeout=WAIT)
        number = page.locator("#lw-frame input[type=number]")
        number.fill("1")
        number.press("Enter")
        expect(page.locator(line)).to_contain_text("frame 1 of 10 (source frame 0", timeout=WAIT)
        page.locator("#lw-frame-next").click()
        expect(page.locator(line)).to_contain_text("frame 4 of 10 (source frame 6", timeout=WAIT)
        shot(page, "video_09_next_matching_frame")
        page.locator("#lw-frame-next").click()
        expect(page.locator(line)).to_contain_text("no later frame matches the filter", timeout=WAIT)
        expect(page.locator(line)).to_contain_text("frame 4 of 10", timeout=WAIT)
        page.locator("#lw-frame-prev").click()
        expect(page.locator(line)).to_contain_text("frame 1 of 10 (source frame 0", timeout=WAIT)
        browser.close()

    frames, rows, tracks = stored(home)
    drawn = next(a for a in rows if a.id == person)
    assert (drawn.track_id, drawn.tool, frames[drawn.image_id]) == (track, "ui", 0)
    followed = [a for a in rows if a.track_id == track and a.id != person]
    assert followed and {a.tool for a in followed} == {"propagate"}
    assert all(frames[a.image_id] > 0 for a in followed)
    on_signs = sorted((frames[a.image_id], a.id) for a in rows if a.track_id == signs)
    assert [f for f, _ in on_signs] == [0, 6] and on_signs[0][1] == first_sign
    assert {t.id for t in tracks} == {track, signs}
