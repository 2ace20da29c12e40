"""The vision tools, gathered into one :class:`Registry` for the agent and the server."""

from __future__ import annotations

from tools import auto_label, count, detect, segment, segment_everything, verify
from tools.registry import Registry


def vision_tools() -> Registry:
    return Registry(
        [detect.TOOL, segment.TOOL, segment_everything.TOOL, verify.TOOL, count.TOOL, auto_label.TOOL]
    )


def command_tools() -> Registry:
    """The vision tools plus the command agent's store tools (find, edit, undo, audit, export, tracks)."""
    from tools import audit_tool, edit, export_tool, find_images, track_tools, undo_tool

    registry = vision_tools()
    tools = [
        find_images.TOOL,
        *edit.TOOLS,
        undo_tool.TOOL,
        audit_tool.TOOL,
        export_tool.TOOL,
        *track_tools.TOOLS,
    ]
    for tool in tools:
        registry.add(tool)
    return registry
