"""`labelwright backup` / `restore` as a user runs them, and the restored home opened by the server."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from server.app import create_app
from server.cli import app
from server.settings import Settings, get_settings
from store.db import open_engine
from tests.store.test_backup import DB, WriteLoad, seed_home

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, " ".join(result.stderr.split())  # rich wraps long lines


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setenv("LABELWRIGHT_HOME", str(home))
    get_settings.cache_clear()


def test_backup_under_writes_restores_to_a_server_that_lists_them(
    home: Path, photos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid, images, cat = seed_home(home, photos)
    engine = open_engine(home / DB)
    archive = tmp_path / "backup.tar"
    with WriteLoad(engine, pid, images, cat) as load:
        load.wait_for(30)
        before = set(load.acked)
        code, out, err = cli("backup", "--out", str(archive), "--json")
        after_backup = len(load.acked)
    engine.dispose()
    assert code == 0, err
    assert json.loads(out)["counts"]["images"] == 2

    restored = tmp_path / "restored"
    code, _, err = cli("restore", str(archive), "--home", str(restored))
    assert code == 0, err
    assert "restored into" in err

    settings = Settings(home=restored, host="127.0.0.1", local_mode=True)
    with TestClient(create_app(settings), base_url="http://localhost", client=("127.0.0.1", 5)) as client:
        response = client.get(f"/api/v1/projects/{pid}/annotations", params={"limit": 10_000})
    assert response.status_code == 200, response.text
    listed = {a["id"] for a in response.json()}
    assert before <= listed, f"the server lost {len(before - listed)} acknowledged writes"
    assert listed <= set(load.acked[:after_backup])


def test_restored_home_opens_with_projects(
    home: Path, photos: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_home(home, photos)
    archive = tmp_path / "backup.tar"
    assert cli("backup", "--out", str(archive))[0] == 0
    code, _, err = cli("restore", str(archive), "--check")
    assert code == 0 and "is intact" in err

    restored = tmp_path / "restored"
    assert cli("restore", str(archive), "--home", str(restored))[0] == 0
    use_home(monkeypatch, restored)
    code, out, err = cli("projects", "--json")
    assert code == 0, err
    assert [(p["name"], p["images"]) for p in json.loads(out)] == [("streets", 2)]


def test_restore_refuses_a_non_empty_home_and_a_damaged_archive(
    home: Path, photos: dict[str, Path], tmp_path: Path
) -> None:
    seed_home(home, photos)
    archive = tmp_path / "backup.tar"
    assert cli("backup", "--out", str(archive))[0] == 0

    code, _, err = cli("restore", str(archive))  # into LABELWRIGHT_HOME, which holds data
    assert code == 1
    assert "is not empty" in err and "--force" in err

    with tarfile.open(archive) as tar:
        names = tar.getnames()
    damaged = tmp_path / "damaged.tar"
    data = bytearray(archive.read_bytes())
    data[len(data) // 4] ^= 0xFF  # inside the database member, which comes first
    damaged.write_bytes(bytes(data))
    assert names[0] == DB
    code, _, err = cli("restore", str(damaged), "--home", str(tmp_path / "restored"))
    assert code == 1
    assert "restore refused, nothing was written" in err and "damaged or changed" in err
    assert not (tmp_path / "restored").exists()

    code, _, err = cli("backup", "--out", str(archive))
    assert code == 1 and "already exists" in err


@pytest.mark.parametrize(("env", "level"), [(None, 1), ("1", 2)])  # synchronous: NORMAL = 1, FULL = 2
def test_durable_setting_reaches_the_server_engine(
    home: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, level: int
) -> None:
    if env is None:
        monkeypatch.delenv("LABELWRIGHT_DURABLE", raising=False)
    else:
        monkeypatch.setenv("LABELWRIGHT_DURABLE", env)
    get_settings.cache_clear()
    engine = create_app(get_settings()).state.engine
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == level
    engine.dispose()
