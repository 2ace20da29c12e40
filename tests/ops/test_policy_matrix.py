"""The policy, operation by operation: every operation of ``ops/`` called directly by every role,
a non-member, an instance admin and an anonymous caller, over a fresh copy of the template store.

Generated from the code both ways: every entry of :data:`ops.policy.POLICY` must have a case in
:data:`CASES`, and every public function of an ``ops`` module must have one too (unless it is a
helper listed in :data:`HELPERS`: it works inside a unit someone else authorized, or is pure). A
new operation or a new rule without a case fails here. What a call must get comes from the
written POLICY: Unauthenticated for anonymous and Forbidden exactly where the rule denies; where
it allows, any answer but those two (NotFound, Conflict, Invalid are the op's business), and no
other exception (that would be our bug).
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import ops
from ops import (
    annotations,
    bulk,
    calibration,
    categories,
    conversations,
    exports,
    findings,
    history,
    images,
    imports,
    jobs,
    projects,
    propagation_job,
    proposals,
    review_order,
    tracks,
    training,
    videos,
)
from ops.annotations import NewAnnotation
from ops.errors import Forbidden, OpError, Unauthenticated
from ops.policy import POLICY, RANK, Rule
from ops.unit import Env
from store.db import open_engine
from store.errors import StaleWriteError
from store.models import Role
from tests.ops.conftest import CALLERS, caller_of
from tests.server.conftest import World

# Not operations: they run inside a unit an operation opened (filters, annotations.add/owned), are
# the policy's own machinery (policy, unit), or are pure (names, files, errors, caller, clean_labels).
HELPERS = {
    "ops.annotations.add",
    "ops.annotations.on_track",
    "ops.annotations.owned",
    "ops.annotations.polygon_mask",
    "ops.annotations.target_class",
    "ops.caller.local_caller",
    "ops.errors.status_of",
    "ops.files.export_dir",
    "ops.files.inside",
    "ops.files.slug",
    "ops.filters.category_by_id",
    "ops.filters.category_of",
    "ops.filters.find_image",
    "ops.filters.image_of",
    "ops.filters.resolve",
    "ops.jobs.check_threshold",
    "ops.jobs.clean_labels",
    "ops.jobs.queue",
    "ops.propagation.check_seed",
    "ops.propagation.read_seed",
    "ops.propagation.write",
    "ops.propagation_job.finish",
    "ops.propagation_job.job_seed",
    "ops.jobs.image_ids",
    "ops.bulk.fingerprint",
    "ops.imports.parse_class_map",
    "ops.jobs.only_videos",
    "ops.jobs.video_frames",
    "ops.names.class_name",
    "ops.names.clean_name",
    "ops.names.description",
    "ops.names.project_name",
    "ops.names.user_name",
    "ops.policy.authorize",
    "ops.unit.require",
    "ops.policy.authorize_global",
    "ops.policy.role_of",
    "ops.policy.signed_in",
    "ops.unit.change",
    "ops.unit.global_op",
    "ops.unit.read",
    "ops.unit.within",
}


@dataclass(frozen=True)
class Sample:
    """What a case calls it with: the Env, the caller, the world's ids, and a folder of photos."""

    env: Env
    world: World
    photos: Path

    @property
    def pid(self) -> int:
        return self.world.project_id

    def coco(self) -> Path:
        path = self.world.home.parent / "import.coco.json"
        bus = self.world.images["bus.jpg"]
        path.write_text(
            json.dumps(
                {
                    "images": [{"id": bus, "file_name": "bus.jpg", "width": 810, "height": 1080}],
                    "categories": [{"id": 1, "name": "bus"}],
                    "annotations": [
                        {"id": 1, "image_id": bus, "category_id": 1, "bbox": [20, 230, 780, 490], "area": 1}
                    ],
                }
            )
        )
        return path


