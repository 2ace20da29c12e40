"""A real-photo project with planted proposals and a planted truth, for calibration and review
order: photos from ultralytics' assets and scikit-image, many scored proposals of one class, each
right or wrong by a known rule (the detector's score is informative but not calibrated:
P(right | score) = 0.3 + 0.7 * score), and some audit findings on wrong ones.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ops import annotations, images
from ops.annotations import NewAnnotation
from ops.caller import local_caller
from ops.unit import Env
from store.db import new_session, open_engine
from store.findings import upsert_finding

MODEL = "lite-nanodet+lite-isnet-medium+lite-efficientnet"
SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket")
CALLER = local_caller("api")


@dataclass
class Planted:
    env: Env
    project_id: int
    right: dict[int, bool]  # annotation id -> whether the proposal is right (the planted truth)
    score: dict[int, float]
    reviewed: list[int]  # decided by the planted reviewer (accepted iff right)
    held_out: list[int]  # still proposed


def real_photos(folder: Path, ultralytics_photos: dict[str, Path]) -> Path:
    from PIL import Image as PILImage
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name, path in ultralytics_photos.items():
        shutil.copy(path, folder / name)
    for name in SKIMAGE:
        PILImage.fromarray(np.asarray(getattr(data, name)())[..., :3]).save(folder / f"{name}.jpg")
    return folder


def plant(
    home: Path, photos: dict[str, Path], *, n: int = 2000, reviewed: float = 0.5, findings: int = 0,
    label: str = "car", seed: int = 0,
) -> Planted:  # fmt: skip
    """Ingest the photos, write ``n`` proposals, review a random ``reviewed`` share of them."""
    rng = np.random.default_rng(seed)
    env = Env(open_engine(home / "labelwright.db"), home)
    report = images.ingest(
        env, CALLER, source=real_photos(home.parent / "photos", photos), project_name="planted"
    )
    pid = report.project_id
    pics = [images.get(env, CALLER, pid, i) for _name, i in report.added]
    scores = rng.uniform(0.05, 0.99, n).round(4)
    truth = rng.random(n) < 0.3 + 0.7 * scores
    right: dict[int, bool] = {}
    score: dict[int, float] = {}
    for k, image in enumerate(pics):
        rows = range(k, n, len(pics))
        items = []
        for r in rows:
            w, h = rng.uniform(10, image.width / 3), rng.uniform(10, image.height / 3)
            x, y = rng.uniform(0, image.width - w), rng.uniform(0, image.height - h)
            items.append(NewAnnotation(label=label, bbox=[x, y, w, h], score=float(scores[r]),
                                       tool="auto_label", model=MODEL, prompt=label))  # fmt: skip
        made = annotations.create(env, CALLER, pid, image_id=image.id or 0, items=items)
        for a, r in zip(made, rows, strict=True):
            right[a.id or 0], score[a.id or 0] = bool(truth[r]), float(scores[r])
    ids = sorted(right)
    picked = (
        set(rng.choice(ids, size=int(len(ids) * reviewed), replace=False).tolist()) if reviewed else set()
    )
    for verdict in (True, False):
        chosen = [i for i in sorted(picked) if right[i] is verdict]
        if chosen:
            annotations.set_status(env, CALLER, pid, ids=chosen, status="accepted" if verdict else "rejected")
    held = [i for i in ids if i not in picked]
    if findings:  # three in four on a wrong proposal: an audit is informative, not an oracle
        wrong, fine = [i for i in held if not right[i]], [i for i in held if right[i]]
        flagged = [*rng.choice(wrong, size=min(findings * 3 // 4, len(wrong)), replace=False).tolist(),
                   *rng.choice(fine, size=min(findings // 4, len(fine)), replace=False).tolist()]  # fmt: skip
        with new_session(env.engine) as session:
            for i in flagged:
                upsert_finding(session, project_id=pid, kind="label_mismatch", fingerprint=f"planted-{i}",
                               message="the verifier disagrees", annotation_id=int(i), severity=0.7,
                               confidence=0.8)  # fmt: skip
            session.commit()
    return Planted(env, pid, right, score, sorted(picked), held)
