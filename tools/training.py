"""The ``train`` job's handler: export the accepted labels as a YOLO dataset with a held-out
split, train an ultralytics detector one epoch per job item, then measure mAP@0.5 on the held-out
images and register the weights as the project's detector (``tools.models.trained``).

One epoch per item: the ultralytics run lives in a thread that waits at the start of each epoch
until the job's next item lets it go (:class:`_Run`), so a cancel lands between epochs and a
resume in the same process goes on where it stopped; in a new process the run resumes from its
``last.pt``. An item whose epoch is already in ``last.pt`` (a crash after the save, before the
cursor's commit) trains nothing.

Network: ultralytics is imported offline (no downloads, no pip), ``amp=False`` (its AMP check
downloads weights) and ``plots=False`` (plots download a font).
"""

from __future__ import annotations

import hashlib
import json
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from store.models import Annotation, AnnotationStatus, Image, Job
from store.yolo_export import export_yolo, unique_stems

KIND = "train"
HYPER = {  # small-project settings, chosen on the coins photos of tests/tools/test_training.py
    # (36 to train on): mAP@0.5 0.69 on the last 12 after 40 epochs at imgsz 128 (0.46 on the
    # test's seeded split), where the ultralytics defaults (SGD, warmup, mosaic) stayed at 0.0
    # after 30 epochs at 192
    "batch": 8, "optimizer": "AdamW", "lr0": 0.005, "warmup_epochs": 0, "mosaic": 0.0, "close_mosaic": 0,
}  # fmt: skip


def workdir(home: Path, job_id: int) -> Path:
    return Path(home) / "training" / f"job-{job_id}"


def export_split(session: Session, *, home: Path, job: Job, out: Path) -> dict[str, Any]:
    """The accepted labels of the labelled images as a YOLO detect dataset, ``holdout`` of the
    images (by a seeded shuffle) listed in ``val.txt``; returns the split and the data snapshot
    hash (image bytes and label lines), which the registered model's provenance names."""
    params = job.params
    export_yolo(session, project_id=job.project_id, out_dir=out, images_root=home, task="detect",
                status=[AnnotationStatus.accepted.value])  # fmt: skip
    labelled = set(session.exec(
        select(Annotation.image_id).where(Annotation.project_id == job.project_id,
                                          Annotation.status == AnnotationStatus.accepted)
    ).all())  # fmt: skip
    rows = session.exec(
        select(Image.id, Image.file_name, Image.sha256).where(Image.project_id == job.project_id)
        .order_by(col(Image.id))
    ).all()  # fmt: skip
    stems = unique_stems([(i, f) for i, f, _s in rows])
    use = [(i, f, s) for i, f, s in rows if i in labelled]
    rng = np.random.default_rng(int(params.get("seed", 0)))
    order = rng.permutation(len(use))
    n_val = max(1, round(len(use) * float(params["holdout"])))
    digest = hashlib.sha256()
    split: dict[str, list[str]] = {"train": [], "val": []}
    for rank, k in enumerate(order):
        image_id, file_name, sha = use[k]
        stem = stems[image_id]
        image = out / "images" / stem.with_suffix(Path(file_name).suffix)
        split["val" if rank < n_val else "train"].append(str(image.resolve()))
    for image_id, file_name, sha in use:
        digest.update(f"{file_name}\0{sha}\0".encode())
        digest.update((out / "labels" / stems[image_id].with_suffix(".txt")).read_bytes())
    for name, files in split.items():
        (out / f"{name}.txt").write_text("".join(f + "\n" for f in sorted(files)))
    names = [
        line.split(": ", 1)[1] for line in (out / "data.yaml").read_text().splitlines() if line[:2] == "  "
    ]
    (out / "data.yaml").write_text(
        f"path: {json.dumps(str(out.resolve()))}\ntrain: train.txt\nval: val.txt\nnames:\n"
        + "".join(f"  {i}: {n}\n" for i, n in enumerate(names))
    )
    info = {"snapshot": digest.hexdigest(), "train_images": len(use) - n_val, "val_images": n_val,
            "classes": [json.loads(n) for n in names]}  # fmt: skip
    (out / "split.json").write_text(json.dumps(info, indent=2))
    return info


class _Run:
    """One ultralytics run in a thread of its own, held at the start of each epoch until
    :meth:`step` lets it through: ultralytics trains a whole run in one call, and restarting it
    from ``last.pt`` every epoch loses too much (its checkpoints keep only the fp16 EMA weights;
    measured: mAP@0.5 0.19 instead of 0.69 on the coins set)."""

    def __init__(self, train: Callable[[dict[str, Callable[[Any], None]]], None]) -> None:
        self._go: threading.Semaphore = threading.Semaphore(0)
        self._out: queue.Queue[Any] = queue.Queue()

        def gate(trainer: Any) -> None:
            self._go.acquire()

        def epoch_done(trainer: Any) -> None:
            self._out.put(("epoch", trainer.epoch))

        def target() -> None:
            try:
                train({"on_train_epoch_start": gate, "on_fit_epoch_end": epoch_done})
                self._out.put(("end", None))
            except BaseException as exc:  # handed to the job's thread, which fails the job
                self._out.put(("error", exc))

        threading.Thread(target=target, name="labelwright-train", daemon=True).start()

    def step(self, *, to_end: bool = False) -> None:
        """Let one epoch run and wait for it (and, with ``to_end``, for the final evaluation)."""
        self._go.release()
        while True:
            kind, value = self._out.get()
            if kind == "error":
                raise value
            if kind == "end" or (kind == "epoch" and not to_end):
                return


