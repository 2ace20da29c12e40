from __future__ import annotations

import random
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from store.annotations import create_annotation, delete_annotations, relabel, set_status
from store.categories import ensure_categories, merge_categories
from store.db import MIGRATIONS_DIR, alembic_config, downgrade, migrate, open_engine
from store.history import begin_change, redo, undo
from store.images import add_image, list_images
from store.projects import create_project, delete_project
from tests.conftest import ENGINE_PARAMS, fresh_database
from tests.store.conftest import sha


def test_migrated_schema_matches_models(engine: Engine) -> None:
    # A model change without a migration shows up here as a diff.
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_database_is_at_head_and_reopening_is_a_no_op(engine: Engine, engine_url: str | Path) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    again = open_engine(engine_url)
    with again.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    again.dispose()


def test_pragmas(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PRAGMAs are SQLite's")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000


@pytest.mark.parametrize(("durable", "level"), [(False, 1), (True, 2)])  # NORMAL = 1, FULL = 2
def test_durable_selects_synchronous_full(tmp_path: Path, durable: bool, level: int) -> None:
    engine = open_engine(tmp_path / "labelwright.db", durable=durable)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == level
    engine.dispose()


def test_annotation_indexes_exist(engine: Engine) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("annotation")}
    assert indexes["ix_annotation_project_category_image"] == ["project_id", "category_id", "image_id"]
    assert indexes["ix_annotation_project_status_category"] == ["project_id", "status", "category_id"]
    assert indexes["ix_annotation_image_category"] == ["image_id", "category_id"]


def test_unannotated_list_uses_the_partial_index(engine: Engine, session: Session) -> None:
    project = create_project(session, name="p")
    add_image(session, project_id=project.id, file_name="a", path="a", sha256=sha("a"), width=9, height=9)
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    rows, total = list_images(session, project_id=project.id, without_annotations=True)
    event.remove(engine, "before_cursor_execute", capture)
    assert total == 1 and len(rows) == 1
    with engine.connect() as connection:
        for statement, parameters in captured:
            if engine.dialect.name == "sqlite":
                plan = " ".join(
                    row[3]
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                )
            else:  # a one-row table is read sequentially unless that is ruled out
                connection.exec_driver_sql("SET enable_seqscan = off")
                plan = " ".join(
                    row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                )
            assert "ix_image_unannotated" in plan, plan


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0002_annotation_summaries.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0003_unannotated_index.py").is_file()


SUMMARIES_FROM_ANNOTATIONS = {
    "classcount": (
        "SELECT project_id, category_id, status, count(*) FROM annotation "
        "GROUP BY project_id, category_id, status",
        "SELECT project_id, category_id, status, n FROM classcount WHERE n > 0",
    ),
    "imageclass": (
        "SELECT image_id, category_id, status, project_id, count(*) FROM annotation "
        "GROUP BY image_id, category_id, status, project_id",
        "SELECT image_id, category_id, status, project_id, n FROM imageclass",
    ),
    "image": (
        "SELECT i.id, "
        + ", ".join(
            f"sum(CASE WHEN a.status = '{s}' THEN 1 ELSE 0 END)" for s in ("proposed", "accepted", "rejected")
        )
        + " "
        "FROM image i LEFT JOIN annotation a ON a.image_id = i.id GROUP BY i.id",
        "SELECT id, n_proposed, n_accepted, n_rejected FROM image",
    ),
}


def _assert_summaries_exact(engine: Engine) -> None:
    with engine.connect() as connection:
        for name, (truth, kept) in SUMMARIES_FROM_ANNOTATIONS.items():
            expected = sorted(tuple(v or 0 for v in row) for row in connection.execute(text(truth)))
            assert sorted(tuple(row) for row in connection.execute(text(kept))) == expected, name


