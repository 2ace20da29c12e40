"""The ``train`` job's handler: export the accepted labels as a YOLO dataset with a held-out
split, train an ultralytics detector one epoch per job item, then measure mAP@0.5 on the held-out
images and register the weights as the project's detector (``tools.models.trained``).

One epoch per item: ultralytics trains a whole run in one call, so each item resumes the run from
its ``last.pt`` (optimizer, EMA and schedule included) and a callback stops it after one epoch.
A cancel therefore lands between epochs and a resume continues at the next one; an item whose
epoch is already in ``last.pt`` (a crash after the save, before the cursor's commit) trains
nothing. Network: ultralytics is imported offline (no downloads, no pip), ``amp=False`` (its AMP
check downloads weights) and ``plots=False`` (plots download a font).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from sqlmodel import Session, col, select

from store.models import Annotation, AnnotationStatus, Image, Job
from store.yolo_export import export_yolo, unique_stems

KIND = "train"
HYPER = {  # small-project settings: on 36 photos of coins (tests/tools/test_training.py) these
    # reached mAP@0.5 0.69 in 40 epochs at imgsz 128 where the ultralytics defaults (SGD, warmup,
    # mosaic) stayed at 0.0 after 30 epochs at 192
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


class TrainJob:
    """Job handler: item ``i`` is epoch ``i`` of the run; the last item evaluates and registers."""

    def __init__(self, *, home: Path, models_dir: Path, device: str = "auto") -> None:
        self.home, self.models_dir, self.device = Path(home), Path(models_dir), device
        self.last_result: dict[str, Any] | None = None

    def total(self, params: dict[str, Any]) -> int:
        return int(params["epochs"])

    def process(self, session: Session, job: Job, index: int) -> None:
        work = workdir(self.home, job.id or 0)
        data = work / "data"
        if not (data / "split.json").is_file():
            shutil.rmtree(data, ignore_errors=True)
            export_split(session, home=self.home, job=job, out=data)
        last = work / "run" / "weights" / "last.pt"
        if _epochs_done(last) <= index:
            self._epoch(
                job, data / "data.yaml", work, last, index, final=index + 1 >= int(job.params["epochs"])
            )
        if index + 1 >= int(job.params["epochs"]):
            self.last_result = self._finish(job, data, work)
            job.params = {**job.params, "result": self.last_result}  # committed with the cursor
            session.add(job)

    def _epoch(self, job: Job, data_yaml: Path, work: Path, last: Path, index: int, final: bool) -> None:
        from tools.backends.clip_verifier import pick_device

        ultralytics = _ultralytics()
        from ultralytics.utils.torch_utils import init_seeds

        p = job.params

        def one_epoch(trainer: Any) -> None:
            # a resumed run reseeds from args.seed: without this every epoch would draw the same
            # augmentations as the first
            init_seeds(int(p.get("seed", 0)) + index + 1, deterministic=True)
            if not final:
                trainer.final_eval = lambda: None  # keeps the optimizer in last.pt for the next item

        def stop(trainer: Any) -> None:
            trainer.stop = True

        model = ultralytics.YOLO(str(last) if last.is_file() else p["base"], task="detect")
        model.add_callback("on_pretrain_routine_start", one_epoch)
        model.add_callback("on_fit_epoch_end", stop)
        if last.is_file():
            model.train(resume=str(last), workers=0, device=pick_device(self.device))
            return
        model.train(
            data=str(data_yaml), epochs=int(p["epochs"]), imgsz=int(p["imgsz"]),
            device=pick_device(self.device), workers=0, amp=False, plots=False, val=False,
            project=str(work), name="run", exist_ok=True, verbose=False,
            pretrained=p["base"].endswith(".pt"), seed=int(p.get("seed", 0)), deterministic=True,
            **HYPER,
        )  # fmt: skip

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