class TrainJob:
    """Job handler: item ``i`` is epoch ``i`` of the run; the last item evaluates and registers.

    The run lives between items (a cancel holds it at the next epoch; a resume in the same process
    lets it go on); in a new process it resumes from ``last.pt``.
    """

    def __init__(self, *, home: Path, models_dir: Path, device: str = "auto") -> None:
        self.home, self.models_dir, self.device = Path(home), Path(models_dir), device
        self.last_result: dict[str, Any] | None = None
        self._runs: dict[int, _Run] = {}

    def total(self, params: dict[str, Any]) -> int:
        return int(params["epochs"])

    def process(self, session: Session, job: Job, index: int) -> None:
        work = workdir(self.home, job.id or 0)
        data = work / "data"
        if not (data / "split.json").is_file():
            shutil.rmtree(data, ignore_errors=True)
            export_split(session, home=self.home, job=job, out=data)
        last = work / "run" / "weights" / "last.pt"
        final = index + 1 >= int(job.params["epochs"])
        run = self._runs.get(job.id or 0)
        if run is None and _epochs_done(last) > index:
            pass  # this epoch is in the checkpoint already (a crash before the cursor's commit)
        else:
            if run is None:
                run = self._runs[job.id or 0] = _Run(self._trainer(job, data / "data.yaml", work, last))
            run.step(to_end=final)
        if final:
            self._runs.pop(job.id or 0, None)
            self.last_result = self._finish(job, data, work)
            job.params = {**job.params, "result": self.last_result}  # committed with the cursor
            session.add(job)

    def _trainer(
        self, job: Job, data_yaml: Path, work: Path, last: Path
    ) -> Callable[[dict[str, Callable[[Any], None]]], None]:
        from tools.backends.clip_verifier import pick_device

        ultralytics, p, device = _ultralytics(), job.params, pick_device(self.device)

        def train(callbacks: dict[str, Callable[[Any], None]]) -> None:
            model = ultralytics.YOLO(str(last) if last.is_file() else p["base"], task="detect")
            for event, fn in callbacks.items():
                model.add_callback(event, fn)
            if last.is_file():
                model.train(resume=str(last), workers=0, device=device)
                return
            model.train(
                data=str(data_yaml), epochs=int(p["epochs"]), imgsz=int(p["imgsz"]), device=device,
                workers=0, amp=False, plots=False, val=False, project=str(work), name="run",
                exist_ok=True, verbose=False, pretrained=p["base"].endswith(".pt"),
                seed=int(p.get("seed", 0)), deterministic=True, **HYPER,
            )  # fmt: skip

        return train

    def _finish(self, job: Job, data: Path, work: Path) -> dict[str, Any]:
        from tools.backends.clip_verifier import pick_device
        from tools.models.trained import register

        ultralytics = _ultralytics()
        weights = work / "run" / "weights" / "best.pt"
        if not weights.is_file():
            weights = work / "run" / "weights" / "last.pt"
        split = json.loads((data / "split.json").read_text())
        metrics = ultralytics.YOLO(str(weights), task="detect").val(
            data=str(data / "data.yaml"), split="val", imgsz=int(job.params["imgsz"]), batch=8,
            device=pick_device(self.device), plots=False, verbose=False, project=str(work), name="val",
            exist_ok=True, workers=0,
        )  # fmt: skip
        per_class = {
            split["classes"][int(c)]: round(float(ap), 4)
            for c, ap in zip(metrics.box.ap_class_index, metrics.box.ap50, strict=True)
        }
        result = {"map50": round(float(metrics.box.map50), 4), "ap50": per_class, **split}
        provenance = {**result, "base": job.params["base"], "epochs": int(job.params["epochs"]),
                      "imgsz": int(job.params["imgsz"]),
                      "trained_by": job.params.get("requested_by", "")}  # fmt: skip
        model = register(self.models_dir, project_id=job.project_id, job_id=job.id or 0, weights=weights,
                         classes=split["classes"], provenance=provenance)  # fmt: skip
        return {**result, "model_id": model.model_id, "detector": f"project-{job.project_id}-yolo"}


def _ultralytics() -> Any:
    """ultralytics, offline, its info log off: it writes to stdout, where ``--json`` output goes."""
    import logging

    from tools.backends.yolo_world import _import_ultralytics

    module = _import_ultralytics()
    logging.getLogger("ultralytics").setLevel(logging.WARNING)
    return module


def _epochs_done(last: Path) -> int:
    """How many epochs ``last.pt`` holds (0 when there is none)."""
    if not last.is_file():
        return 0
    import torch

    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    epoch = int(ckpt.get("epoch", -1))
    return epoch + 1 if epoch >= 0 else 10**9  # -1: a finished run (optimizer stripped)
