"""Fixtures for tool tests: a real store with real photos, and small fake backends.

The fakes meet the backend Protocols deterministically so the tests check OUR logic (lookups,
provenance, idempotency, text results); the real lite stack is exercised by the slow tests.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ops.caller import Caller
from store.db import new_session, open_engine
from tools.backends.base import Detections
from tools.backends.vocab import to_coco
from tools.registry import ToolContext

SKIMAGE_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")

# label -> boxes (x1, y1, x2, y2, confidence), the same on every image (clipped to its size).
FAKE_BOXES: dict[str, list[tuple[float, float, float, float, float]]] = {
    "person": [(50, 400, 245, 900, 0.9), (222, 405, 345, 860, 0.8), (10, 10, 40, 60, 0.2)],
    "bus": [(20, 230, 800, 720, 0.95)],
    "tie": [(440, 430, 500, 700, 0.6)],
}


class FakeDetector:
    model_id = "fake-detector"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def detect(self, image: np.ndarray, prompts: list[str], threshold: float) -> Detections:
        for prompt in prompts:
            to_coco(prompt)  # raises UnknownLabel like the lite detector
        self.calls += 1
        time.sleep(self.delay_s)
        h, w = image.shape[:2]
        rows = [
            (np.clip([x1, y1, x2, y2], 0, [w, h, w, h]), conf, prompt)
            for prompt in prompts
            for x1, y1, x2, y2, conf in FAKE_BOXES.get(to_coco(prompt)[0], [])
            if conf >= threshold and x1 < w and y1 < h
        ]
        if not rows:
            return Detections.empty()
        return Detections(
            xyxy=np.array([r[0] for r in rows]),
            confidence=np.array([r[1] for r in rows]),
            label=[r[2] for r in rows],
        )


class FakeSegmenter:
    """An ellipse inscribed in each box; a disc around the first point."""

    model_id = "fake-segmenter"

    def __init__(self) -> None:
        self.set_image_calls: list[Any] = []
        self.shape: tuple[int, int] = (0, 0)

    def set_image(self, image: np.ndarray, key: str | int | None = None) -> None:
        self.set_image_calls.append(key)
        self.shape = image.shape[:2]

    def segment(
        self,
        boxes: np.ndarray | None = None,
        points: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.shape
        yy, xx = np.mgrid[0:h, 0:w]
        masks = []
        if boxes is not None:
            for x1, y1, x2, y2 in boxes:
                cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, max((x2 - x1) / 2, 1), max((y2 - y1) / 2, 1)
                masks.append(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1)
        else:
            assert points is not None
            x, y = points[0]
            masks.append((xx - x) ** 2 + (yy - y) ** 2 <= 20**2)
        return np.stack(masks), np.full(len(masks), 0.9, dtype=np.float32)


class FakeVerifier:
    """Knows bus and tie (0.8); cannot judge anything else (NaN), like an ImageNet classifier."""

    model_id = "fake-verifier"

    def score(self, crops: list[np.ndarray], labels: list[str]) -> np.ndarray:
        row = [0.8 if label in ("bus", "tie") else np.nan for label in labels]
        return np.array([row] * len(crops), dtype=np.float32).reshape(len(crops), len(labels))


@dataclass
class FakeBackends:
    detector: FakeDetector = field(default_factory=FakeDetector)
    segmenter: FakeSegmenter = field(default_factory=FakeSegmenter)
    verifier: FakeVerifier | None = field(default_factory=FakeVerifier)


def make_photo_dir(dest: Path, photos: dict[str, Path], n_extra: int = len(SKIMAGE_PHOTOS)) -> Path:
    """bus.jpg, zidane.jpg and up to four skimage photos in one folder (an ingest source)."""
    import skimage.data

    dest.mkdir(parents=True, exist_ok=True)
    for name, path in photos.items():
        shutil.copy(path, dest / name)
    data_dir = Path(skimage.data.__file__).parent
    for name in SKIMAGE_PHOTOS[:n_extra]:
        shutil.copy(data_dir / name, dest / name)
    return dest


TESTER = Caller("tester", None, True, via="agent")  # an instance admin, acting through the agent


@dataclass
class Store:
    engine: Any
    home: Path
    project_id: int
    images: dict[str, int]  # file name -> id

    def ctx(self, backends: Any = None, on_job: Any = None, caller: Caller | None = None) -> ToolContext:
        """A tool context acting as ``caller`` (default: the local user, through the agent)."""
        return ToolContext(
            engine=self.engine,
            project_id=self.project_id,
            home=self.home,
            models_dir=self.home / "models",
            caller=caller or TESTER,
            backends_factory=(lambda: backends) if backends is not None else None,
            on_job=on_job,
        )


def ingest_store(home: Path, source: Path, project: str = "p", database: Any = None) -> Store:
    """``database``: a SQLite path or database URL (default: the SQLite file in ``home``)."""
    from sqlmodel import select

    from store.ingest import ingest
    from store.models import Image

    engine = open_engine(database or home / "labelwright.db")
    with new_session(engine) as session:
        ingest(session, home=home, project_name=project, source=source)
        rows = session.exec(select(Image)).all()
        return Store(engine, home, rows[0].project_id, {r.file_name: r.id for r in rows})


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, Path]) -> Store:
    """A real SQLite store in tmp_path with project "p" holding six real photos."""
    return ingest_store(tmp_path / "home", make_photo_dir(tmp_path / "src", photos))


@pytest.fixture
def fakes() -> FakeBackends:
    return FakeBackends()
