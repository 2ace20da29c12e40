"""The overlapped label handler on a real store (SQLite or PostgreSQL) with real photos: the same
annotations as the plain handler, images batched through backends that take batches, and the
runner's guarantees kept (progress in order, cancel at the cursor, a model error failing its own
item, resume, a deleted image skipped), with nothing written twice."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from store.db import new_session
from store.models import Annotation, Image, JobState
from tests.server.test_jobs import CLASSES, expected_per_image
from tests.tools.conftest import FakeBackends, FakeDetector, FakeSegmenter, ingest_store, make_photo_dir
from tests.tools.label_jobs import FailsOnce, cancel_at_three_then_resume, rows, run, run_to_the_end
from tools import overlapped_label
from tools.auto_label import KIND, LabelJob
from tools.backends.base import Detections
from tools.overlapped_label import OverlappedLabelJob

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, Path], engine_url):
    return ingest_store(tmp_path / "home", make_photo_dir(tmp_path / "src", photos), database=engine_url)


class BatchDetector(FakeDetector):
    """The fake detector with ``detect_batch``, recording each call's size."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.sizes: list[int] = []

    def detect_batch(
        self, images: list[np.ndarray], prompts: list[str], threshold: float
    ) -> list[Detections]:
        self.sizes.append(len(images))
        return [self.detect(image, prompts, threshold) for image in images]


class BatchSegmenter(FakeSegmenter):
    """The fake segmenter with ``segment_batch``, recording each call's size and keys."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []
        self.keys: list[object] = []

    def segment_batch(self, images, boxes, keys=None):  # type: ignore[no-untyped-def]
        self.sizes.append(len(images))
        self.keys += list(keys or [])
        out = []
        for image, b, key in zip(images, boxes, keys or [None] * len(images), strict=True):
            self.set_image(image, key=key)
            out.append(self.segment(boxes=b))
        return out


def batched() -> FakeBackends:
    return FakeBackends(detector=BatchDetector(), segmenter=BatchSegmenter())


class GatedDetector(BatchDetector):
    """Holds its first call until the decoder has queued two more images, so the next call is
    a batch however slowly a loaded machine decodes (the model thread never waits to fill one)."""

    def __init__(self, decoded_two_more: threading.Event) -> None:
        super().__init__()
        self.decoded_two_more = decoded_two_more

    def detect_batch(self, images, prompts, threshold):  # type: ignore[no-untyped-def]
        if not self.sizes:
            assert self.decoded_two_more.wait(60), "the decoder did not run ahead of the models"
        return super().detect_batch(images, prompts, threshold)


def test_the_same_annotations_as_the_plain_handler_in_batches(
    tmp_path: Path, photos, engine_url, monkeypatch
) -> None:
    source = make_photo_dir(tmp_path / "src", photos)
    plain = ingest_store(tmp_path / "a", source, database=tmp_path / "a.db")
    runner, job_id = run(plain, LabelJob(home=plain.home, backends_factory=FakeBackends))
    assert runner.run_job(job_id).state == JobState.done

    store = ingest_store(tmp_path / "b", source, database=engine_url)
    decoded_two_more, reads = threading.Event(), []
    read_rgb = overlapped_label.read_rgb

    def counted(path: Path) -> np.ndarray:
        reads.append(path)
        if len(reads) == 4:  # the decoder puts each image before it reads the next: 1-3 queued
            decoded_two_more.set()
        return read_rgb(path)

    monkeypatch.setattr(overlapped_label, "read_rgb", counted)
    backends = FakeBackends(detector=GatedDetector(decoded_two_more), segmenter=BatchSegmenter())
    handler = OverlappedLabelJob(home=store.home, backends_factory=lambda: backends, batch=4)
    run_to_the_end(store, handler)
    expected = rows(plain.engine)
    assert sum(expected.values()) == sum(expected_per_image(plain).values()) > 0
    assert rows(store.engine) == expected  # same boxes, masks, scores and provenance
    assert sum(backends.detector.sizes) == 6 and max(backends.detector.sizes) > 1  # batched
    assert max(backends.segmenter.sizes) > 1 and set(backends.segmenter.keys) <= set(store.images.values())
    assert handler.busy.models > 0 and sum(handler.busy.batches) == 6


def test_batch_one_is_the_plain_handler(store) -> None:
    handler = OverlappedLabelJob(home=store.home, backends_factory=FakeBackends)
    assert handler.batch == 1  # the fakes' detector has no CUDA device
    before = threading.active_count()
    runner, job_id = run(store, handler)
    assert runner.run_job(job_id).state == JobState.done
    assert handler.busy.batches == [] and threading.active_count() <= before  # no threads ran ahead
    assert sum(rows(store.engine).values()) == sum(expected_per_image(store).values())


def test_cancel_stops_at_the_cursor_and_resume_finishes(store) -> None:
    backends = FakeBackends(detector=BatchDetector(delay_s=0.1), segmenter=BatchSegmenter())
    handler = OverlappedLabelJob(home=store.home, backends_factory=lambda: backends, batch=2)
    cancel_at_three_then_resume(store, handler)


class FailsOn(BatchDetector):
    """Falls over on every image of one size, in a batch or alone."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = shape

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        if image.shape == self.shape:
            raise RuntimeError("model fell over")
        return super().detect(image, prompts, threshold)