@dataclass(frozen=True)
class Case:
    """One call of ``fn`` that needs exactly POLICY[op]. ``granted`` (with ``floor``) is for an
    operation whose weaker rule narrows what it does instead of refusing (undo: own changes only):
    it tells from the result whether the full ``op`` was used."""

    fn: Callable[..., Any]
    op: str
    call: Callable[[Any, Sample], Any]
    floor: str | None = None
    granted: Callable[[Any], bool] | None = None


def _ann(s: Sample) -> NewAnnotation:
    return NewAnnotation(category_id=s.world.categories["person"], bbox=[10, 20, 100, 200])


CASES: dict[str, Case] = {
    "projects.list": Case(
        projects.list_projects, "project.list", lambda c, s: projects.list_projects(s.env, c)
    ),
    "projects.find": Case(
        projects.find_project, "project.list", lambda c, s: projects.find_project(s.env, c, "streets")
    ),
    "projects.create": Case(
        projects.create_project, "project.create", lambda c, s: projects.create_project(s.env, c, name="new")
    ),
    "projects.get": Case(
        projects.get_project, "project.read", lambda c, s: projects.get_project(s.env, c, s.pid)
    ),
    "projects.rename": Case(
        projects.rename_project,
        "project.rename",
        lambda c, s: projects.rename_project(s.env, c, s.pid, name="avenues"),
    ),
    "projects.delete": Case(
        projects.delete_project, "project.delete", lambda c, s: projects.delete_project(s.env, c, s.pid)
    ),
    "members.list": Case(
        projects.list_members, "member.list", lambda c, s: projects.list_members(s.env, c, s.pid)
    ),
    "members.set": Case(
        projects.set_member,
        "member.set",
        lambda c, s: projects.set_member(s.env, c, s.pid, username="alice", role="viewer"),
    ),
    "members.remove": Case(
        projects.remove_member,
        "member.remove",
        lambda c, s: projects.remove_member(s.env, c, s.pid, username="viewer"),
    ),
    "images.ingest": Case(
        images.ingest, "image.ingest", lambda c, s: images.ingest(s.env, c, source=s.photos, project_id=s.pid)
    ),
    "images.ingest_new_project": Case(
        images.ingest,
        "project.create",
        lambda c, s: images.ingest(s.env, c, source=s.photos, project_name="brand new"),
    ),
    "images.list": Case(images.list_, "image.read", lambda c, s: images.list_(s.env, c, s.pid)),
    "images.get": Case(images.get, "image.read", lambda c, s: images.get(s.env, c, s.pid, "bus.jpg")),
    "images.file_path": Case(
        images.file_path, "image.read", lambda c, s: images.file_path(s.env, c, s.pid, "bus.jpg")
    ),
    "categories.list": Case(
        categories.list_, "category.read", lambda c, s: categories.list_(s.env, c, s.pid)
    ),
    "categories.ensure": Case(
        categories.ensure, "category.create", lambda c, s: categories.ensure(s.env, c, s.pid, ["dog"])
    ),
    "categories.rename": Case(
        categories.rename,
        "category.rename",
        lambda c, s: categories.rename(s.env, c, s.pid, s.world.categories["person"], name="human"),
    ),
    "categories.merge": Case(
        categories.merge,
        "category.merge",
        lambda c, s: categories.merge(
            s.env, c, s.pid, source_ids=[s.world.categories["bus"]], target_id=s.world.categories["person"]
        ),
    ),
    "categories.delete": Case(
        categories.delete,
        "category.delete",
        lambda c, s: categories.delete(s.env, c, s.pid, s.world.categories["person"]),
    ),
    "annotations.create": Case(
        annotations.create,
        "annotation.create",
        lambda c, s: annotations.create(
            s.env, c, s.pid, image_id=s.world.images["zidane.jpg"], items=[_ann(s)]
        ),
    ),
    "annotations.get": Case(
        annotations.get,
        "annotation.read",
        lambda c, s: annotations.get(s.env, c, s.pid, s.world.annotation_id),
    ),
    "annotations.list": Case(
        annotations.list_, "annotation.read", lambda c, s: annotations.list_(s.env, c, s.pid)
    ),
    "annotations.count": Case(
        annotations.count, "annotation.read", lambda c, s: annotations.count(s.env, c, s.pid, by="status")
    ),
    "annotations.update": Case(
        annotations.update,
        "annotation.edit",
        lambda c, s: annotations.update(s.env, c, s.pid, s.world.annotation_id, version=1, score=0.5),
    ),
    "annotations.delete": Case(
        annotations.delete,
        "annotation.delete",
        lambda c, s: annotations.delete(s.env, c, s.pid, s.world.annotation_id),
    ),
    "annotations.set_status": Case(
        annotations.set_status,
        "annotation.review",
        lambda c, s: annotations.set_status(s.env, c, s.pid, ids=[s.world.annotation_id], status="accepted"),
    ),
    "annotations.relabel": Case(
        annotations.relabel,
        "annotation.edit",
        lambda c, s: annotations.relabel(
            s.env, c, s.pid, ids=[s.world.annotation_id], category_id=s.world.categories["person"]
        ),
    ),
    "annotations.delete_many": Case(
        annotations.delete_many,
        "annotation.delete",
        lambda c, s: annotations.delete_many(s.env, c, s.pid, ids=[s.world.annotation_id]),
    ),
    "imports.import_annotations": Case(
        imports.import_annotations,
        "annotation.import",
        lambda c, s: imports.import_annotations(
            s.env, c, project_name="streets", path=s.coco(), status="proposed"
        ),
    ),
    "bulk.edit_set_status": Case(
        bulk.edit,
        "annotation.review",
        lambda c, s: bulk.edit(s.env, c, s.pid, "set_status", {"label": "bus", "status": "accepted"}),
    ),
    "bulk.edit_relabel": Case(
        bulk.edit,
        "annotation.edit",
        lambda c, s: bulk.edit(s.env, c, s.pid, "relabel", {"label": "bus", "to": "coach"}),
    ),
    "jobs.start_label": Case(
        jobs.start_label, "job.start", lambda c, s: jobs.start_label(s.env, c, s.pid, classes=["bus"])
    ),
    "jobs.cancel": Case(jobs.cancel, "job.cancel", lambda c, s: jobs.cancel(s.env, c, s.pid, s.world.job_id)),
    "jobs.resume": Case(jobs.resume, "job.start", lambda c, s: jobs.resume(s.env, c, s.pid, s.world.job_id)),
    "jobs.get": Case(jobs.get, "job.read", lambda c, s: jobs.get(s.env, c, s.pid, s.world.job_id)),
    "jobs.list": Case(jobs.list_, "job.read", lambda c, s: jobs.list_(s.env, c, s.pid)),
    "jobs.active": Case(jobs.active, "job.read", lambda c, s: jobs.active(s.env, c, s.pid)),
    "jobs.output": Case(
        jobs.output,
        "job.read",
        lambda c, s: jobs.output(s.env, c, s.pid, s.world.job_id),
    ),
    "jobs.report": Case(jobs.report, "job.read", lambda c, s: jobs.report(s.env, c, s.pid, s.world.job_id)),
    "history.list": Case(
        history.list_changes, "history.read", lambda c, s: history.list_changes(s.env, c, s.pid)
    ),
    "history.undo_own": Case(
        history.step, "history.undo_own", lambda c, s: history.step(s.env, c, s.pid, "redo")
    ),
    # The template's one change is the seed's: a reviewer undoes it, an annotator has nothing of its own.
    "history.undo_anyones": Case(
        history.step,
        "history.undo",
        lambda c, s: history.step(s.env, c, s.pid, "undo"),
        floor="history.undo_own",
        granted=lambda r: r is not None and not r.own,
    ),
    "findings.list": Case(findings.list_, "finding.read", lambda c, s: findings.list_(s.env, c, s.pid)),
    "findings.resolve": Case(
        findings.resolve,
        "finding.close",
        lambda c, s: findings.resolve(s.env, c, s.pid, s.world.finding_id, "dismiss"),
    ),
    "findings.delete_flagged": Case(
        findings.delete_flagged,
        "finding.close",
        lambda c, s: findings.delete_flagged(s.env, c, s.pid, [s.world.finding_id]),
    ),
    "findings.close": Case(
        findings.close,
        "finding.close",
        lambda c, s: findings.close(s.env, c, s.pid, s.world.finding_id, resolution="fixed"),
    ),
    "findings.run_audit": Case(
        findings.run_audit,
        "audit.run",
        lambda c, s: findings.run_audit(s.env, c, s.pid, lambda session: None),
    ),
    "exports.export": Case(
        exports.export, "export.read", lambda c, s: exports.export(s.env, c, s.pid, "coco")
    ),
    "conversations.start": Case(
        conversations.start, "agent.chat", lambda c, s: conversations.start(s.env, c, s.pid)
    ),
    "conversations.get": Case(
        conversations.get, "agent.chat", lambda c, s: conversations.get(s.env, c, s.pid, 999)
    ),
    "conversations.list": Case(
        conversations.list_, "agent.chat", lambda c, s: conversations.list_(s.env, c, s.pid)
    ),
    "conversations.messages": Case(
        conversations.messages, "agent.chat", lambda c, s: conversations.messages(s.env, c, s.pid, 999)
    ),
    "calibration.calibrate": Case(
        calibration.calibrate,
        "calibration.read",
        lambda c, s: calibration.calibrate(s.env, c, s.pid, min_reviewed=1),
    ),
    "calibration.apply": Case(
        calibration.apply,
        "calibration.apply",
        lambda c, s: calibration.apply(s.env, c, s.pid, min_reviewed=1, precision=0.5, confidence=0.5),
    ),
    "review_order.queue": Case(
        review_order.queue, "review_order.read", lambda c, s: review_order.queue(s.env, c, s.pid, by="image")
    ),
    "training.start_train": Case(
        training.start_train, "model.train", lambda c, s: training.start_train(s.env, c, s.pid, epochs=1)
    ),
    "conversations.delete": Case(
        conversations.delete, "agent.chat", lambda c, s: conversations.delete(s.env, c, s.pid, 999)
    ),
    "proposals.propose": Case(
        proposals.propose,
        "annotation.propose",
        lambda c, s: proposals.propose(s.env, c, s.pid, s.world.images["bus.jpg"], lambda image, path: path),
    ),
    "tracks.list_tracks": Case(
        tracks.list_tracks, "annotation.read", lambda c, s: tracks.list_tracks(s.env, c, s.pid)
    ),
    "tracks.get_track": Case(
        tracks.get_track, "annotation.read", lambda c, s: tracks.get_track(s.env, c, s.pid, 1)
    ),
    "tracks.track_frames": Case(
        tracks.track_frames, "annotation.read", lambda c, s: tracks.track_frames(s.env, c, s.pid, 1)
    ),
    "tracks.rename_track": Case(
        tracks.rename_track,
        "annotation.edit",
        lambda c, s: tracks.rename_track(s.env, c, s.pid, 1, category_id=1),
    ),
    "tracks.merge_tracks": Case(
        tracks.merge_tracks,
        "annotation.edit",
        lambda c, s: tracks.merge_tracks(s.env, c, s.pid, into=1, others=[2]),
    ),
    "tracks.split_track": Case(
        tracks.split_track,
        "annotation.edit",
        lambda c, s: tracks.split_track(s.env, c, s.pid, 1, frame_index=3),
    ),
    "tracks.delete_track": Case(
        tracks.delete_track, "annotation.delete", lambda c, s: tracks.delete_track(s.env, c, s.pid, 1)
    ),
    "tracks.propagate_track": Case(
        tracks.propagate_track,
        "annotation.propose",
        lambda c, s: tracks.propagate_track(s.env, c, s.pid, 1, 0, follow=lambda seed, frames: iter(())),
    ),
    "propagation_job.start_propagation": Case(
        propagation_job.start_propagation,
        "annotation.propose",
        lambda c, s: propagation_job.start_propagation(s.env, c, s.pid, 1, 0),
    ),
    "videos.list_videos": Case(
        videos.list_videos, "image.read", lambda c, s: videos.list_videos(s.env, c, s.pid)
    ),
    "videos.get_video": Case(
        videos.get_video, "image.read", lambda c, s: videos.get_video(s.env, c, s.pid, 1)
    ),
    "videos.list_frames": Case(
        videos.list_frames, "image.read", lambda c, s: videos.list_frames(s.env, c, s.pid, 1)
    ),
}


