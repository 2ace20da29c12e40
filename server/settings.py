"""The one place that reads the environment: ``LABELWRIGHT_*`` variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Server-wide configuration; every layer below ``server/`` gets these values as arguments."""

    model_config = SettingsConfigDict(env_prefix="LABELWRIGHT_")

    home: Path = Field(default_factory=lambda: Path.home() / ".labelwright")
    models: Path | None = None  # defaults to <home>/models
    stack: str = "lite"  # which model stack backs the vision tools: lite | full
    host: str = "127.0.0.1"
    port: int = 7860

    @property
    def db_path(self) -> Path:
        return self.home / "labelwright.db"

    @property
    def models_dir(self) -> Path:
        return self.models or self.home / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
