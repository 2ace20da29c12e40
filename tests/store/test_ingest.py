"""Ingest of real photos (zip and folder), duplicates, bad files, hostile archives, atomicity, scale.

Every test works in ``tmp_path``: ``home`` (the data home, with the database) beside the sources,
so "nothing written outside home" is checked by walking ``tmp_path`` without ``home``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image as PILImage
from sqlmodel import Session, select

import store.ingest as ingest_module
import store.ingest_sources as sources_module
from store.db import new_session, open_engine
from store.ingest import ingest
from store.ingest_sources import IngestError, IngestLimits, clean_name
from store.models import Image, Project
from tests.store import hostile

REPO = Path(__file__).resolve().parents[2]

MiB = 1 << 20


def encode(array: np.ndarray, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(array).save(buf, format=fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def corpus(photos: dict[str, Path]) -> dict[str, bytes]:
    """Real photos as the files a user would have: relative name -> bytes, six distinct images."""
    return {
        "bus.jpg": photos["bus.jpg"].read_bytes(),
        "zidane.jpg": photos["zidane.jpg"].read_bytes(),
        "day/astronaut.png": encode(skimage.data.astronaut(), "PNG"),
        "day/coffee.webp": encode(skimage.data.coffee(), "WEBP"),
        "night/chelsea.bmp": encode(skimage.data.chelsea(), "BMP"),
        "night/deep/rocket.tiff": encode(skimage.data.rocket(), "TIFF"),
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def session(home: Path) -> Iterator[Session]:
    engine = open_engine(home / "labelwright.db")
    with new_session(engine) as session:
        yield session
    engine.dispose()


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a folder inside tmp_path, so a write relative to the cwd would be seen."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


def make_folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def make_zip(path: Path, files: dict[str, bytes] | list[tuple[str, bytes]]) -> Path:
    items = files.items() if isinstance(files, dict) else files
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return path


def make_source(kind: str, tmp_path: Path, files: dict[str, bytes]) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return make_zip(tmp_path / "src.zip", files) if kind == "zip" else make_folder(tmp_path / "src", files)


def snapshot(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    """Every path under ``root``: files and links with size and mtime, folders as (0, 0).

    Folder mtimes are left out: a run that made and removed a subfolder changed nothing in it.
    """
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if Path(dirpath, d) != skip]
        for name in dirnames:
            found[str(Path(dirpath, name).relative_to(root))] = (0, 0)
        for name in filenames:
            st = os.lstat(Path(dirpath, name))
            found[str(Path(dirpath, name).relative_to(root))] = (st.st_size, st.st_mtime_ns)
    return found


def state(session: Session, home: Path) -> tuple[list[tuple], list[tuple], dict[str, tuple[int, int]]]:
    """What an ingest may change: project rows, image rows, the stored files."""
    session.expire_all()
    projects = [(p.id, p.name) for p in session.exec(select(Project).order_by(Project.id))]
    images = [
        (i.id, i.project_id, i.file_name, i.path, i.sha256, i.width, i.height)
        for i in session.exec(select(Image).order_by(Image.id))
    ]
    return projects, images, snapshot(home / "images") if (home / "images").exists() else {}


def images_of(session: Session, name: str) -> dict[str, Image]:
    project = session.exec(select(Project).where(Project.name == name)).one()
    return {i.file_name: i for i in session.exec(select(Image).where(Image.project_id == project.id))}


# --- real photos ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_real_photos_are_added_untouched(
    kind: str, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    source = make_source(kind, tmp_path, corpus)
    calls: list[tuple[int, int | None]] = []
    report = ingest(
        session,
        home=home,
        project_name=" streets ",
        source=source,
        progress=lambda d, t: calls.append((d, t)),
    )
    assert sorted(n for n, _ in report.added) == sorted(corpus)
    assert report.duplicates == [] and report.skipped == []
    assert report.bytes == sum(len(b) for b in corpus.values())
    assert [d for d, _ in calls] == list(range(1, 7))
    assert {t for _, t in calls} == ({6} if kind == "zip" else {None})
    stored = images_of(session, "streets")
    for name, data in corpus.items():
        row = stored[name]
        with PILImage.open(io.BytesIO(data)) as im:
            assert (row.width, row.height) == im.size
        assert row.sha256 == hashlib.sha256(data).hexdigest()
        assert (home / row.path).read_bytes() == data  # orientation 1: the original bytes
        assert row.path.startswith(f"images/{row.project_id}/{row.sha256[:2]}/{row.sha256}.")
    assert dict(report.added) == {n: i.id for n, i in stored.items()}
    assert json.loads(json.dumps(report.to_dict()))["project"] == "streets"


def test_exif_rotated_jpeg_is_stored_upright(tmp_path: Path, home: Path, session: Session) -> None:
    exif = PILImage.Exif()
    exif[274] = 6  # "rotate 90 clockwise to display"
    data = encode(skimage.data.chelsea(), "JPEG", exif=exif, quality=95)  # 451 wide, 300 high
    ingest(session, home=home, project_name="p", source=make_folder(tmp_path / "src", {"cat.jpg": data}))
    row = images_of(session, "p")["cat.jpg"]
    assert (row.width, row.height) == (300, 451)
    stored = (home / row.path).read_bytes()
    assert row.sha256 == hashlib.sha256(stored).hexdigest() != hashlib.sha256(data).hexdigest()
    with PILImage.open(io.BytesIO(stored)) as im, PILImage.open(io.BytesIO(data)) as original:
        assert im.getexif().get(274) is None
        rotated = np.rot90(np.asarray(original), -1).astype(int)
        assert np.abs(np.asarray(im).astype(int) - rotated).mean() < 3


# --- duplicates and names ---------------------------------------------------------------------


def test_duplicates_within_the_source_and_against_the_project(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    first = make_folder(
        tmp_path / "a", {"bus.jpg": corpus["bus.jpg"], "copy/bus again.jpg": corpus["bus.jpg"]}
    )
    report = ingest(session, home=home, project_name="p", source=first)
    assert [n for n, _ in report.added] == ["bus.jpg"]
    assert report.duplicates == [("copy/bus again.jpg", "bus.jpg")]
    second = make_zip(tmp_path / "b.zip", {"other/bus.jpg": corpus["bus.jpg"], "z.jpg": corpus["zidane.jpg"]})
    report = ingest(session, home=home, project_name="p", source=second)
    assert report.duplicates == [("other/bus.jpg", "bus.jpg")]
    assert [n for n, _ in report.added] == ["z.jpg"]
    assert sorted(images_of(session, "p")) == ["bus.jpg", "z.jpg"]


def test_rotated_duplicate_is_found_after_re_encoding(tmp_path: Path, home: Path, session: Session) -> None:
    exif = PILImage.Exif()
    exif[274] = 8
    data = encode(skimage.data.coffee(), "JPEG", exif=exif)
    for n in range(2):  # the second run sees only the stored (re-encoded) hash in the project
        report = ingest(
            session, home=home, project_name="p", source=make_folder(tmp_path / f"s{n}", {"c.jpg": data})
        )
    assert report.added == [] and report.duplicates == [("c.jpg", "c.jpg")]


def test_same_name_different_content_keeps_both(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    bus, zidane, png = corpus["bus.jpg"], corpus["zidane.jpg"], corpus["day/astronaut.png"]
    folder = make_folder(tmp_path / "f", {"dir1/a.jpg": bus, "dir2/a.jpg": zidane})
    assert [n for n, _ in ingest(session, home=home, project_name="p", source=folder).added] == [
        "dir1/a.jpg",
        "dir2/a.jpg",
    ]
    # A zip may hold the same name twice; a later source may reuse a name the project has.
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = make_zip(
            tmp_path / "z.zip", [("x.png", png), ("x.png", encode(skimage.data.rocket(), "PNG"))]
        )
    report = ingest(session, home=home, project_name="p", source=archive)
    assert [n for n, _ in report.added] == ["x.png", "x-2.png"]
    again = make_folder(tmp_path / "g", {"dir1/a.jpg": encode(skimage.data.camera(), "JPEG")})
    assert [n for n, _ in ingest(session, home=home, project_name="p", source=again).added] == [
        "dir1/a-2.jpg"
    ]


@pytest.mark.parametrize(
    ("raw", "name", "reason"),
    [
        ("a/b.jpg", "a/b.jpg", None),
        ("./a//b.jpg", "a/b.jpg", None),
        ("a\\b.jpg", "a/b.jpg", None),
        ("Cafe\u0301.jpg", "Caf\u00e9.jpg", None),  # macOS zips write NFD
        ("../b.jpg", "../b.jpg", "unsafe path: '..' component"),
        ("a/../../b.jpg", "a/../../b.jpg", "unsafe path: '..' component"),
        ("/etc/passwd", "/etc/passwd", "unsafe path: absolute"),
        ("\\\\server\\share\\x.jpg", "//server/share/x.jpg", "unsafe path: absolute"),
        ("c:\\x.jpg", "c:/x.jpg", "unsafe path: absolute"),
        ("a\x00b.jpg", "a\x00b.jpg", "unsafe path: control character in name"),
        ("__MACOSX/a/._b.jpg", "__MACOSX/a/._b.jpg", "hidden"),
        ("a/.thumbs/b.jpg", "a/.thumbs/b.jpg", "hidden"),
    ],
)
def test_clean_name(raw: str, name: str, reason: str | None) -> None:
    assert clean_name(raw) == (name, reason)


# --- bad files are skips ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_bad_files_are_skipped_with_reasons(
    kind: str, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    bus, not_image = corpus["bus.jpg"], "not an image (supported: JPEG, PNG, WebP, BMP, TIFF)"
    bad = {
        "notes.jpg": (b"not a picture, just text\n", not_image),
        "half.jpg": (bus[: len(bus) // 2], "truncated JPEG"),
        "empty.png": (b"", not_image),
        "anim.gif": (encode(skimage.data.camera(), "GIF"), not_image),
        "bomb.png": (hostile.png_bomb(20000, 20000), "image too large: 20000x20000 > pixel cap 100,000,000"),
        "big.bmp": (hostile.bmp_bomb(30000, 30000), "image too large: 30000x30000 > pixel cap 100,000,000"),
    }
    source = make_source(kind, tmp_path, {"good.jpg": bus} | {n: d for n, (d, _) in bad.items()})
    report = ingest(session, home=home, project_name="p", source=source)
    assert [n for n, _ in report.added] == ["good.jpg"]
    assert dict(report.skipped) == {n: r for n, (_, r) in bad.items()}


@pytest.mark.parametrize("kind", ["zip", "folder"])
def test_file_over_the_size_cap_is_skipped_unread(
    kind: str, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    bus, zidane = corpus["bus.jpg"], corpus["zidane.jpg"]  # 137,419 and 50,427 bytes
    source = make_source(kind, tmp_path, {"bus.jpg": bus, "z.jpg": zidane})
    report = ingest(
        session, home=home, project_name="p", source=source, limits=IngestLimits(max_file_bytes=100_000)
    )
    assert report.skipped == [("bus.jpg", f"file too large: {len(bus):,} bytes > max_file_bytes=100,000")]
    assert report.bytes == len(zidane)  # the big one was never read


# --- hostile sources --------------------------------------------------------------------------


def test_hostile_zip_writes_nothing_outside_home(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    archive, expected = hostile.hostile_zip(tmp_path / "hostile.zip", corpus["zidane.jpg"])
    before = snapshot(tmp_path, skip=home)
    tmp_evil = Path("/tmp/evil.jpg").exists(), Path("/tmp/evil_abs.jpg").exists()
    report = ingest(session, home=home, project_name="p", source=archive)
    assert [n for n, _ in report.added] == ["good.jpg"]
    skipped = dict(report.skipped)
    assert set(skipped) == {clean_name(n)[0] for n in expected}
    for raw, reason in expected.items():
        assert skipped[clean_name(raw)[0]].startswith(reason), raw
    assert snapshot(tmp_path, skip=home) == before
    assert (Path("/tmp/evil.jpg").exists(), Path("/tmp/evil_abs.jpg").exists()) == tmp_evil
    assert [p.name for p in (home / "images").rglob("*") if p.is_file()] == [
        f"{hashlib.sha256(corpus['zidane.jpg']).hexdigest()}.jpg"
    ]


def test_hostile_folder_follows_no_link_and_opens_no_fifo(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    root = tmp_path / "src"
    expected = hostile.hostile_folder(root, tmp_path / "outside", corpus["bus.jpg"])
    before = snapshot(tmp_path, skip=home)
    report = ingest(session, home=home, project_name="p", source=root)
    assert [n for n, _ in report.added] == ["good.jpg"]
    assert {n: r.split(" (")[0] for n, r in report.skipped} == expected
    assert snapshot(tmp_path, skip=home) == before


@pytest.mark.parametrize("size", [1 << 30, 64 * MiB], ids=["1GiB", "64MiB"])
def test_zip_bomb_is_refused_before_anything_is_read(
    size: int, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    good = [hostile.deflated(n, corpus[n]) for n in ("bus.jpg", "zidane.jpg")]
    archive = hostile.zip_bomb(tmp_path / "bomb.zip", size=size, before=good)  # zeros, ~1000:1
    assert archive.stat().st_size < 2 * MiB
    started = time.monotonic()
    with pytest.raises(IngestError, match=r"zip bomb: entry 'bomb.bmp' expands more than 100x its \d"):
        ingest(session, home=home, project_name="p", source=archive)
    assert time.monotonic() - started < 1
    assert state(session, home) == ([], [], {})


@pytest.mark.parametrize(
    "build",
    [
        lambda p: hostile.write_raw_zip(p, [hostile.zeros_entry(f"{i}.bmp", MiB) for i in range(40)]),
        lambda p: hostile.overlap_bomb(p, copies=200, size=8 * MiB),  # 1.6 GiB from a 9 KB zip
    ],
    ids=["40-small-bombs", "overlapping-entries"],
)
def test_archive_ratio_catches_bombs_made_of_small_entries(
    build: Callable[[Path], Path], tmp_path: Path, home: Path, session: Session
) -> None:
    archive = build(tmp_path / "b.zip")  # each entry is under the 16 MiB ratio floor
    with pytest.raises(IngestError, match=r"zip bomb: the archive expands more than 100x"):
        ingest(session, home=home, project_name="p", source=archive)
    assert state(session, home) == ([], [], {})


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (sources_module.Entry("x.bmp", compressed=10_000), r"zip bomb: entry 'x.bmp' expands more than 100x"),
        (sources_module.Entry("x.bmp"), r"zip bomb: the archive expands more than 100x its 100,000"),
    ],
)
def test_streamed_ratio_backstop(
    entry: sources_module.Entry, message: str, session: Session, home: Path
) -> None:
    # Headers can be made to agree with anything; the bytes that actually come out are counted.
    session.add(project := Project(name="p"))
    session.flush()
    run = ingest_module._Run(session, home, project, IngestLimits(), 100_000, [])
    entry.open = lambda: io.BytesIO(bytes(32 * MiB))
    with pytest.raises(IngestError, match=message):
        run.read(entry)
    assert run.report.bytes <= 17 * MiB  # stopped at the first chunk past the 16 MiB floor
    session.rollback()


def test_lying_header_is_not_trusted(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    # Declares 1,000 bytes; the data inflates to 8 MiB. We read 1,000, the CRC fails: a skip.
    liar = hostile.zeros_entry("liar.bmp", 8 * MiB)
    liar.file_size = 1000
    archive = hostile.write_raw_zip(
        tmp_path / "l.zip", [liar, hostile.deflated("bus.jpg", corpus["bus.jpg"])]
    )
    report = ingest(session, home=home, project_name="p", source=archive)
    assert report.skipped == [("liar.bmp", "unreadable entry: Bad CRC-32 for file 'liar.bmp'")]
    assert [n for n, _ in report.added] == ["bus.jpg"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (IngestLimits(max_total_bytes=500_000), r"'src.zip' declares 1,? ?\d.* > max_total_bytes=500,000"),
        (IngestLimits(max_files=3), r"'src.zip' holds 6 files > max_files=3"),
    ],
)
def test_archive_limits_refuse_before_reading(
    limits: IngestLimits, message: str, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    with pytest.raises(IngestError, match=message):
        ingest(
            session, home=home, project_name="p", source=make_zip(tmp_path / "src.zip", corpus), limits=limits
        )
    assert state(session, home) == ([], [], {})


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (IngestLimits(max_total_bytes=500_000), r"source is larger than max_total_bytes=500,000"),
        (IngestLimits(max_files=3), r"'src' holds more than max_files=3 files"),
    ],
)
def test_folder_limits_fail_the_run(
    limits: IngestLimits, message: str, tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes]
) -> None:
    with pytest.raises(IngestError, match=message):
        ingest(
            session, home=home, project_name="p", source=make_folder(tmp_path / "src", corpus), limits=limits
        )
    assert state(session, home) == ([], [], {})


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.zip", "must be a .zip file or a folder"),
        (
            lambda p: (p / "x.zip").write_bytes(b"PK\x03\x04 not really") and p / "x.zip",
            "cannot read 'x.zip' as a zip",
        ),
        (
            lambda p: (p / "bus.jpg").write_bytes(b"\xff\xd8\xff") and p / "bus.jpg",
            "cannot read 'bus.jpg' as a zip",
        ),
    ],
)
def test_unreadable_source(
    make: Callable[[Path], Path], message: str, tmp_path: Path, home: Path, session: Session
) -> None:
    with pytest.raises(IngestError, match=message):
        ingest(session, home=home, project_name="p", source=make(tmp_path))
    assert state(session, home) == ([], [], {})


def test_unreadable_folders(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Permissions cannot stop root (which runs CI here), so the refusal is injected.
    source = make_folder(tmp_path / "src", {"a.jpg": corpus["bus.jpg"], "locked/b.jpg": corpus["zidane.jpg"]})
    real_listing = sources_module._listing

    def blocking(name: str) -> Callable[[Path], Iterator[os.DirEntry[str]]]:
        def listing(folder: Path) -> Iterator[os.DirEntry[str]]:
            if folder.name == name:
                raise PermissionError(13, "Permission denied")
            return real_listing(folder)

        return listing

    monkeypatch.setattr(sources_module, "_listing", blocking("locked"))
    report = ingest(session, home=home, project_name="p", source=source)
    assert report.skipped == [("locked", "unreadable folder: Permission denied")]
    assert [n for n, _ in report.added] == ["a.jpg"]
    monkeypatch.setattr(sources_module, "_listing", blocking("src"))
    with pytest.raises(IngestError, match=r"cannot read folder '.*src': Permission denied"):
        ingest(session, home=home, project_name="q", source=source)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_ratio": 0}, "IngestLimits.max_ratio must be positive, got 0"),
        ({"max_pixels": -1}, "IngestLimits.max_pixels must be positive, got -1"),
    ],
)
def test_limits_are_validated(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IngestLimits(**kwargs)


def test_empty_project_name(tmp_path: Path, home: Path, session: Session) -> None:
    with pytest.raises(ValueError, match="project_name must be a non-empty string, got ' '"):
        ingest(session, home=home, project_name=" ", source=tmp_path)


# --- atomicity ----------------------------------------------------------------------------------


class Boom(Exception):
    pass


@pytest.mark.parametrize("existing", [False, True], ids=["new-project", "existing-project"])
@pytest.mark.parametrize("failure", [Boom, KeyboardInterrupt, "over-total"])
def test_failed_run_leaves_db_and_disk_as_they_were(
    existing: bool,
    failure: type[BaseException] | str,
    tmp_path: Path,
    home: Path,
    session: Session,
    corpus: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if existing:
        first = make_folder(tmp_path / "first", {"bus.jpg": corpus["bus.jpg"]})
        ingest(session, home=home, project_name="p", source=first)
    before = state(session, home)
    limits = IngestLimits()
    if failure == "over-total":  # a folder has no header to refuse from: this trips on the last file
        limits = IngestLimits(max_total_bytes=sum(len(d) for d in corpus.values()) - 1)
    else:
        real_write, calls = ingest_module.write_image_file, []

        def failing_write(*args: object) -> list[Path]:
            calls.append(args)
            if len(calls) == 4:
                raise failure()
            return real_write(*args)

        monkeypatch.setattr(ingest_module, "write_image_file", failing_write)
    source = make_folder(tmp_path / "second", corpus)  # bus.jpg is a duplicate if existing
    expected = IngestError if failure == "over-total" else failure
    with pytest.raises(expected):
        ingest(session, home=home, project_name="p", source=source, limits=limits)
    assert state(session, home) == before
    # The session is usable afterwards, and the same source then goes in whole.
    monkeypatch.undo()
    report = ingest(session, home=home, project_name="p", source=make_zip(tmp_path / "ok.zip", corpus))
    assert len(report.added) == 6 - existing


def test_undo_keeps_a_file_that_a_committed_row_points_to(
    tmp_path: Path, home: Path, session: Session, corpus: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process commits the same image while our run is going; our failure must not take
    # that file away from it.
    ingest(
        session,
        home=home,
        project_name="p",
        source=make_folder(tmp_path / "first", {"z.jpg": corpus["zidane.jpg"]}),
    )
    project_id = images_of(session, "p")["z.jpg"].project_id
    real_write, paths = ingest_module.write_image_file, []

    def write_then_race(home_: Path, relpath: str, data: bytes) -> list[Path]:
        if paths:
            with new_session(session.get_bind()) as other:
                other.add(Image(project_id=project_id, file_name="theirs.jpg", path=paths[0], sha256="f" * 64,
                                width=1, height=1))  # fmt: skip
                other.commit()
            raise Boom()
        paths.append(relpath)
        return real_write(home_, relpath, data)

    monkeypatch.setattr(ingest_module, "write_image_file", write_then_race)
    with pytest.raises(Boom):
        ingest(session, home=home, project_name="p", source=make_folder(tmp_path / "second", corpus))
    assert (home / paths[0]).is_file()
    assert sorted(images_of(session, "p")) == ["theirs.jpg", "z.jpg"]


# --- scale ----------------------------------------------------------------------------------------

# Run in a fresh interpreter, peak RSS reset just before the ingest, so the peak is the ingest's;
# tracemalloc would see only Python objects and slows this test about five times.
MEASURE = """
import json, sys, time
from pathlib import Path
from store.db import new_session, open_engine
from store.ingest import ingest

