"""The one place that reads the environment: ``LABELWRIGHT_*`` variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1 (a bind address or a peer)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Server-wide configuration; every layer below ``server/`` gets these values as arguments."""

    model_config = SettingsConfigDict(env_prefix="LABELWRIGHT_")

    home: Path = Field(default_factory=lambda: Path.home() / ".labelwright")
    models: Path | None = None  # defaults to <home>/models
    stack: str = "lite"  # which model stack backs the vision tools: lite | full
    host: str = "127.0.0.1"
    port: int = 7860
    # None: no login when bound to loopback (one local user), login required otherwise. True is
    # refused on a non-loopback bind: a network-reachable server never runs without auth.
    local_mode: bool | None = None
    # Addresses (or CIDR networks) of reverse proxies (Tailscale Serve) whose Tailscale-User-Login
    # header is believed. Empty: the header is ignored from everyone.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Host header values accepted besides localhost/127.0.0.1/[::1] (DNS rebinding guard), e.g. the
    # machine's Tailscale name. On a non-loopback bind with none configured, any Host is accepted.
    allowed_hosts: list[str] = Field(default_factory=list)
    session_secret: str | None = None  # signs login cookies; default: a random key in <home>/session.key
    session_max_age_s: int = 7 * 24 * 3600
    # A real Ollama to prefer over the embedded LLM; read from LABELWRIGHT_OLLAMA_HOST or OLLAMA_HOST.
    ollama_host: str | None = Field(
        default=None, validation_alias=AliasChoices("LABELWRIGHT_OLLAMA_HOST", "OLLAMA_HOST")
    )
    # llama.cpp threads; unset: agent.llm.default_threads() (physical cores, leaving one free).
    llm_threads: int | None = Field(default=None, ge=1)
    # CLI calls share one embedded LLM endpoint that exits after this many idle seconds; 0: each
    # call loads its own in-process copy and stops it on exit (see agent.shared_llm).
    llm_keep_alive_s: float = Field(default=600.0, ge=0)
    # Images per model call in a label job, decode, models and writes overlapped
    # (tools.overlapped_label); unset: 8 when the detector runs on CUDA, else 1 (image by image).
    label_batch: int | None = Field(default=None, ge=1)
    max_upload_bytes: int = 2 * 1024**3  # one image upload request (zip or files), in bytes
    # The store shared by several serve/worker processes, as an SQLAlchemy URL
    # (postgresql+psycopg://user@host:5432/db); unset: the SQLite file <home>/labelwright.db.
    database_url: str | None = None
    # SQLite commits with synchronous=FULL: an acknowledged write survives an OS crash or power cut,
    # not only a crash of the process (NORMAL). Costs a WAL fsync per commit (benchmarks/durability.py).
    durable: bool = False

    @property
    def llm_thread_count(self) -> int:
        """``llm_threads`` if set, else the machine's default (1 on 2 cores: see default_threads)."""
        from agent.llm import default_threads

        return self.llm_threads or default_threads()

    @property
    def db_path(self) -> Path:
        return self.home / "labelwright.db"

    @property
    def database(self) -> str | Path:
        """What ``store.db.open_engine`` opens: the database URL if one is set, else the SQLite file."""
        return self.database_url or self.db_path

    def open_store(self, *, upgrade: bool = True) -> Any:
        """The engine on the configured store, with the configured durability: every process
        (serve, worker, the CLI's verbs, MCP) opens it here, so none opens another store or
        commits less durably than the user asked."""
        from store.db import open_engine

        return open_engine(self.database, upgrade=upgrade, durable=self.durable)

    @property
    def models_dir(self) -> Path:
        return self.models or self.home / "models"

    @property
    def is_local(self) -> bool:
        """Whether requests without credentials act as the single local user."""
        loopback = is_loopback(self.host)
        if self.local_mode and not loopback:
            raise ValueError(
                f"local_mode=True needs a loopback bind address, got host={self.host!r}; "
                "a server reachable from the network must require auth"
            )
        return loopback if self.local_mode is None else self.local_mode


@lru_cache
def get_settings() -> Settings:
    return Settings()