def allowed(op: str, who: str) -> bool:
    """What POLICY says about ``who`` (a template user; roles only in the template's project)."""
    rule = POLICY[op]
    if who == "anonymous":
        return False
    if rule is Rule.authenticated or who == "root":
        return True
    if rule is Rule.instance_admin or who == "outsider":
        return False
    return RANK[Role(who)] >= RANK[Role(rule.value)]


def public_functions() -> set[str]:
    """Every public function defined in a module of the ops package, as ``module.name``."""
    found = set()
    for info in pkgutil.iter_modules(ops.__path__):
        module = importlib.import_module(f"ops.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                found.add(f"{module.__name__}.{name}")
    return found


def qualified(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__name__}"


def test_every_policy_entry_has_a_case() -> None:
    assert sorted(POLICY.keys() - {c.op for c in CASES.values()}) == [], "add a case to CASES for each"
    assert sorted({c.op for c in CASES.values()} - POLICY.keys()) == [], "CASES names ops POLICY lacks"


def test_every_operation_has_a_case() -> None:
    cased = {qualified(c.fn) for c in CASES.values()}
    missing = public_functions() - cased - HELPERS
    assert sorted(missing) == [], "a new operation: add a case to CASES (or, if not one, to HELPERS)"
    assert sorted(HELPERS - public_functions()) == [], "HELPERS names functions that no longer exist"


@pytest.fixture(scope="module")
def module_env(
    ops_template: World, tmp_path_factory: pytest.TempPathFactory, photos: dict[str, Path]
) -> Iterator[Sample]:
    root = tmp_path_factory.mktemp("policy-matrix")
    shutil.copytree(ops_template.home, root / "home")
    (root / "photos").mkdir()
    for name, path in photos.items():
        shutil.copy(path, root / "photos" / name)
    home = root / "home"
    env = Env(open_engine(home / "labelwright.db"), home)
    yield Sample(env, World(**{**ops_template.__dict__, "home": home}), root / "photos")
    env.engine.dispose()


@pytest.fixture
def sample(module_env: Sample, ops_template: World) -> Sample:
    """The module's Env over a fresh copy of the template database (an allowed call may delete the
    project); much cheaper than a new store per case."""
    module_env.env.engine.dispose()
    db = module_env.world.home / "labelwright.db"
    for suffix in ("-wal", "-shm"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    shutil.copy(ops_template.home / "labelwright.db", db)
    return module_env


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_operation_permissions(case: str, who: str, sample: Sample) -> None:
    spec = CASES[case]
    caller = caller_of(sample.env.engine, who)
    full = allowed(spec.op, who)
    if not full and not (spec.floor and allowed(spec.floor, who)):
        refusal = Unauthenticated if who == "anonymous" else Forbidden
        with pytest.raises(refusal) as refused:
            spec.call(caller, sample)
        assert type(refused.value) is refusal and str(refused.value)
        return
    try:
        result = spec.call(caller, sample)
    except (Forbidden, Unauthenticated) as exc:
        pytest.fail(f"{case} refused {who}, whom POLICY[{spec.op!r}] allows: {exc}")
    except (OpError, StaleWriteError):  # the op's own answer (not found, conflict, bad input)
        return
    if spec.granted is not None:
        assert spec.granted(result) is full, f"{case}: {who} {'lacks' if full else 'got'} the full {spec.op}"