def status(key):
    line = next(l for l in open("/proc/self/status") if l.startswith(key))
    return int(line.split()[1]) * 1024

home, source = Path(sys.argv[1]), Path(sys.argv[2])
session = new_session(open_engine(home / "labelwright.db"))
Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
base = status("VmRSS")
started = time.monotonic()
report = ingest(session, home=home, project_name="p", source=source)
seconds = time.monotonic() - started
print(json.dumps({"added": len(report.added), "seconds": seconds, "growth": status("VmHWM") - base}))
"""


def noise_bmps(path: Path, n: int, side: int) -> Path:
    """``n`` distinct incompressible BMPs of side x side, stored uncompressed: n * 3 * side^2 bytes."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            zf.writestr(f"noise/{i:03d}.bmp", encode(rng.integers(0, 256, (side, side, 3), np.uint8), "BMP"))
    return path


@pytest.mark.parametrize(
    ("build", "count", "max_growth"),
    [
        (lambda p: hostile.many_tiny_zip(p, 5000), 5000, 40 * MiB),
        (lambda p: noise_bmps(p, 40, 1000), 40, 40 * MiB),  # a 120 MB archive, 3 MB per image
    ],
    ids=["5000-tiny-files", "120MB-archive"],
)
def test_streams_in_bounded_memory(
    build: Callable[[Path], Path], count: int, max_growth: int, tmp_path: Path, home: Path
) -> None:
    archive = build(tmp_path / "big.zip")
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(home), str(archive)],
        capture_output=True, text=True, check=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    result = json.loads(out.stdout)
    print(f"\n{archive.stat().st_size / MiB:.0f} MiB archive, {count} images: {result}")
    assert result["added"] == count
    assert result["growth"] < max_growth, f"peak RSS grew {result['growth'] / MiB:.0f} MiB"
    assert result["seconds"] < 30
