"""A system+tools prefix read by one llama.cpp process is restored, not read again, by the next:
the real runtime (xllamacpp) on SmolLM2-135M, with a prefix as long as the agents' kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent import prompt_cache
from agent.embedded_llm import EmbeddedLLM
from agent.llm import model_path, prompt_cache_dir
from agent.prompt_cache import PromptCache, prefix_of

MODEL = "smollm2:135m"
SYSTEM = "You label images for the user. Call one tool per turn; never guess a count. " * 40
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "count",
            "description": "Count the annotations of one class.",
            "parameters": {"type": "object", "properties": {"label": {"type": "string"}}},
        },
    }
]


@pytest.fixture(scope="module")
def weights(models_dir: Path) -> Path:
    path = model_path(models_dir, MODEL)
    if not path.is_file():
        pytest.skip(f"LLM weights for {MODEL} are not in {models_dir} (run `labelwright models fetch`)")
    return path


def load(weights: Path, cache: Path | None, timings: list[dict[str, Any]]) -> EmbeddedLLM:
    return EmbeddedLLM(
        weights, name=MODEL, threads=1, n_ctx=2048, preread_file=False, prompt_cache=cache,
        on_timings=timings.append,
    )  # fmt: skip


def ask(llm: EmbeddedLLM, question: str, facts: str = "The project has 3 images.") -> str:
    reply = llm.chat(
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "system", "content": facts},  # per project, as the command agent's
                {"role": "user", "content": question},
            ],
            "tools": TOOLS,
            "max_tokens": 6,
            "temperature": 0,
            "seed": 7,
        }
    )
    assert reply is not None
    return str(reply["choices"][0]["message"])


def test_a_fresh_process_restores_the_prefix_another_read(weights: Path, tmp_path: Path) -> None:
    first: list[dict[str, Any]] = []
    llm = load(weights, tmp_path, first)
    answer = ask(llm, "How many cars?")
    saved = list(tmp_path.glob("*.slot"))
    assert len(saved) == 1 and saved[0].stat().st_size > 0  # one prefix, whatever the question
    assert len(first) == 2, "the prefix alone, then the request"
    read_first = first[0]["prompt_n"]
    assert read_first > 500 and first[1]["cache_n"] >= read_first - 5  # all but "assistant:"
    llm.close()

    again: list[dict[str, Any]] = []
    fresh = load(weights, tmp_path, again)
    assert ask(fresh, "How many cars?") == answer  # the restored state answers as the read one
    assert len(again) == 1, "no priming request: the prefix came from the file"
    assert again[0]["cache_n"] > 500 and again[0]["prompt_n"] < read_first / 5
    other: list[dict[str, Any]] = []
    project = load(weights, tmp_path, other)
    ask(project, "Count the people.", facts="The project has 12 videos.")  # another project's facts
    assert other[0]["cache_n"] > 500 and list(tmp_path.glob("*.slot")) == saved


def test_the_slot_keeps_the_conversation_after_the_prefix(weights: Path, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    llm = load(weights, tmp_path, seen)
    ask(llm, "How many cars?")
    before = len(seen)
    ask(llm, "How many cars?")
    assert len(seen) == before + 1, "the slot already starts with this prefix: no restore, no priming"
    assert seen[-1]["prompt_n"] <= 2, "the whole repeated request came from the slot's cache"


def test_another_prompt_in_between_is_followed_by_a_restore(weights: Path, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    llm = load(weights, tmp_path, seen)
    ask(llm, "How many cars?")
    llm.chat({"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 3})
    ask(llm, "How many buses?")
    assert seen[-1]["cache_n"] > 500, "restored from the file after the slot held another prompt"


def test_a_broken_file_is_read_again_and_replaced(weights: Path, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    llm = load(weights, tmp_path, seen)
    ask(llm, "How many cars?")
    (saved,) = tmp_path.glob("*.slot")
    size = saved.stat().st_size
    llm.close()
    saved.write_bytes(b"not a slot")
    fresh = load(weights, tmp_path, seen := [])
    assert ask(fresh, "How many cars?")  # answered all the same
    assert seen[0]["prompt_n"] > 500, "the prefix was read again"
    assert saved.stat().st_size == size, "and saved again, whole"


def test_short_prefixes_and_requests_without_a_system_message_save_nothing(
    weights: Path, tmp_path: Path
) -> None:
    llm = load(weights, tmp_path, [])
    llm.chat({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]})
    llm.chat({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})
    assert list(tmp_path.iterdir()) == []
    assert prefix_of({"messages": [{"role": "user", "content": SYSTEM}]}) is None


def test_without_a_directory_nothing_is_written(weights: Path, tmp_path: Path) -> None:
    seen: list[dict[str, Any]] = []
    llm = load(weights, None, seen)
    ask(llm, "How many cars?")
    assert len(seen) == 1 and seen[0]["prompt_n"] > 500  # read in memory only, as before


def test_keys_follow_the_model_file_and_the_tools(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"gguf")
    cache = PromptCache(tmp_path / "a", weights)
    prefix = prefix_of({"messages": [{"role": "system", "content": SYSTEM}], "tools": TOOLS})
    no_tools = prefix_of({"messages": [{"role": "system", "content": SYSTEM}]})
    assert prefix is not None and no_tools is not None and cache.key(prefix) != cache.key(no_tools)
    assert PromptCache(tmp_path / "b", weights).key(prefix) == cache.key(prefix)  # same file
    os.utime(weights, ns=(0, 0))  # replaced weights: a slot saved with the old ones must not load
    assert PromptCache(tmp_path / "a", weights).key(prefix) != cache.key(prefix)


def test_only_the_most_recently_used_files_are_kept(
    weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prompt_cache, "KEEP", 2)
    cache = PromptCache(tmp_path, weights)
    for n, key in enumerate(["a", "b", "c"]):
        (tmp_path / cache.temporary(key)).write_bytes(b"kv")
        cache.publish(key)
        os.utime(tmp_path / cache.file(key), (n + 10, n + 10))
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.file("b"), cache.file("c")]
    os.utime(tmp_path / cache.file("b"), (30, 30))
    cache.used("c")  # now, long after 30
    (tmp_path / cache.temporary("d")).write_bytes(b"kv")
    cache.publish("d")
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache.file("c"), cache.file("d")]


def test_a_models_dir_that_cannot_hold_one_has_no_cache(tmp_path: Path) -> None:
    weights = tmp_path / "llm" / "model.gguf"
    weights.parent.mkdir()
    weights.write_bytes(b"gguf")
    assert prompt_cache_dir(weights) == tmp_path / "llm" / "prompt-cache"
    (tmp_path / "blocked").write_text("a file where the directory would go")
    assert prompt_cache_dir(tmp_path / "blocked" / "model.gguf") is None
