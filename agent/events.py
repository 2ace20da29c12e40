"""What the tool-calling loop reports while it runs; the CLI prints these and the UI shows them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class AssistantText:
    """Text the model wrote to the user in a turn that also called tools (or its final answer)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolResult:
    """``error`` is True when the call failed and the text explains why to the model."""

    name: str
    text: str
    error: bool = False


@dataclass(frozen=True)
class Final:
    text: str
    steps: int
    hit_step_limit: bool = False


Event = AssistantText | ToolCall | ToolResult | Final
EventSink = Callable[[Event], None]
