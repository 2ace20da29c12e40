"""The vision tools, gathered into one :class:`Registry` for the agent and the server."""

from __future__ import annotations

from tools import auto_label, count, detect, segment, segment_everything, verify
from tools.registry import Registry


def vision_tools() -> Registry:
    return Registry(
        [detect.TOOL, segment.TOOL, segment_everything.TOOL, verify.TOOL, count.TOOL, auto_label.TOOL]
    )


def command_tools() -> Registry:
    """The vision tools plus the command agent's store tools (find, edit, undo, audit, export, tracks)
    and the labeling loop's (calibrate and accept the safe proposals, the hardest proposals first,
    train a detector on the project's labels and label with it, label by example)."""
    from tools import (
        audit_tool,
        by_example,
        calibrate,
        edit,
        export_tool,
        find_images,
        label_trained,
        review_order,
        track_tools,
        train_tool,
        undo_tool,
    )

    registry = vision_tools()
    loop = [*calibrate.TOOLS, review_order.TOOL, train_tool.TOOL, label_trained.TOOL, by_example.TOOL]
    tools = [
        find_images.TOOL,
        *edit.TOOLS,
        undo_tool.TOOL,
        audit_tool.TOOL,
        export_tool.TOOL,
        *track_tools.TOOLS,
        *loop,
    ]
    for tool in tools:
        registry.add(tool)
    return registry