def test_a_model_error_fails_its_own_item_not_its_batch(store) -> None:
    """A batch that fails is retried image by image: only the image the models fail on fails the
    job (at its cursor, the images before it written), and a transient failure is absorbed."""
    ids = sorted(store.images.values())
    bad = ids.index(store.images["astronaut.png"])  # 512x512, the only image of that size
    backends = FakeBackends(detector=FailsOn((512, 512, 3)))
    handler = OverlappedLabelJob(home=store.home, backends_factory=lambda: backends, batch=6, prefetch=6)
    runner, job_id = run(store, handler)
    try:
        failed = runner.run_job(job_id)
    finally:
        handler.close()
    assert (failed.state, failed.cursor) == (JobState.failed, bad) and "model fell over" in failed.error
    with new_session(store.engine) as session:
        labeled = set(session.exec(select(Annotation.image_id)).all())
    assert labeled == {i for i in ids[:bad] if expected_per_image(store)[_name(store, i)]}

    store_once = FakeBackends(detector=FailsOnce())  # fails on its third image, once
    handler = OverlappedLabelJob(home=store.home, backends_factory=lambda: store_once, batch=6, prefetch=6)
    runner.handlers[KIND] = handler
    runner.resume(job_id)
    try:
        assert runner.run_job(job_id).state == JobState.done  # the retry absorbed the failure
    finally:
        handler.close()
    keys = rows(store.engine)
    assert set(keys.values()) == {1}
    assert sum(keys.values()) == sum(expected_per_image(store).values())


def _name(store, image_id: int) -> str:  # type: ignore[no-untyped-def]
    return next(name for name, i in store.images.items() if i == image_id)


def test_an_image_deleted_after_the_job_was_queued_is_skipped(store) -> None:
    backends = batched()
    handler = OverlappedLabelJob(home=store.home, backends_factory=lambda: backends, batch=3)
    runner, job_id = run(store, handler)
    gone = sorted(store.images.values())[1]
    with new_session(store.engine) as session:
        image = session.get(Image, gone)
        (store.home / image.path).unlink()  # its file too: decoding it would fail
        session.delete(image)
        session.commit()
    try:
        job = runner.run_job(job_id)
    finally:
        handler.close()
    assert (job.state, job.error) == (JobState.done, "")
    with new_session(store.engine) as session:
        labeled = set(session.exec(select(Annotation.image_id)).all())
    assert gone not in labeled and len(labeled) == 5


def test_threads_nobody_reads_from_end_by_themselves(store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancelled job leaves answers computed ahead; their threads end instead of waiting forever."""
    monkeypatch.setattr(overlapped_label, "STALL_S", 0.5)
    ids = sorted(store.images.values())
    with new_session(store.engine) as session:
        paths = {i.id: store.home / i.path for i in session.exec(select(Image))}
    run_ = overlapped_label.Lookahead(
        batched(), [(k, i, paths[i]) for k, i in enumerate(ids)], CLASSES, 0.3,
        batch=1, prefetch=1, ahead=1, busy=overlapped_label.Busy(),
    )  # fmt: skip
    assert run_.take(0, timeout_s=30) is not None  # it answers what is asked
    deadline = time.monotonic() + 10
    while run_.covers(1) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not run_.covers(1)  # nobody asked for item 1 within STALL_S: the run ended
    with pytest.raises(RuntimeError, match="stopped"):
        run_.take(2, timeout_s=5)  # item 1 was computed ahead (ahead=1); item 2 never will be
    for thread in run_._threads:
        thread.join(timeout=5)
    assert not any(thread.is_alive() for thread in run_._threads)


def test_bad_options_name_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch must be at least 1, got 0"):
        OverlappedLabelJob(home=tmp_path, backends_factory=FakeBackends, batch=0)
    with pytest.raises(ValueError, match="timeout_s must be positive"):
        OverlappedLabelJob(home=tmp_path, backends_factory=FakeBackends, timeout_s=0)


@pytest.mark.slow
def test_the_real_lite_stack_overlapped_writes_what_it_writes_plainly(
    tmp_path: Path, photos, models_dir: Path
) -> None:
    from functools import partial

    from tools.backends.stacks import build_backends

    factory = partial(build_backends, "lite", models_dir)
    source = make_photo_dir(tmp_path / "src", photos, n_extra=2)
    plain = ingest_store(tmp_path / "a", source)
    runner, job_id = run(plain, LabelJob(home=plain.home, backends_factory=factory))
    assert runner.run_job(job_id).state == JobState.done
    store = ingest_store(tmp_path / "b", source)
    handler = OverlappedLabelJob(home=store.home, backends_factory=factory, batch=2)
    runner, job_id = run(store, handler)
    try:
        assert runner.run_job(job_id).state == JobState.done
    finally:
        handler.close()
    expected = rows(plain.engine)
    assert sum(n for k, n in expected.items() if k[1] == "person") >= 4  # real people were found
    assert rows(store.engine) == expected
