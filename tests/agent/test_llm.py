"""Getting a client: a real Ollama when one answers with the model, else the embedded endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.llm import (
    LLMUnavailable,
    connect,
    free_port,
    model_path,
    ollama_answers,
    ollama_url,
    start_embedded,
    threads_for,
)


def test_model_paths(tmp_path: Path) -> None:
    assert model_path(tmp_path, "smollm2:135m") == tmp_path / "llm" / "smollm2-135m.gguf"
    assert model_path(tmp_path, "/x/y.gguf") == Path("/x/y.gguf")
    with pytest.raises(
        ValueError, match="unknown LLM 'gpt-9': expected one of qwen2.5-coder:1.5b, smollm2:135m"
    ):
        model_path(tmp_path, "gpt-9")


@pytest.mark.parametrize(
    ("siblings", "threads"),
    [
        (["0"], 1),
        (["0", "1"], 1),  # 2 cores: one thread, so another process never stalls its barrier
        (["0,2", "1,3", "0,2", "1,3"], 2),  # 2 cores with SMT: one thread per core
        ([str(i) for i in range(8)], 7),
    ],
)
def test_llm_threads_leave_a_core_and_count_smt_siblings_once(siblings: list[str], threads: int) -> None:
    assert threads_for(siblings) == threads


def test_missing_weights_are_reported_with_their_path(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match=f"expected {tmp_path}/llm/smollm2-135m.gguf"):
        start_embedded(tmp_path, "smollm2:135m")


def test_nothing_answers_on_a_free_port() -> None:
    assert not ollama_answers(f"http://127.0.0.1:{free_port()}", timeout=0.5)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:11434"),
        ("localhost:8080", "http://localhost:8080"),
        ("http://10.0.0.2:11434/", "http://10.0.0.2:11434"),
        ("https://llm.example", "https://llm.example"),
    ],
)
def test_ollama_host_forms(host: str, url: str) -> None:
    assert ollama_url(host) == url


@pytest.mark.parametrize("scheme", ["http://", ""], ids=["url", "host:port"])
def test_an_answering_ollama_with_the_model_is_used(smollm: Any, models_dir: Path, scheme: str) -> None:
    handle = connect(models_dir, "smollm2:135m", ollama_host=smollm.host.replace("http://", scheme))
    assert handle.host == smollm.host and handle.embedded is None
    assert handle.client.list().models[0].model == "smollm2:135m"
    handle.close()


def test_without_ollama_the_embedded_endpoint_starts(smollm: Any, models_dir: Path) -> None:
    handle = connect(models_dir, "smollm2:135m", ollama_host=f"http://127.0.0.1:{free_port()}", n_ctx=1024)
    try:
        assert handle.embedded is not None and handle.host.startswith("http://127.0.0.1:")
        assert handle.host != smollm.host and ollama_answers(handle.host)
    finally:
        handle.close()
    assert not ollama_answers(handle.host, timeout=0.5)