def test_triggers_keep_summaries_exact_through_every_kind_of_write(engine: Engine, session: Session) -> None:
    project = create_project(session, name="p")
    images = [
        add_image(
            session,
            project_id=project.id,
            file_name=f"{i}.jpg",
            path=f"{i}.jpg",
            sha256=sha(str(i)),
            width=100,
            height=100,
        )
        for i in range(4)
    ]
    cats = ensure_categories(session, project_id=project.id, names=["a", "b", "c"])
    rng = random.Random(7)
    ids: list[int] = []
    for step in range(12):
        batch = begin_change(session, project_id=project.id, actor="t", description=f"step {step}")
        for _ in range(6):
            ann = create_annotation(
                session,
                batch=batch,
                image_id=rng.choice(images).id,
                category_id=rng.choice(cats).id,
                bbox=[1, 1, 5, 5],
                status=rng.choice(["proposed", "accepted", "rejected"]),
            )
            ids.append(ann.id)
        picked = rng.sample(ids, 4)
        set_status(session, batch=batch, ids=picked[:2], status=rng.choice(["accepted", "rejected"]))
        relabel(session, batch=batch, ids=picked[2:3], category_id=rng.choice(cats).id)
        delete_annotations(session, batch=batch, ids=picked[3:])
        ids.remove(picked[3])
        session.commit()
        _assert_summaries_exact(engine)
    for _ in range(5):
        undo(session, project_id=project.id, actor="t")
        _assert_summaries_exact(engine)
    redo(session, project_id=project.id, actor="t")
    merge = begin_change(session, project_id=project.id, actor="t", description="merge")
    merge_categories(session, batch=merge, source_ids=[cats[1].id], target_id=cats[0].id)
    session.commit()
    _assert_summaries_exact(engine)
    delete_project(session, project_id=project.id)
    session.commit()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM imageclass")).scalar() == 0
        assert connection.execute(text("SELECT count(*) FROM classcount")).scalar() == 0


def test_summaries_stay_exact_through_statements_of_many_rows(engine: Engine, session: Session) -> None:
    """Statement-level triggers (PostgreSQL) sum a whole statement's rows; row triggers (SQLite) count
    each: either way one bulk insert, one update of many rows' status, class or image, and one bulk
    delete leave the summaries equal to a fresh count."""
    from store.bulk_annotations import PlannedAnnotation, write_annotations

    project = create_project(session, name="p")
    images = [
        add_image(
            session, project_id=project.id, file_name=f"{i}.jpg", path=f"{i}.jpg", sha256=sha(str(i)),
            width=100, height=100,
        )
        for i in range(30)
    ]  # fmt: skip
    cats = ensure_categories(session, project_id=project.id, names=["a", "b", "c"])
    rng = random.Random(11)
    batch = begin_change(session, project_id=project.id, actor="t", description="bulk")
    planned = [
        PlannedAnnotation(
            coco_id=k, image=rng.choice(images[:25]), category=rng.choice(["a", "b", "c"]),
            bbox=[1.0, 1.0, 5.0, 5.0], mask=None, score=rng.random(), area=25.0,
        )
        for k in range(1500)
    ]  # fmt: skip
    ids = write_annotations(
        session, batch=batch, planned=planned, category_ids={c.name: c.id for c in cats},
        status="proposed", tool="bulk",
    )  # fmt: skip
    session.commit()
    assert len(ids) == 1500
    _assert_summaries_exact(engine)
    a, b, c = (cat.id for cat in cats)
    statements = [
        # many rows, one statement each; the second copies 1500 rows at once
        f"UPDATE annotation SET status = 'accepted' WHERE id % 3 = 0 AND project_id = {project.id}",
        f"INSERT INTO annotation (project_id, image_id, category_id, bbox, area, status, tool, model, "
        f"prompt, author, version, created_at, updated_at) SELECT project_id, image_id, category_id, "
        f"bbox, area, 'rejected', tool, model, prompt, author, version, created_at, updated_at "
        f"FROM annotation WHERE project_id = {project.id}",
        f"UPDATE annotation SET category_id = CASE WHEN category_id = {a} THEN {b} ELSE {c} END "
        f"WHERE id % 2 = 0",
        f"UPDATE annotation SET image_id = {images[-1].id}, status = 'proposed' WHERE id % 5 = 0",
        "UPDATE annotation SET score = 0.5, bbox = '[0, 0, 2, 2]'",  # changes no summary
        f"UPDATE annotation SET category_id = {a}, status = 'rejected' WHERE id % 7 = 1",
        "DELETE FROM annotation WHERE id % 4 = 1",
        f"DELETE FROM annotation WHERE category_id = {c}",
    ]
    for statement in statements:
        with engine.begin() as connection:
            connection.execute(text(statement))
        _assert_summaries_exact(engine)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM annotation"))
    _assert_summaries_exact(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM imageclass")).scalar() == 0
        assert connection.execute(text("SELECT sum(n) FROM classcount")).scalar() == 0
        assert (
            connection.execute(text("SELECT sum(n_proposed + n_accepted + n_rejected) FROM image")).scalar()
            == 0
        )


def test_status_list_uses_the_partial_index(engine: Engine, session: Session) -> None:
    project = create_project(session, name="p")
    image = add_image(
        session, project_id=project.id, file_name="a", path="a", sha256=sha("a"), width=9, height=9
    )
    (cat,) = ensure_categories(session, project_id=project.id, names=["a"])
    batch = begin_change(session, project_id=project.id, actor="t", description="one")
    create_annotation(session, batch=batch, image_id=image.id, category_id=cat.id, bbox=[1, 1, 2, 2])
    session.commit()
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_args) -> None:  # type: ignore[no-untyped-def]
        captured.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    rows, total = list_images(session, project_id=project.id, status="proposed")
    event.remove(engine, "before_cursor_execute", capture)
    assert total == 1 and [r.id for r in rows] == [image.id]
    assert list_images(session, project_id=project.id, status="accepted")[1] == 0
    with engine.connect() as connection:
        for statement, parameters in captured:
            if engine.dialect.name == "sqlite":
                plan = " ".join(
                    row[3]
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
                )
            else:
                connection.exec_driver_sql("SET enable_seqscan = off")
                plan = " ".join(
                    row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
                )
            assert "ix_image_has_proposed" in plan, plan


