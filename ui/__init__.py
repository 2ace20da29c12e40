"""The Gradio UI. ``ui.app.build_ui(UIServices(...))`` returns the Blocks; the server mounts it."""
