"""Read-only views of the store as the UI shows them: choices, the image strip, the canvas.

They read through the session of :func:`reading`, which the operations layer opens only after
checking that the caller may read the project, so a view never shows what its viewer may not see.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlmodel import Session

from ops.caller import Caller
from ops.unit import read
from store import (
    get_category_by_name,
    get_image,
    list_categories,
    list_images,
    query_annotations,
)
from store.models import Annotation, Image
from ui import video_views
from ui.canvas import canvas_html
from ui.render import Overlay, render
from ui.services import UIServices

ALL = "(all)"
STATUSES = ("proposed", "accepted", "rejected")
THUMB = 320
MAX_SCAN = 20_000  # frames and images the strip reads at most to find its items (one long video)


@contextmanager
def reading(
    services: UIServices, caller: Caller | None, project_id: int, op: str = "annotation.read"
) -> Iterator[Session]:
    """A session to draw views of ``project_id`` from, once the policy lets ``caller`` do ``op``."""
    with read(services.env, caller, op, project_id) as unit:
        yield unit.session


def choice(annotation_id: int, version: int) -> str:
    """The annotation list's value for one row: its id and the version the page drew."""
    return f"{annotation_id}@{version}"


def parse_choice(value: str | None) -> tuple[int | None, int | None]:
    """``"12@3"`` -> ``(12, 3)``; nothing selected -> ``(None, None)``."""
    if not value:
        return None, None
    ann_id, _, version = str(value).partition("@")
    return int(ann_id), int(version) if version else None


def class_names(session: Session, project_id: int | None) -> list[str]:
    if project_id is None:
        return []
    return [c.name for c in list_categories(session, project_id=project_id)]


def overlays(session: Session, image_id: int, selected: int | None = None) -> list[Overlay]:
    names = {c.id: c.name for c in list_categories(session, project_id=_project_of(session, image_id))}
    rows = _annotations(session, image_id)
    return [
        Overlay(
            id=a.id or 0,
            label=names.get(a.category_id, "?"),
            bbox=list(a.bbox),
            mask=a.mask,
            score=a.score,
            status=a.status.value,
            selected=a.id == selected,
            version=a.version,
            track_id=a.track_id,
        )
        for a in rows
    ]


def _project_of(session: Session, image_id: int) -> int:
    image = get_image(session, image_id=image_id)
    if image is None:
        raise ValueError(f"no image with id {image_id}")
    return image.project_id


def _annotations(session: Session, image_id: int) -> list[Annotation]:
    return query_annotations(session, project_id=_project_of(session, image_id), image_id=image_id)


def picture(home: Path, session: Session, image: Image, selected: int | None = None) -> PILImage.Image:
    with PILImage.open(home / image.path) as original:
        return render(original.convert("RGB"), overlays(session, image.id or 0, selected))


def canvas(
    home: Path,
    session: Session,
    image_id: int | None,
    selected: int | None = None,
    polygon: Sequence[Sequence[float]] = (),
) -> str:
    image = get_image(session, image_id=image_id) if image_id else None
    if image is None:
        return canvas_html(None)
    with PILImage.open(home / image.path) as original:
        shown = overlays(session, image.id or 0, selected)
        rendered = render(original.convert("RGB"), shown)
    return canvas_html(
        rendered,
        size=(image.width, image.height),
        polygon=polygon,
        legend=video_views.legend(shown),
        selected=selected if any(ov.selected for ov in shown) else None,
    )


def annotation_choices(session: Session, image_id: int | None) -> list[tuple[str, str]]:
    """The annotation list of an image for a gr.Radio: ``#id class score status`` per row, valued
    by :func:`choice`, so an edit names the version the person saw (a stale one is refused)."""
    if not image_id:
        return []
    out = []
    for ov in overlays(session, image_id):
        score = f" {ov.score:.2f}" if ov.score is not None else ""
        track = f" · track {ov.track_id}" if ov.track_id is not None else ""
        out.append((f"#{ov.id} {ov.label}{score} ({ov.status}){track}", choice(ov.id, ov.version)))
    return out


def strip_filter(
    session: Session, project_id: int, *, class_name: str = ALL, status: str = ALL, unlabelled: bool = False
) -> dict[str, Any] | None:
    """The strip's filter (its class, status and "unlabelled only" boxes) as the arguments of
    :func:`store.images.list_images`, for the strip and the frame scrubber alike: ``{}`` when no
    box narrows it, None when the class named does not exist (nothing can match)."""
    where: dict[str, Any] = {}
    if class_name and class_name != ALL:
        category = get_category_by_name(session, project_id=project_id, name=class_name)
        if category is None:
            return None
        where["category_id"] = category.id
    if status and status != ALL:
        where["status"] = status
    if unlabelled:
        where["without_annotations"] = True
    return where


def image_strip(
    home: Path,
    session: Session,
    project_id: int | None,
    *,
    class_name: str = ALL,
    status: str = ALL,
    unlabelled: bool = False,
    limit: int = 60,
) -> tuple[list[tuple[PILImage.Image, str]], list[int], str]:
    """Thumbnails with overlays for the strip, their image ids, and a one-line summary.

    A video is one item: the thumbnail and id of its first frame that matches the filters (the
    canvas then shows its frame scrubber), captioned with the video's name and frame count.
    """
    if project_id is None:
        return [], [], "No project selected."
    where = strip_filter(session, project_id, class_name=class_name, status=status, unlabelled=unlabelled)
    if where is None:
        return [], [], f"No class named {class_name!r} in this project."
    items: list[tuple[PILImage.Image, str]] = []
    ids: list[int] = []
    videos: set[int] = set()
    offset, total, cut, size = 0, 0, False, limit
    while not cut and offset < MAX_SCAN:
        page, total = list_images(session, project_id=project_id, offset=offset, limit=size, **where)
        offset, size = offset + len(page), min(1000, size * 4)  # one page when there is no video
        for image in page:
            if image.video_id is not None and image.video_id in videos:
                continue  # a video is one item: its first matching frame stands for it
            if len(ids) == limit:
                cut = True
                break
            thumb = picture(home, session, image)
            thumb.thumbnail((THUMB, THUMB))
            if image.video_id is not None:
                videos.add(image.video_id)
                caption = video_views.caption(session, image.video_id)
            else:
                caption = f"{image.file_name} · {image.n_proposed + image.n_accepted + image.n_rejected} ann."
            items.append((thumb, caption))
            ids.append(image.id or 0)
        if offset >= total or not page:
            break
    counts = [(len(ids) - len(videos), "image"), (len(videos), "video")]
    what = ", ".join([f"{n} {kind}{'' if n == 1 else 's'}" for n, kind in counts if n] or ["0 images"])
    more = f" (the first {len(ids)} items of {total} images and frames)" if cut or offset < total else ""
    return items, ids, f"{what} match{'es' if len(ids) == 1 else ''}{more}."
