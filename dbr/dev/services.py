"""The long-running processes `dbr up` starts, in start order.

Each capability adds its process here (API, workers, webhook receivers, stand-ins for
outside services). A stand-in is only started when the real service has no credentials.
"""

from __future__ import annotations

from dbr.dev.stack import Service, deno_bin, python_cmd
from dbr.providers import email as email_provider
from dbr.providers import twilio as twilio_provider
from dbr.settings import Settings
from dbr.team import auth_admin

# Only for the local Cal.com stand-in (never used when a real Cal.com key is configured).
LOCAL_CALCOM_WEBHOOK_SECRET = "local-calcom-standin-webhook-secret"


def services(settings: Settings) -> list[Service]:
    svcs: list[Service] = []
    svcs.append(
        Service(
            "api",
            python_cmd(
                "-m",
                "uvicorn",
                "api.main:app",
                "--host",
                settings.api_host,
                "--port",
                str(settings.api_port),
            ),
            settings.api_port,
        )
    )
    if auth_admin.uses_standin(settings):
        svcs.append(
            Service(
                "auth-standin",
                python_cmd(
                    "-m", "dbr.dev.standins.auth", "--port", str(settings.auth_standin_port)
                ),
                settings.auth_standin_port,
            )
        )
    if not settings.anthropic_api_key:
        svcs.append(
            Service(
                "anthropic-standin",
                python_cmd(
                    "-m",
                    "dbr.dev.standins.anthropic",
                    "--port",
                    str(settings.anthropic_standin_port),
                ),
                settings.anthropic_standin_port,
            )
        )
    if not settings.calcom_api_key:
        svcs.append(
            Service(
                "calcom-standin",
                python_cmd(
                    "-m", "dbr.dev.standins.calcom", "--port", str(settings.calcom_standin_port)
                ),
                settings.calcom_standin_port,
            )
        )
    if not email_provider.has_credentials(settings):
        svcs.append(
            Service(
                "email-standin",
                python_cmd(
                    "-m", "dbr.dev.standins.email", "--port", str(settings.email_standin_port)
                ),
                settings.email_standin_port,
            )
        )
    svcs.extend(_outreach_services(settings))
    return svcs


def _outreach_services(settings: Settings) -> list[Service]:
    """Twilio stand-in (no credentials only), edge functions on 54321, then the workers."""
    out: list[Service] = []
    if not twilio_provider.has_credentials(settings):
        out.append(
            Service(
                "twilio-standin",
                python_cmd(
                    "-m",
                    "dbr.dev.standins.twilio",
                    "--port",
                    str(settings.twilio_standin_port),
                    "--inbound-url",
                    twilio_provider.local_functions_url(settings),
                ),
                settings.twilio_standin_port,
            )
        )
    out.append(
        Service(
            "functions",
            [
                str(deno_bin(settings)),
                "run",
                "-A",
                "supabase/functions/_dev/serve.ts",
                str(settings.functions_port),
            ],
            settings.functions_port,
        )
    )
    out.append(Service("workers", python_cmd("-m", "workers")))
    return out


def service_env(settings: Settings) -> dict[str, str]:
    """Environment shared by every local process (points clients at local stand-ins)."""
    env: dict[str, str] = {}
    if not settings.calcom_api_key and not settings.calcom_webhook_secret:
        # The Cal.com stand-in signs its webhooks and calcom-webhook checks them with this.
        env["CALCOM_WEBHOOK_SECRET"] = LOCAL_CALCOM_WEBHOOK_SECRET
    env.update(_outreach_env(settings))
    return env


def _outreach_env(settings: Settings) -> dict[str, str]:
    """Edge functions reach the database and check Twilio signatures like on Supabase; without
    Twilio credentials every Twilio client talks to the local stand-in."""
    env = {
        "SUPABASE_DB_URL": settings.database_url,
        "PUBLIC_WEBHOOK_BASE_URL": settings.public_webhook_base_url,
        "TWILIO_AUTH_TOKEN": twilio_provider.webhook_auth_token(settings),
    }
    if not twilio_provider.has_credentials(settings):
        env["TWILIO_BASE_URL"] = twilio_provider.base_url(settings) or ""
    return env
