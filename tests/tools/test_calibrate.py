"""The agent's calibration tools on a planted real-photo project: a report, then a dry run the
person must confirm, applied as one change."""

from __future__ import annotations

from pathlib import Path

import pytest

from ops import annotations
from tests.ops.planted import CALLER, plant
from tools.calibrate import TOOLS
from tools.edit import DryRun, Edited
from tools.registry import Registry, ToolContext, ToolError


def test_calibrate_then_accept_the_safe_ones(tmp_path: Path, photos: dict[str, Path]) -> None:
    p = plant(tmp_path / "home", photos, n=1000, reviewed=0.5, seed=1)
    ctx = ToolContext(engine=p.env.engine, project_id=p.project_id, home=p.env.home, models_dir=tmp_path,
                      caller=CALLER)  # fmt: skip
    tools = Registry(TOOLS)
    assert "auto-accept" in tools.get("calibrate")(ctx, {"precision": 0.75}).text()
    accept = tools.get("accept_safe")
    dry = accept(ctx, {"precision": 0.75})
    assert isinstance(dry, DryRun) and "DRY RUN" in dry.text()
    before = annotations.count(p.env, CALLER, p.project_id, by="status")["proposed"]
    assert accept.confirm is not None
    done = accept.confirm(ctx, accept.parse({"precision": 0.75}), dry.token)
    assert isinstance(done, Edited) and done.changed == dry.annotations
    assert annotations.count(p.env, CALLER, p.project_id, by="status")["proposed"] == before - done.changed
    with pytest.raises(ToolError, match="precision"):
        accept(ctx, {"precision": 1.5})
    p.env.engine.dispose()
