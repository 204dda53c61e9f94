"""The one HTTP server the stand-ins run on: an aiohttp application on 127.0.0.1, served by its
own event loop in a background thread, so tests use a stand-in in-process and `dbr up` runs it
as `python -m dbr.dev.standins.<name> --port N` the same way.

A stand-in either builds its own aiohttp application (`app()`, the Twilio stand-in: async
routes, status callbacks as tasks on the loop) or answers plain synchronous `respond(Request)
-> Reply` calls (the Anthropic and Cal.com stand-ins: their state is guarded by locks, a scripted
delay is a `time.sleep`). Each synchronous call runs on a daemon thread of its own, as a
threading HTTP server would run it, so a request held by a delay fault never blocks another
and never keeps a finished test process alive."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qs

from aiohttp import web

# Requests are a test's own prompts and payloads: no cap worth enforcing (aiohttp's is 1 MiB).
MAX_REQUEST_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Request:
    """One HTTP request as a synchronous stand-in sees it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (None when empty); ValueError when it is not JSON."""
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """A stand-in's answer: `body` is sent as JSON unless it is bytes or str."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def response(self) -> web.Response:
        if isinstance(self.body, bytes | str):
            data = self.body.encode() if isinstance(self.body, str) else self.body
        else:
            data = json.dumps(self.body).encode()
        resp = web.Response(status=self.status, body=data, headers=self.headers)
        resp.content_type = self.content_type.split(";")[0]
        if "charset=" in self.content_type:
            resp.charset = self.content_type.split("charset=")[1]
        return resp


async def _on_own_thread(fn: Callable[..., Any], *args: Any, name: str) -> Any:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not done.done():
            (done.set_result if ok else done.set_exception)(value)

    def run() -> None:
        try:
            outcome = (True, fn(*args))
        except BaseException as exc:  # handed to the awaiting request
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the server stopped while this was held
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=name, daemon=True).start()
    return await done


class StandinServer:
    """Start/stop, context manager, port and origin of one stand-in's HTTP server.

    Subclasses override `respond` (synchronous) or `app` (an aiohttp application)."""

    thread_name = "standin"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port  # 0 = an ephemeral port, as tests use
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ what it serves

    def app(self) -> web.Application:
        """Every request, any method and path, answered by `respond` on a thread of its own."""
        app = web.Application(client_max_size=MAX_REQUEST_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._bridge)
        return app

    def respond(self, request: Request) -> Reply:
        raise NotImplementedError

    async def _bridge(self, request: web.Request) -> web.StreamResponse:
        req = Request(
            method=request.method,
            path=request.path,
            query=parse_qs(request.query_string),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.read(),
        )
        reply = await _on_own_thread(self.respond, req, name=f"{self.thread_name}-request")
        return reply.response()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        started = threading.Event()
        outcome: dict[str, Any] = {}

        async def serve() -> web.AppRunner:
            # A short shutdown: a request still held by a scripted delay is dropped, as a
            # threading server's daemon thread was.
            runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            await web.TCPSite(runner, self.host, self.requested_port).start()
            return runner

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner = loop.run_until_complete(serve())
            except BaseException as exc:  # a bind error reaches the caller of start()
                outcome["error"] = exc
                started.set()
                loop.close()
                return
            outcome["port"] = runner.addresses[0][1]
            started.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        thread = threading.Thread(target=run, name=self.thread_name, daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError(f"{self.thread_name} did not start")
        if "error" in outcome:
            raise outcome["error"]
        self._loop, self._thread, self._port = loop, thread, outcome["port"]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = self._port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """`python -m` entry: serve until SIGINT or SIGTERM, then stop cleanly."""
        self.start()
        stopping = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopping.set())
        try:
            stopping.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ------------------------------------------------------------------ while it runs

    @property
    def port(self) -> int:
        assert self._port is not None, "not started"
        return self._port

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "not started"
        return self._loop

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)
