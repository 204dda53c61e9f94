"""One settings object for the API, the workers and the CLI, read from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

# The Supabase CLI's well-known local secret: tokens minted here also work with `supabase start`.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    database_url: str = Field(
        "postgresql://postgres:postgres@127.0.0.1:54322/postgres",
        validation_alias="SUPABASE_DB_URL",
    )
    supabase_url: str | None = None
    supabase_service_role_key: str | None = None
    jwt_secret: str = Field(LOCAL_JWT_SECRET, validation_alias="SUPABASE_JWT_SECRET")
    jwks_url: str | None = Field(None, validation_alias="SUPABASE_JWKS_URL")
    jwt_audience: str = "authenticated"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_rate_limit_per_minute: int = 100
    db_pool_min: int = 1
    db_pool_max: int = 10

    # Local stack layout.
    pg_port: int = 54322
    functions_port: int = 54321
    local_dir: Path = ROOT / ".local"
    tools_dir: Path = ROOT / ".tools"

    # Uploads/exports storage: "local" (disk) or "supabase" (Storage API).
    storage_backend: str = "local"
    storage_dir: Path = ROOT / ".local" / "storage"
    max_upload_bytes: int = 200 * 1024 * 1024

    # Outside services. Empty credentials mean "use the local stand-in".
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    calcom_api_key: str | None = None
    calcom_base_url: str = "https://api.cal.com/v2"
    calcom_webhook_secret: str | None = None
    public_webhook_base_url: str = "http://127.0.0.1:54321/functions/v1"

    worker_concurrency: int = 4
    worker_poll_seconds: float = 5.0
    worker_visibility_seconds: int = 120


@lru_cache
def get_settings() -> Settings:
    return Settings()
