"""`labelwright llm serve` refuses a network address, and CLI start-up does not pay for the web stack."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from server import cli_llm
from tests.conftest import REPO


def test_serve_refuses_a_network_host_without_allow_network() -> None:
    result = CliRunner().invoke(cli_llm.app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to serve the LLM on '0.0.0.0'" in result.output


def test_the_cli_imports_without_fastapi() -> None:
    """A one-shot command (``labelwright chat``) starts a new process; FastAPI cost it 0.8 s under load."""
    probe = "import sys; from server.cli import main; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
