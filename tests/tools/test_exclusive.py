"""A segmenter shared by threads (a job's model thread, a click on the canvas) serves one image's
``set_image`` -> ``segment`` at a time: the pipeline and the interactive segment call both hold
its lock, so a job never gets masks of the image a click set meanwhile."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from sqlmodel import select

from store.db import new_session
from store.models import Image
from tests.tools.conftest import FakeBackends, FakeSegmenter
from tools import segment
from tools.pipeline import infer_batch, load_rgb


class Watching(FakeSegmenter):
    """Records set/segment in order, slowly, so unguarded callers would interleave."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, object]] = []
        self.current: object = None

    def set_image(self, image, key=None):  # type: ignore[no-untyped-def]
        self.log.append(("set", key))
        self.current = key
        time.sleep(0.02)
        super().set_image(image, key)

    def segment(self, boxes=None, points=None, point_labels=None):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        self.log.append(("segment", self.current))
        return super().segment(boxes=boxes, points=points, point_labels=point_labels)


def test_a_job_and_clicks_on_one_segmenter_never_interleave(store) -> None:  # type: ignore[no-untyped-def]
    backends = FakeBackends(segmenter=Watching())
    with new_session(store.engine) as session:
        images = list(session.exec(select(Image)))
    rgbs = {i.id: load_rgb(store.home, i) for i in images}
    ids = sorted(rgbs)

    def job() -> None:
        for _ in range(3):
            infer_batch(backends, [rgbs[i] for i in ids], ["person", "bus"], 0.3, ids)

    def clicks() -> None:
        prompt = segment.Prompt(points=[[30.0, 30.0]])
        for _ in range(10):
            segment.compute_mask(backends, Path(store.home), images[0], prompt)

    threads = [threading.Thread(target=job), threading.Thread(target=clicks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    log = backends.segmenter.log
    assert len(log) >= 2 * 10 and len(log) % 2 == 0
    pairs = list(zip(log[::2], log[1::2], strict=True))
    assert all(s[0] == "set" and g == ("segment", s[1]) for s, g in pairs), pairs  # set, then its segment
    assert {key for (_, key), _ in pairs} >= {images[0].id, *ids[1:]}  # both threads ran
    assert np.all([k is not None for (_, k), _ in pairs])
