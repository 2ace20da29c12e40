"""The issue-11 rules hold below the API, for every surface (UI, agent, CLI call the same
operations): names on ingest, import and user creation, description length, mask and polygon
complexity, concurrent class creation; and rows written before a rule stay readable."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import select

from ops import annotations, categories, images, imports, names, projects
from ops.annotations import NewAnnotation
from ops.errors import Invalid, TooLarge, status_of
from ops.unit import Env
from store.db import new_session
from store.masks import MAX_RLE_RUNS, rle_from_mask
from store.models import Category, Project
from tests.ops.conftest import caller_of
from tests.server.conftest import World


def test_cli_ingest_name_is_checked_like_the_api(ops_world: tuple[World, Env], photos: dict[str, Path],
                                                 tmp_path: Path) -> None:  # fmt: skip
    _, env = ops_world
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(photos["bus.jpg"], src / "bus.jpg")
    for bad in ("x" * 10_000, "evil\u202egpj", "two\nlines"):
        with pytest.raises(Invalid, match="project name"):
            images.ingest(env, caller_of(env.engine, "root", via="cli"), source=src, project_name=bad)
    with new_session(env.engine) as s:
        assert {p.name for p in s.exec(select(Project))} == {"streets", "other"}


def test_coco_import_refuses_bad_class_names_before_writing(ops_world: tuple[World, Env],
                                                            tmp_path: Path) -> None:  # fmt: skip
    _, env = ops_world
    coco = {
        "images": [{"id": 1, "file_name": "bus.jpg", "width": 810, "height": 1080}],
        "categories": [{"id": 1, "name": "bus\u202e"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(Invalid, match=r"category 1 of coco.json: class name .*U\+202E"):
        imports.import_annotations(
            env, caller_of(env.engine, "root", via="cli"), project_name="streets", path=path
        )


def test_user_names_follow_the_name_rules() -> None:
    assert names.user_name("  alice@example.com ") == "alice@example.com"
    for bad in ("al ice", "bob\u202e", "", "u" * 201):
        with pytest.raises(Invalid, match="user name"):
            names.user_name(bad)


def test_description_is_capped_and_keeps_line_breaks(ops_world: tuple[World, Env]) -> None:
    _, env = ops_world
    root = caller_of(env.engine, "root")
    made = projects.create_project(env, root, name="described", description="line one\nline two\n")
    assert made.description == "line one\nline two"
    with pytest.raises(Invalid, match="at most 10,000"):
        projects.create_project(env, root, name="long", description="d" * 10_001)
    with pytest.raises(Invalid, match=r"U\+202E"):
        projects.create_project(env, root, name="spoof", description="abc\u202e")


def test_rows_written_before_the_rules_stay_readable(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    with new_session(env.engine) as s:  # as an older version (or another tool) wrote them
        s.add(Project(name="legacy\u202eeman\x00"))
        category = s.get(Category, world.categories["bus"])
        assert category is not None
        category.name = "bus\r\n\u202e"
        s.add(category)
        s.commit()
    root = caller_of(env.engine, "root")
    listed = {p.name for p in projects.list_projects(env, root)}
    assert "legacy\u202eeman\x00" in listed
    names_now = {c.name for c, _ in categories.list_(env, root, world.project_id)}
    assert "bus\r\n\u202e" in names_now
    rows = annotations.list_(env, root, world.project_id, category_id=world.categories["bus"])
    assert [a.id for a in rows] == [world.annotation_id]


def test_mask_complexity_is_refused_for_every_surface(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    board = np.indices((1080, 810)).sum(0) % 2 == 0
    item = NewAnnotation(category_id=world.categories["bus"], mask=rle_from_mask(board), tool="agent")
    with pytest.raises(TooLarge, match="MAX_RLE_RUNS") as refused:
        annotations.create(
            env, caller_of(env.engine, "annotator", via="agent"), world.project_id,
            image_id=world.images["bus.jpg"], items=[item],
        )  # fmt: skip
    assert status_of(refused.value) == 413 and f"{MAX_RLE_RUNS:,}" in str(refused.value)


def test_polygon_and_mask_give_the_same_annotation(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    who = caller_of(env.engine, "annotator", via="ui")
    square = np.zeros((1080, 810), bool)
    square[100:200, 50:150] = True
    by_mask, by_points = annotations.create(
        env, who, world.project_id, image_id=world.images["bus.jpg"],
        items=[
            NewAnnotation(category_id=world.categories["bus"], mask=rle_from_mask(square)),
            NewAnnotation(
                category_id=world.categories["bus"], polygon=[[50, 100], [150, 100], [150, 200], [50, 200]]
            ),
        ],
    )  # fmt: skip
    assert by_points.mask == by_mask.mask
    assert by_points.bbox == by_mask.bbox == [50.0, 100.0, 100.0, 100.0]


def test_concurrent_ensure_returns_one_class(ops_world: tuple[World, Env]) -> None:
    world, env = ops_world
    who = caller_of(env.engine, "annotator")
    barrier = threading.Barrier(8)
    got: list[object] = []

    def one() -> None:
        barrier.wait()
        try:
            got.append(categories.ensure(env, who, world.project_id, ["kite"])[0].id)
        except Exception as exc:  # the test reports any refusal
            got.append(exc)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(got) == 8 and len(set(got)) == 1 and isinstance(got[0], int), got
