"""The UI as a person uses it: a real Chromium drives the running app, screenshot per step.

Screenshots go to artifacts/ui/ (gitignored); look at them after a run.
"""

from __future__ import annotations

import base64
import io
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from store import get_project_by_name, list_jobs, new_session, open_engine, query_annotations, upsert_finding
from tests.conftest import REPO

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SHOTS = REPO / "artifacts" / "ui"
LABEL_TIMEOUT_MS = 600_000  # lite stack on 2 busy cores: 1-3 minutes for two photos


def canvas_picture(page) -> Image.Image:  # type: ignore[no-untyped-def]
    src = page.locator("#lw-canvas .lw-canvas img").get_attribute("src")
    assert src and src.startswith("data:image/jpeg;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")


def overlay_difference(page, original: Path) -> float:  # type: ignore[no-untyped-def]
    """Mean absolute difference between the canvas and the bare photo (0 = no overlays)."""
    shown = canvas_picture(page)
    with Image.open(original) as photo:
        bare = photo.convert("RGB").resize(shown.size)
    return float(np.abs(np.asarray(shown, np.int16) - np.asarray(bare, np.int16)).mean())


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_timeout(500)  # let the last update paint
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def field(page, elem_id: str):  # type: ignore[no-untyped-def]
    """The text field of a gr.Textbox (an input or a textarea, depending on its lines)."""
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def chromium(pw):  # type: ignore[no-untyped-def]
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian package 'chromium')")
    SHOTS.mkdir(parents=True, exist_ok=True)
    return pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def launch(pw):  # type: ignore[no-untyped-def]
    browser = chromium(pw)
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.set_default_timeout(60_000)
    return browser, page


def sign_in(browser, url: str, name: str):  # type: ignore[no-untyped-def]
    """A page of its own browser context (own cookies), signed in as ``name`` through /login."""
    from playwright.sync_api import expect

    from tests.ui.conftest import PASSWORD

    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/login$"))
    page.locator("input[name=username]").fill(name)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#lw-project")).to_be_visible(timeout=30_000)
    return page


def project_options(page) -> list[str]:  # type: ignore[no-untyped-def]
    page.locator("#lw-project input").click()
    options = page.get_by_role("option")
    options.first.wait_for()
    return [t.strip() for t in options.all_inner_texts()]


def open_street(page, annotation_id: int) -> None:  # type: ignore[no-untyped-def]
    """Open project "street" from the dropdown and select the annotation in the list."""
    from playwright.sync_api import expect

    page.get_by_role("option", name="street").click()
    expect(page.locator("#lw-canvas .lw-canvas img")).to_be_visible()
    page.locator("#lw-annotations label").filter(has_text=f"#{annotation_id} ").click()
    expect(page.locator("#lw-annotations input:checked")).to_have_count(1)
    # The selection drawn (and, in the same reply, its class put in the Class box, which the
    # caller is about to type over).
    expect(page.locator(f"#lw-canvas .lw-canvas[data-selected='{annotation_id}']")).to_be_visible()
    expect(page.locator("#lw-class input")).to_have_value(re.compile(r"\S"))


