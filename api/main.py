"""FastAPI app: serves only what PostgREST cannot (uploads, imports, exports, AI preview,
Cal.com proxies, invites). Every route runs as the calling user so RLS is the one authority."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.openapi import install_openapi
from api.routes import calcom, datasets, exports, health, me, messages, sophie, users
from dbr.db import async_pool
from dbr.settings import Settings, get_settings

ROUTERS = [
    health.router,
    me.router,
    calcom.router,
    messages.router,
    datasets.router,
    users.router,
    exports.router,
    sophie.router,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = async_pool(
            settings.database_url, min_size=settings.db_pool_min, max_size=settings.db_pool_max
        )
        await pool.open()
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(
        title="DBR reactivation API",
        version="2.0.0",
        description="Routes PostgREST cannot serve. Errors use {error: {code, message, details}}.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    return app


logging.basicConfig(level=logging.INFO)
app = create_app()
