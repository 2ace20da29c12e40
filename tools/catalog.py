"""The vision tools, gathered into one :class:`Registry` for the agent and the server."""

from __future__ import annotations

from tools import auto_label, count, detect, segment, segment_everything, verify
from tools.registry import Registry


def vision_tools() -> Registry:
    return Registry(
        [detect.TOOL, segment.TOOL, segment_everything.TOOL, verify.TOOL, count.TOOL, auto_label.TOOL]
    )
