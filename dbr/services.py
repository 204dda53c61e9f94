"""The long-running processes `dbr up` starts, in start order.

Each capability adds its process here (API, workers, webhook receivers, stand-ins for
outside services). A stand-in is only started when the real service has no credentials.
"""

from __future__ import annotations

from dbr.settings import Settings
from dbr.stack import Service, deno_bin, python_cmd


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
    _ = deno_bin  # webhook receivers are added by the outreach capability
    return svcs


def service_env(settings: Settings) -> dict[str, str]:
    """Environment shared by every local process (points clients at local stand-ins)."""
    return {}