@pytest.fixture(params=ENGINE_PARAMS)
def blank_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """An empty database, before any migration."""
    return fresh_database(request, tmp_path, migrated=False)


def test_upgrade_backfills_summaries_of_existing_rows(blank_url: str | Path) -> None:
    engine = open_engine(blank_url, upgrade=False)
    migrate(engine, "0001")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO project (id, name, description, created_at) VALUES (1, 'p', '', '2026-01-01')")
        )
        connection.execute(
            text(
                "INSERT INTO image (id, project_id, file_name, path, sha256, width, height, created_at) "
                "VALUES (1, 1, 'a', 'a', 'x', 10, 10, '2026-01-01'), "
                "(2, 1, 'b', 'b', 'y', 10, 10, '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO category (id, project_id, name, supercategory, color) VALUES (1, 1, 'c', '', '')"
            )
        )
        for status in ("proposed", "proposed", "accepted"):
            connection.execute(
                text(
                    "INSERT INTO annotation (project_id, image_id, category_id, bbox, area, status, tool, "
                    "model, prompt, author, version, created_at, updated_at) VALUES "
                    f"(1, 1, 1, '[0,0,1,1]', 1, '{status}', '', '', '', '', 1, '2026-01-01', '2026-01-01')"
                )
            )
    migrate(engine)
    _assert_summaries_exact(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n_proposed, n_accepted FROM image WHERE id = 1")).one() == (
            2,
            1,
        )
    downgrade(engine, "0001")
    assert "imageclass" not in inspect(engine).get_table_names()
    migrate(engine)
    _assert_summaries_exact(engine)
    engine.dispose()


def test_processes_starting_at_once_migrate_the_schema_once(blank_url: str | Path) -> None:
    import threading

    errors: list[BaseException] = []
    engines: list[Engine] = []

    def start() -> None:
        try:
            engines.append(open_engine(blank_url))
        except BaseException as exc:  # noqa: BLE001  (collected for the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(engines) == 4
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engines[0].connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head
    for engine in engines:
        engine.dispose()


def test_database_urls_are_checked() -> None:
    from store.db import database_url

    assert database_url(Path("/tmp/x.db")).render_as_string() == "sqlite:////tmp/x.db"
    assert database_url("postgresql+psycopg://u@h:5432/d").get_backend_name() == "postgresql"
    with pytest.raises(ValueError, match="must use the psycopg 3 driver .* got 'postgresql\\+psycopg2'"):
        database_url("postgresql+psycopg2://u@h/d")
    with pytest.raises(ValueError, match="must be sqlite:/// or postgresql\\+psycopg://, got 'mysql'"):
        database_url("mysql://u@h/d")
