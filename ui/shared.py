"""The state every tab reads: which project and image are open, and a message line for feedback."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr


@dataclass
class Shared:
    project: gr.State  # project id or None
    image: gr.State  # image id on the canvas or None
    selected: gr.State  # selected annotation id or None
    job: gr.State  # the job whose progress is shown, or None
    status: gr.Markdown  # the last action's outcome or error
    classes: gr.Textbox  # the project's classes, comma-separated