def choose_class(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """Type a class into the 'Class' box; Enter commits it before any button reads it."""
    field(page, "lw-class").fill(name)
    field(page, "lw-class").press("Enter")


def status_after(page, button: str, text: str) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.locator(f"#{button}").click()
    expect(page.locator("#lw-status")).to_contain_text(text)


def open_project_with_photos(page, url: str, photo_zip: Path, prefix: str = "") -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.goto(url)
    field(page, "lw-new-project").fill("street")
    page.locator("#lw-create-project").click()
    expect(page.locator("#lw-status")).to_contain_text("created project street")
    shot(page, f"{prefix}01_project_created")
    page.locator("input[type=file]").first.set_input_files(str(photo_zip))
    expect(page.locator("#lw-ingest-report")).to_contain_text("2 added")
    expect(page.locator("#lw-canvas .lw-canvas img")).to_be_visible(timeout=15_000)


def store_jobs(home: Path) -> list:  # type: ignore[type-arg]
    engine = open_engine(home / "labelwright.db")
    try:
        with new_session(engine) as session:
            return list_jobs(session)
    finally:
        engine.dispose()


def store_annotations(home: Path, project: str) -> list:  # type: ignore[type-arg]
    engine = open_engine(home / "labelwright.db")
    try:
        with new_session(engine) as session:
            found = get_project_by_name(session, name=project)
            assert found is not None
            return query_annotations(session, project_id=found.id)
    finally:
        engine.dispose()


def test_label_fix_export_in_a_real_browser(live_app, photo_zip: Path, photos: dict[str, Path]) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    url, home = live_app
    with sync_playwright() as pw:
        browser, page = launch(pw)
        open_project_with_photos(page, url, photo_zip)
        assert overlay_difference(page, photos["bus.jpg"]) < 3  # nothing drawn yet
        shot(page, "02_uploaded")

        field(page, "lw-chat-input").fill("label every pedestrian")
        field(page, "lw-chat-input").press("Enter")
        expect(page.locator("#lw-chat")).to_contain_text("No LLM is connected")
        shot(page, "03_chat_without_llm")

        field(page, "lw-classes").fill("person,bus,tie")
        page.locator("#lw-label").click()
        expect(page.locator("#lw-progress")).to_contain_text("running", timeout=120_000)
        shot(page, "04_labeling")
        expect(page.locator("#lw-progress")).to_contain_text("done", timeout=LABEL_TIMEOUT_MS)
        expect(page.locator("#lw-annotations")).to_contain_text("bus", timeout=30_000)
        expect(page.locator("#lw-annotations")).to_contain_text("person")
        assert overlay_difference(page, photos["bus.jpg"]) > 8  # masks and boxes tint the photo
        shot(page, "05_labeled")

        before = store_annotations(home, "street")
        labels = page.locator("#lw-annotations label")
        person = labels.filter(has_text=re.compile(r"person")).first
        ann_id = int(re.search(r"#(\d+)", person.inner_text()).group(1))  # type: ignore[union-attr]
        person.click()
        expect(page.locator(f"#lw-canvas .lw-canvas[data-selected='{ann_id}']")).to_be_visible()
        page.locator("#lw-delete").click()
        expect(page.locator("#lw-status")).to_contain_text(f"deleted #{ann_id}")
        after = store_annotations(home, "street")
        assert ann_id in {a.id for a in before} and ann_id not in {a.id for a in after}
        assert len(after) == len(before) - 1
        shot(page, "06_deleted_one")

        page.locator("#lw-undo").click()
        expect(page.locator("#lw-status")).to_contain_text("undone")
        assert ann_id in {a.id for a in store_annotations(home, "street")}
        bus = labels.filter(has_text=re.compile(r"bus")).first
        bus_id = int(re.search(r"#(\d+)", bus.inner_text()).group(1))  # type: ignore[union-attr]
        bus.click()
        expect(page.locator(f"#lw-canvas .lw-canvas[data-selected='{bus_id}']")).to_be_visible()
        page.locator("#lw-accept").click()
        expect(page.locator("#lw-status")).to_contain_text(f"#{bus_id} accepted")
        assert {a.id: a.status.value for a in store_annotations(home, "street")}[bus_id] == "accepted"
        shot(page, "07_undone_and_accepted")

        # Click on the canvas to segment one more object at a point (the custom canvas's JS).
        n = len(store_annotations(home, "street"))
        image = page.locator("#lw-canvas .lw-canvas img")
        box = image.bounding_box()
        assert box is not None
        clicked = time.perf_counter()
        image.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.45})  # scrolls it into view
        expect(page.locator("#lw-status")).to_contain_text("saved #", timeout=120_000)
        print(f"click -> mask saved and shown: {time.perf_counter() - clicked:.2f} s (issue 16: <= 1 s)")
        rows = store_annotations(home, "street")
        assert len(rows) == n + 1 and rows[-1].tool == "segment"
        shot(page, "08_click_segment")

        # A finding as the review agent files it; the reviewer rejects its annotation in the Review tab.
        engine = open_engine(home / "labelwright.db")
        with new_session(engine) as session:
            finding = upsert_finding(
                session,
                project_id=rows[0].project_id,
                kind="low_score",
                fingerprint="browser-test",
                message=f"#{ann_id} person scores low; is it a person?",
                severity=0.8,
                confidence=0.7,
                image_id=rows[0].image_id,
                annotation_id=ann_id,
            )
            session.commit()
        engine.dispose()
        page.get_by_role("tab", name="Review", exact=True).click()
        expect(page.locator("#lw-findings")).to_contain_text("low_score")
        page.locator("#lw-findings").get_by_text("low_score").locator("visible=true").first.click()
        expect(page.locator("#lw-finding")).to_contain_text(f"finding {finding.id}")
        page.locator("#lw-review-reject").click()
        expect(page.locator("#lw-status")).to_contain_text(f"finding {finding.id}: rejected")
        assert {a.id: a.status.value for a in store_annotations(home, "street")}[ann_id] == "rejected"
        shot(page, "09_review")

        page.get_by_role("tab", name="Label").click()
        page.locator("#lw-strip").get_by_text("zidane.jpg").locator("visible=true").first.click()
        expect(page.locator("#lw-annotations")).not_to_contain_text("bus")
        assert overlay_difference(page, photos["zidane.jpg"]) > 8
        shot(page, "10_second_image")

        # Drag a box around the left man to segment him; then outline the tie as a polygon.
        field(page, "lw-class").fill("person")
        field(page, "lw-class").press("Enter")
        image.scroll_into_view_if_needed()
        box = image.bounding_box()
        assert box is not None
        start, end = (0.15, 0.2), (0.62, 0.99)
        page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=8)
        page.mouse.up()
        expect(page.locator("#lw-status")).to_contain_text("saved #", timeout=120_000)
        dragged = store_annotations(home, "street")[-1]
        x, y, w, h = dragged.bbox
        assert dragged.tool == "segment" and w * h > 0.1 * 1280 * 720
        assert x >= 0.15 * 1280 - 2 and y >= 0.2 * 720 - 2 and x + w <= 0.62 * 1280 + 2
        shot(page, "11_drag_segment")

        page.locator("#lw-mode").get_by_text("Polygon").click()
        field(page, "lw-class").fill("tie")
        field(page, "lw-class").press("Enter")
        corners = [(0.44, 0.62), (0.48, 0.62), (0.47, 0.95), (0.43, 0.95)]
        for n, (fx, fy) in enumerate(corners, 1):
            image.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
            expect(page.locator("#lw-canvas svg circle")).to_have_count(n)
        shot(page, "12_polygon_drawn")
        page.locator("#lw-poly-finish").click()
        expect(page.locator("#lw-status")).to_contain_text("added #")
        tie = store_annotations(home, "street")[-1]
        assert tie.tool == "ui" and tie.mask is not None and tie.status.value == "proposed"
        assert abs(tie.bbox[0] - 0.43 * 1280) < 8 and abs(tie.bbox[1] - 0.62 * 720) < 8
        shot(page, "13_polygon_saved")

        page.get_by_role("tab", name="Analytics").click()
        expect(page.locator("#lw-totals")).to_contain_text("2 images")
        page.wait_for_timeout(2000)
        shot(page, "14_analytics")

        page.get_by_role("tab", name="Export").click()
        page.locator("#lw-export").click()
        expect(page.locator("#lw-status")).to_contain_text("exported COCO")
        expect(page.locator("#lw-export-file a").first).to_be_visible()
        with page.expect_download() as download_info:
            page.locator("#lw-export-file a").first.click()
        downloaded = SHOTS / "coco.json"
        download_info.value.save_as(downloaded)
        shot(page, "15_exported")
        browser.close()

    from pycocotools.coco import COCO

    coco = COCO(str(downloaded))
    names = {c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert {"person", "bus"} <= names
    assert len(coco.getImgIds()) == 2
    kept = [a for a in store_annotations(home, "street") if a.status.value != "rejected"]  # the default
    assert len(coco.getAnnIds()) == len(kept) and ann_id not in coco.anns


def test_label_through_the_agent_chat(live_app_with_agent, photo_zip: Path) -> None:  # type: ignore[no-untyped-def]
    """The chat path: the command agent on the embedded LLM starts the labeling job."""
    from playwright.sync_api import expect, sync_playwright

    url, home = live_app_with_agent
    with sync_playwright() as pw:
        browser, page = launch(pw)
        open_project_with_photos(page, url, photo_zip, prefix="agent_")
        field(page, "lw-classes").fill("person,bus,tie")
        page.locator("#lw-save-classes").click()
        expect(page.locator("#lw-status")).to_contain_text("classes: person, bus, tie")
        field(page, "lw-chat-input").fill("label every person, bus and tie in all images")
        field(page, "lw-chat-input").press("Enter")
        chat = page.locator("#lw-chat")
        expect(chat).to_contain_text(re.compile(r"started job|error:", re.I), timeout=LABEL_TIMEOUT_MS)
        shot(page, "agent_02_tool_call")
        assert store_jobs(home), f"the agent did not start a job: {chat.text_content()}"
        expect(page.locator("#lw-progress")).to_contain_text("done", timeout=LABEL_TIMEOUT_MS)
        expect(page.locator("#lw-annotations")).to_contain_text("person", timeout=30_000)
        shot(page, "agent_03_labeled")
        browser.close()
    rows = store_annotations(home, "street")
    assert rows and all(a.agent_run_id is not None for a in rows)


def test_each_role_on_a_network_bind_sees_and_does_what_it_may(network_app) -> None:  # type: ignore[no-untyped-def]
    """Signed in through /login: the viewer sees only its project and is refused every change, the
    annotator edits but cannot accept, the reviewer accepts; a refusal changes nothing."""
    from playwright.sync_api import sync_playwright

    url, home, ids = network_app
    ann = ids["annotation"]
    with sync_playwright() as pw:
        browser = chromium(pw)
        viewer = sign_in(browser, url, "vic")
        assert project_options(viewer) == ["street"]  # not "private"
        open_street(viewer, ann)
        choose_class(viewer, "bus")
        status_after(viewer, "lw-relabel", "⚠️ annotation.edit needs the annotator role")
        status_after(viewer, "lw-accept", "⚠️ annotation.edit needs the annotator role")
        status_after(viewer, "lw-undo", "needs the annotator role")
        field(viewer, "lw-new-project").fill("mine")
        status_after(viewer, "lw-create-project", "⚠️ project.create needs an instance admin")
        shot(viewer, "roles_01_viewer_refused")
        (row,) = store_annotations(home, "street")
        assert (row.version, row.status.value) == (1, "proposed")

        annotator = sign_in(browser, url, "ann")
        project_options(annotator)
        open_street(annotator, ann)
        choose_class(annotator, "bus")
        status_after(annotator, "lw-relabel", f"#{ann} is now bus")
        status_after(annotator, "lw-accept", "⚠️ changing an annotation's status needs the reviewer role")
        shot(annotator, "roles_02_annotator")

        reviewer = sign_in(browser, url, "rev")
        project_options(reviewer)
        open_street(reviewer, ann)
        status_after(reviewer, "lw-accept", f"#{ann} accepted")
        shot(reviewer, "roles_03_reviewer_accepted")
        browser.close()
    (row,) = store_annotations(home, "street")
    assert (row.status.value, row.author) == ("accepted", "local")


def test_an_edit_in_one_browser_shows_in_another_within_a_second(network_app) -> None:  # type: ignore[no-untyped-def]
    """Two people on one project: each relabel by the annotator shows on the viewer's page, which
    follows the project's events (0.5 s ticks). Three edits; the median must be under 1 s (the
    slowest under 2 s: CI's 2 cores also run both browsers)."""
    from playwright.sync_api import expect, sync_playwright

    url, home, ids = network_app
    ann = ids["annotation"]
    shows = "(text) => document.querySelector('#lw-annotations').innerText.includes(text)"
    with sync_playwright() as pw:
        browser = chromium(pw)
        watcher = sign_in(browser, url, "vic")
        project_options(watcher)
        open_street(watcher, ann)
        editor = sign_in(browser, url, "ann")
        project_options(editor)
        open_street(editor, ann)
        expect(watcher.locator("#lw-annotations")).to_contain_text(f"#{ann} person")
        delays = []
        for label in ("bus", "tie", "person"):
            choose_class(editor, label)
            editor.locator("#lw-relabel").click()
            started = time.monotonic()
            watcher.wait_for_function(
                shows, arg=f"#{ann} {label}", polling="raf", timeout=5_000
            )  # each frame
            delays.append(time.monotonic() - started)
            expect(editor.locator("#lw-status")).to_contain_text(f"#{ann} is now {label}")
        shot(watcher, "live_01_watcher_sees_the_edit")
        browser.close()
    print("the other browser showed each edit after " + ", ".join(f"{d:.2f}" for d in delays) + " s")
    assert sorted(delays)[1] < 1.0 and max(delays) < 2.0, f"edits showed after {delays} s"
    (row,) = store_annotations(home, "street")
    assert row.version == 4


def test_review_twenty_proposals_with_the_keyboard_alone(live_app, photo_zip: Path) -> None:  # type: ignore[no-untyped-def]
    """The Review stream: after opening the tab, only keys: a accept, r reject, 1-3 relabel, → skip,
    ← back (and a changed mind), z/0 zoom, three r at full speed, e to edit. The store holds what
    the keys said, and the rate shows."""
    from playwright.sync_api import expect, sync_playwright

    from ops import categories, images, projects
    from ops.caller import local_caller
    from ops.unit import Env
    from tests.ui.test_stream import CLASSES, seed_proposals

    url, home = live_app
    engine = open_engine(home / "labelwright.db")
    env = Env(engine, home)
    street = projects.create_project(env, local_caller(), name="street").id
    images.ingest(env, local_caller(), source=photo_zip, project_id=street)
    seeded = seed_proposals(env, street, n=24)
    names = {c.id: c.name for c, _counts in categories.list_(env, local_caller(), street)}
    engine.dispose()
    before = {a.id: a for a in store_annotations(home, "street")}
    frame = "document.querySelector('#lw-stream-view .lw-frame')"
    item = f"() => {frame}?.dataset.item || ''"
    moved = f"(prev) => {{ const f = {frame}; return !!f && f.dataset.item !== prev; }}"
    zoom = "() => document.querySelector('#lw-stream-view .lw-stage').style.transform"
    keys = (["a", "a", "r", "2", "a", "r", "3", "a", "1", "r"] * 2)[:17]  # then three r at full speed
    with sync_playwright() as pw:
        browser, page = launch(pw)
        page.goto(url)
        page.locator("#lw-project input").click()
        page.get_by_role("option", name="street").click()
        expect(page.locator("#lw-canvas .lw-canvas img")).to_be_visible()
        page.get_by_role("tab", name="Review stream").click()
        started = time.monotonic()
        expect(page.locator("#lw-stream-view .lw-frame")).to_be_visible()
        page.evaluate("document.activeElement.blur()")  # the tab button keeps arrows for itself
        page.wait_for_function(f"() => {frame}.querySelector('.lw-photo').naturalWidth > 0")
        page.keyboard.press("z")  # zoom to the proposal's box, then back
        assert float(re.search(r"scale\(([\d.]+)\)", page.evaluate(zoom)).group(1)) > 1.2  # type: ignore[union-attr]
        shot(page, "stream_01_zoomed")
        page.keyboard.press("0")
        expected: dict[int, tuple[str, str]] = {}
        skipped = None
        for n, key in enumerate(keys, 1):
            shown = int(page.evaluate(item))
            assert before[shown].status.value == "proposed" and shown in seeded
            klass = CLASSES[int(key) - 1] if key.isdigit() else names[before[shown].category_id]
            page.keyboard.press(key)
            expect(page.locator("#lw-stream-rate p")).to_have_text(re.compile(rf"^{n} reviewed"))
            page.wait_for_function(moved, arg=str(shown))  # the view, too, shows the next one
            expected[shown] = ({"a": "accepted", "r": "rejected"}.get(key, "proposed"), klass)
            if n == 5:
                skipped = int(page.evaluate(item))
                page.keyboard.press("ArrowRight")  # pass one over
                page.wait_for_function(moved, arg=str(skipped))
            if n == 10:
                shot(page, "stream_02_ten_reviewed")
                ahead = page.evaluate(item)
                page.keyboard.press("ArrowLeft")  # the one just rejected: a changed mind
                page.wait_for_function(moved, arg=ahead)
                back_to = int(page.evaluate(item))
                assert expected[back_to][0] == "rejected"
                page.keyboard.press("a")
                expect(page.locator("#lw-stream-status")).to_contain_text(f"#{back_to} accepted")
                expected[back_to] = ("accepted", expected[back_to][1])
                page.wait_for_function(moved, arg=str(back_to))
        for _ in range(3):
            page.keyboard.press("r")  # no wait in between: handled in order, none dropped
        expect(page.locator("#lw-stream-rate p")).to_have_text(re.compile(r"^20 reviewed"), timeout=30_000)
        elapsed = time.monotonic() - started
        rate = page.locator("#lw-stream-rate p").inner_text()
        page.locator("#lw-stream-opacity input[type=number]").fill("0.9")
        page.locator("#lw-stream-opacity input[type=number]").press("Enter")
        opacity = f"() => getComputedStyle({frame}).getPropertyValue('--lw-opacity').trim() === '0.9'"
        page.wait_for_function(opacity)  # the mask layer's opacity, set on the page without a round trip
        page.evaluate("document.activeElement.blur()")  # keys typed into a field are not commands
        shot(page, "stream_03_twenty_reviewed")
        editing = page.evaluate(item)
        page.keyboard.press("e")  # edit: the Label tab with that annotation selected
        checked = page.locator("#lw-annotations label").filter(has=page.locator("input:checked"))
        expect(checked).to_contain_text(f"#{editing} ", timeout=15_000)  # a tab switch and a redraw
        shot(page, "stream_04_edit_in_label_tab")
        browser.close()
    per_minute = float(re.search(r"([\d.]+) per minute", rate).group(1))  # type: ignore[union-attr]
    print(f"reviewed 20 in {elapsed:.1f} s; the page says {rate!r}")
    assert rate.startswith("20 reviewed") and 0.9 * 20 * 60 / elapsed <= per_minute <= 1.5 * 20 * 60 / elapsed
    after = {a.id: a for a in store_annotations(home, "street")}
    burst = {i for i, a in after.items() if a.status.value == "rejected"} - set(expected)
    assert (
        len(expected) == 17
        and len(burst) == 3
        and skipped is not None
        and skipped not in set(expected) | burst
    )
    for ann_id, (status, klass) in expected.items():
        assert (after[ann_id].status.value, names[after[ann_id].category_id]) == (status, klass), ann_id
    untouched = set(seeded) - set(expected) - burst
    assert all(after[i].version == before[i].version == 1 for i in untouched)
