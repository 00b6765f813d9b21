"""The dashboard's ASGI app: the page, its script, ``/live`` (WebSocket), ``/api/board`` (the
snapshot as JSON) and ``/metrics`` (Prometheus).

A browser that connects to ``/live`` first gets the latest snapshot, then every update and
every later snapshot; the page reconnects with backoff when the socket closes (a server
restart) and starts again from the snapshot it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from opusclip_lib.dashboard.board import DEFAULTS, BoardSettings
from opusclip_lib.dashboard.live import Browser, LiveBoard
from opusclip_lib.db import connect
from opusclip_lib.monitoring.feed import TransportChoice
from opusclip_lib.observability.metrics_export import Metrics, MetricsRecorder
from opusclip_lib.pipelines import background

FEED_START_TIMEOUT_S = 10.0
STATIC = files("opusclip_lib.dashboard") / "static"


def _board(request: Request | WebSocket) -> LiveBoard:
    board: LiveBoard = request.app.state.board
    return board


async def page(_request: Request) -> HTMLResponse:
    return HTMLResponse(STATIC.joinpath("index.html").read_text(encoding="utf-8"))


async def board_json(request: Request) -> JSONResponse:
    """A fresh snapshot (what ``curl`` or a health check wants)."""
    board = _board(request)
    return JSONResponse(await board.refresh() | {"transport": board.transport})


async def metrics(request: Request) -> Response:
    return Response(generate_latest(_board(request).metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


async def _send(websocket: WebSocket, board: LiveBoard, browser: Browser) -> None:
    await websocket.send_text(board.board_message())
    while True:
        message = await browser.outbox.get()
        if message is None:  # it fell behind: a fresh snapshot replaces what it missed
            await board.refresh()
            message = board.board_message()
        await websocket.send_text(message)


async def _hear(websocket: WebSocket) -> None:
    """Until the browser goes (or the server shuts down and closes the socket)."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def live(websocket: WebSocket) -> None:
    board = _board(websocket)
    await websocket.accept()
    browser = board.join()
    tasks = [asyncio.create_task(_send(websocket, board, browser), name="dashboard send"),
             asyncio.create_task(_hear(websocket), name="dashboard hear")]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        board.leave(browser)
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for outcome in outcomes:  # a closed socket ends the page's session; anything else is ours
        if isinstance(outcome, Exception) and not isinstance(outcome, WebSocketDisconnect):
            raise outcome


def build_app(database_url: str, *, redis_url: str | None = None,
              transport: TransportChoice = "auto", poll_interval_s: float = 0.05,
              refresh_s: float = 2.0, follow_events: bool = True,
              settings: BoardSettings = DEFAULTS) -> Starlette:
    """The app; its lifespan opens the database and the feed, and closes both on shutdown."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        registry = Metrics()
        async with connect(database_url, recorder=MetricsRecorder(registry), min_size=1,
                           max_size=4) as db:
            board = LiveBoard(db, registry, redis_url=redis_url, transport=transport,
                              poll_interval_s=poll_interval_s, refresh_s=refresh_s,
                              follow_events=follow_events, settings=settings)
            await board.refresh()
            app.state.board = board
            async with contextlib.AsyncExitStack() as tasks:
                for source in board.sources:
                    await tasks.enter_async_context(
                        background(board.follow_feed(source), name=f"dashboard feed {source}"))
                await tasks.enter_async_context(
                    background(board.keep_fresh(), name="dashboard refresh"))
                # Serve once listening, so no update published after start-up is missed; a
                # feed that cannot open yet (it retries) does not keep the page down.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FEED_START_TIMEOUT_S):
                        await board.listening.wait()
                yield

    return Starlette(routes=[
        Route("/", page),
        Route("/api/board", board_json),
        Route("/metrics", metrics),
        WebSocketRoute("/live", live),
        Mount("/static", StaticFiles(packages=[("opusclip_lib.dashboard", "static")])),
    ], lifespan=lifespan)

