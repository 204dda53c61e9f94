"""One settings object for the API, the workers and the CLI, read from the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent

# The Supabase CLI's well-known local secret: tokens minted here also work with `supabase start`.
LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=ROOT / ".env", extra="ignore")

    # Unset: the local cluster's database on pg_port.
    database_url: str = Field("", validation_alias="SUPABASE_DB_URL")
    supabase_url: str | None = None
    supabase_service_role_key: str | None = None
    supabase_anon_key: str | None = None
    # Where an invitation link sends the user to set a password (the frontend's page).
    invite_redirect_url: str | None = None
    jwt_secret: str = Field(LOCAL_JWT_SECRET, validation_alias="SUPABASE_JWT_SECRET")
    jwks_url: str | None = Field(None, validation_alias="SUPABASE_JWKS_URL")
    jwt_audience: str = "authenticated"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_rate_limit_per_minute: int = 100
    db_pool_min: int = 1
    db_pool_max: int = 10

    # Local stack layout. Everything a local stack writes lives under local_dir and every
    # port is a setting, so a second stack (the live-stack test gate) can run beside yours.
    pg_port: int = 54322
    functions_port: int = 54321
    local_dir: Path = Field(ROOT / ".local", validation_alias="DBR_LOCAL_DIR")
    tools_dir: Path = ROOT / ".tools"
    twilio_standin_port: int = 54340
    anthropic_standin_port: int = 54341
    calcom_standin_port: int = 54342
    email_standin_port: int = 54344
    auth_standin_port: int = 54343  # local Supabase Auth (GoTrue) stand-in

    # Uploads/exports storage: "local" (disk) or "supabase" (Storage API).
    storage_backend: str = "local"
    storage_dir: Path | None = None  # unset: local_dir / "storage"
    max_upload_bytes: int = 200 * 1024 * 1024
    # Exports: how long POST /api/analytics/export waits for the file before answering 202,
    # how long a file (and its signed link) lives, and the API's address in local links.
    export_wait_seconds: float = 20.0
    export_ttl_hours: int = 24
    public_api_url: str = ""  # unset: http://api_host:api_port

    # Outside services. Empty credentials mean "use the local stand-in".
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_base_url: str | None = None
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-6"
    sophie_model: str | None = None  # unset: anthropic_model (or the client's anthropic_model)
    sophie_batch_poll_seconds: float = 30.0  # how often a worker looks at a Message Batch
    calcom_api_key: str | None = None
    calcom_base_url: str = "https://api.cal.com/v2"
    calcom_webhook_secret: str | None = None
    public_webhook_base_url: str = ""  # unset: the local functions server on functions_port
    # Staff notification email through Resend's HTTP API (unset key: the local stand-in).
    resend_api_key: str | None = None
    resend_base_url: str | None = None  # unset: api.resend.com, or the stand-in without a key
    notify_email_from: str = "DBR notifications <notifications@dbr.local>"
    app_base_url: str = "http://localhost:3000"  # where notification links point

    worker_concurrency: int = 4
    worker_poll_seconds: float = 5.0
    worker_visibility_seconds: int = 120

    @model_validator(mode="after")
    def _local_defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"postgresql://postgres:postgres@127.0.0.1:{self.pg_port}/postgres"
        if not self.public_webhook_base_url:
            self.public_webhook_base_url = f"http://127.0.0.1:{self.functions_port}/functions/v1"
        if not self.public_api_url:
            self.public_api_url = f"http://{self.api_host}:{self.api_port}"
        if self.storage_dir is None:
            self.storage_dir = self.local_dir / "storage"
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
