"""SAM 2.1's video predictor: a mask (or box) on one frame, followed through the next frames.

``sam2.build_sam.build_sam2_video_predictor`` builds a ``SAM2VideoPredictor``: the image model
plus memory attention, so each frame's mask is conditioned on the masks before it. Its
``init_state`` reads a folder of ``<n>.jpg`` frames (our sampled frames are JPEGs already: the
folder holds links to them, in order), ``add_new_mask`` / ``add_new_points_or_box`` put the
prompt on frame 0, and ``propagate_in_video`` yields each later frame's mask logits at the
video's resolution.

The video predictor has exactly the parameters of the image model (it subclasses ``SAM2Base``),
so :meth:`SAM2VideoTracker.from_segmenter` reuses the stack's loaded
:class:`~tools.backends.sam2_segmenter.SAM2Segmenter` weights instead of reading the checkpoint
again. Frames are held at 1024x1024 float on the CPU (12 MB each), so one call follows at most
``max_frames`` frames; the caller continues from where it stopped.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tools.backends.clip_verifier import pick_device
from tools.backends.sam2_segmenter import SAM2_CONFIGS


class SAM2VideoTracker:
    """Follow one object from a prompt on the first of a list of frames (JPEG files)."""

    def __init__(
        self,
        models_dir: Path,
        config: str = "tiny",
        *,
        device: str = "auto",
        random_init: bool = False,
        max_frames: int = 200,
        state_dict: dict[str, Any] | None = None,
    ) -> None:
        if config not in SAM2_CONFIGS:
            raise ValueError(f"config must be one of {sorted(SAM2_CONFIGS)}, got {config!r}")
        if max_frames < 2:
            raise ValueError(
                f"max_frames must be at least 2 (the prompt frame and one more), got {max_frames}"
            )
        from tools.backends.torchvision_compat import ensure_torchvision
        from tools.models.resolve import resolve

        checkpoint = None
        if state_dict is None and not random_init:
            checkpoint = resolve(Path(models_dir), f"sam2.1-hiera-{config.replace('_', '-')}")
        ensure_torchvision()
        from sam2.build_sam import build_sam2_video_predictor

        self.device = pick_device(device)
        self.max_frames = max_frames
        self.model_id = f"sam2.1_hiera_{config}_video"
        self.predictor = build_sam2_video_predictor(
            SAM2_CONFIGS[config],
            ckpt_path=None if checkpoint is None else str(checkpoint),
            device=self.device,
        )
        if state_dict is not None:
            self.predictor.load_state_dict(state_dict)  # strict: the same parameters or an error

    @classmethod
    def from_segmenter(cls, segmenter: Any, *, max_frames: int = 200) -> SAM2VideoTracker:
        """A tracker with the weights of a loaded SAM2Segmenter (same config, same device)."""
        model = segmenter._predictor.model
        config = segmenter.model_id.removeprefix("sam2.1_hiera_")
        device = str(next(model.parameters()).device)
        return cls(
            Path("unused"), config, device=device, max_frames=max_frames, state_dict=model.state_dict()
        )

    def track(
        self, frames: list[Path], *, mask: np.ndarray | None = None, box: np.ndarray | None = None
    ) -> Iterator[tuple[int, np.ndarray, float]]:
        """``(i, mask, score)`` for ``frames[1:]`` (at most ``max_frames`` in all), from the prompt
        on ``frames[0]``: a bool mask of the frame's size, or an xyxy box. ``score`` is the mean
        probability inside the mask (0 for an empty one)."""
        import torch

        if (mask is None) == (box is None):
            raise ValueError("track() needs the object on the first frame: a mask or a box (one of them)")
        if len(frames) < 2:
            raise ValueError(
                f"track() needs the prompt frame and at least one more, got {len(frames)} frames"
            )
        frames = frames[: self.max_frames]
        with tempfile.TemporaryDirectory(prefix="lw-sam2-video-") as folder:
            for i, path in enumerate(frames):
                os.symlink(Path(path).resolve(), Path(folder) / f"{i:05d}.jpg")
            with torch.inference_mode():
                state = self.predictor.init_state(
                    folder, offload_video_to_cpu=True, offload_state_to_cpu=True
                )
                if mask is not None:
                    self.predictor.add_new_mask(
                        state, frame_idx=0, obj_id=1, mask=np.asarray(mask, dtype=bool)
                    )
                else:
                    box_xyxy = np.asarray(box, dtype=np.float32).reshape(4)
                    self.predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, box=box_xyxy)
                for index, _ids, logits in self.predictor.propagate_in_video(state, start_frame_idx=0):
                    if index == 0:
                        continue
                    prob = torch.sigmoid(logits[0, 0].float()).cpu().numpy()
                    found = prob > 0.5
                    yield index, found, float(prob[found].mean()) if found.any() else 0.0

    def track_many(
        self, frames: list[Path], prompts: dict[int, list[tuple[int, np.ndarray]]]
    ) -> dict[int, dict[int, tuple[np.ndarray, float]]]:
        """Several objects through one window of frames (at most ``max_frames``), both ways.

        ``prompts`` maps an object id to its ``(frame index, xyxy box)`` prompts (key frames). The
        predictor runs forward from the first prompted frame, then backward from the last one;
        each object takes the forward mask on and after its first prompt and the backward mask
        before it, so a track reaches back to frames before the detection that named it.

        Returns:
            ``{frame index: {object id: (bool mask, mean probability inside it)}}``.
        """
        import torch

        if len(frames) > self.max_frames:
            raise ValueError(
                f"track_many() takes at most max_frames={self.max_frames} frames, got {len(frames)}"
            )
        if not prompts or not all(prompts.values()):
            raise ValueError("track_many() needs at least one (frame, box) prompt per object")
        first = {obj: min(i for i, _ in given) for obj, given in prompts.items()}
        last = max(i for given in prompts.values() for i, _ in given)
        out: dict[int, dict[int, tuple[np.ndarray, float]]] = {}
        with tempfile.TemporaryDirectory(prefix="lw-sam2-video-") as folder:
            for i, path in enumerate(frames):
                os.symlink(Path(path).resolve(), Path(folder) / f"{i:05d}.jpg")
            with torch.inference_mode():
                state = self.predictor.init_state(
                    folder, offload_video_to_cpu=True, offload_state_to_cpu=True
                )
                # Frame by frame: the predictor caches one frame's image features, so prompts of
                # several objects on one frame cost one encoder pass.
                flat = [(i, obj, b) for obj, given in prompts.items() for i, b in given]
                ordered = sorted(flat, key=lambda p: p[:2])
                for index, obj, box in ordered:
                    box_xyxy = np.asarray(box, dtype=np.float32).reshape(4)
                    self.predictor.add_new_points_or_box(state, frame_idx=index, obj_id=obj, box=box_xyxy)
                for reverse in (False, True):  # backward starts at the last prompt (its default: the first)
                    start = last if reverse else None
                    run = self.predictor.propagate_in_video(state, start_frame_idx=start, reverse=reverse)
                    for index, ids, logits in run:
                        for obj, logit in zip(ids, logits, strict=True):
                            if (index >= first[obj]) == reverse:
                                continue  # forward covers from the first prompt on, backward before it
                            prob = torch.sigmoid(logit[0].float()).cpu().numpy()
                            found = prob > 0.5
                            score = float(prob[found].mean()) if found.any() else 0.0
                            out.setdefault(index, {})[int(obj)] = (found, score)
        return out
