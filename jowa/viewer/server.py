"""The viewer's web server: one page, one WebSocket that takes commands and pushes the session's view.

One session per server (a local tool for one person); every connected page sees the same game. The
model runs in a worker thread under a lock, so the event loop keeps answering while it computes. The
browser never names a file: recordings get a name chosen here, in the output directory.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from jowa.viewer.session import PlaySession

STATIC = Path(__file__).resolve().parent / "static"
FORMATS = ("gif", "mp4")


def png_base64(frame: np.ndarray) -> str:
    ok, data = cv2.imencode(".png", frame)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(data.tobytes()).decode("ascii")


class Viewer:
    """Controls (run/pause, agent, held key) around a PlaySession, and the clients to tell."""

    def __init__(self, session: PlaySession, out_dir: Path, max_fps: float = 15.0) -> None:
        self.session, self.out_dir, self.max_fps = session, out_dir, max_fps
        self.lock = asyncio.Lock()
        self.clients: set[WebSocket] = set()
        self.running, self.agent = False, False
        self.held: int | None = None  # the action of the key held down while running
        self.wake_up = asyncio.Event()
        self.step_times: deque[float] = deque(maxlen=16)
        self.saved: Path | None = None
        self.message = ""
        self.stopping = False  # set on Ctrl-C: no new step starts, so shutdown waits for one step at most

    def stop(self) -> None:
        """From the signal handler: plain flags only (the waiting run loop is cancelled at shutdown)."""
        self.stopping, self.running = True, False

    # ------------------------------------------------------------------ state

    def fps(self) -> float:
        """Steps per second over the last 16 steps taken while running (kept when paused)."""
        times = self.step_times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) >= 2 else 0.0

    def view(self) -> dict[str, Any]:
        s = self.session
        state = s.state
        return {
            "game": s.game, "mode": state.mode, "real_steps": state.real_steps, "real_return": state.real_return,
            "episode": state.episode, "dream_steps": state.dream_steps, "dream_return": state.dream_return,
            "horizon_limit": s.horizon_limit, "last": vars(state.last), "running": self.running,
            "agent": self.agent, "planner_view": s.planner_view, "plan_stale": s.plan_stale, "fps": round(self.fps(), 2), "timings": s.timings.as_dict(),
            "actions": s.action_legend(), "tree": s.tree.to_json(), "message": self.message,
            "recorded_frames": len(s.recording), "saved": None if self.saved is None else str(self.saved),
            "real_png": png_base64(s.real_frame), "model_png": png_base64(s.model_frame),
        }

    async def snapshot(self) -> dict[str, Any]:
        """The view, read under the lock: never half-way through a step the worker thread is taking."""
        async with self.lock:
            return self.view()

    async def broadcast(self) -> None:
        view = await self.snapshot()
        for ws in list(self.clients):
            try:
                await ws.send_json(view)
            except Exception:  # a page that went away mid-send
                self.clients.discard(ws)

    # ------------------------------------------------------------------ commands

    async def _step(self, action: int | None, running: bool = False) -> None:
        if self.stopping:
            return
        async with self.lock:
            await asyncio.to_thread(self.session.step, action)
            if running:
                self.step_times.append(time.perf_counter())

    def _next_action(self) -> int | None:
        """None = the planner's choice (agent mode); a person's held key, or the game's first action (NOOP)."""
        if self.agent:
            return None
        return self.held if self.held is not None else self.session.valid_actions[0]

    async def handle(self, command: dict[str, Any]) -> None:
        kind = command.get("cmd")
        self.message = ""
        if kind in ("act", "step") and not self.running and self.lock.locked():
            self.message = "busy: the model is still computing the last step (key ignored)"  # no backlog of keys
            return
        if kind == "act":
            action = int(command["action"])
            if self.running:
                self.held = action
            else:
                await self._step(action)
        elif kind == "release":
            self.held = None
        elif kind == "step":
            await self._step(self._next_action())
        elif kind in ("run", "pause"):
            if kind == "run" and not self.running:
                self.step_times.clear()  # measure this run only
            self.running = kind == "run"
            self.wake_up.set()
        elif kind == "agent":
            self.agent = bool(command.get("on", not self.agent))
        elif kind in ("dream", "real", "reset"):
            async with self.lock:
                method = {"dream": self.session.dream, "real": self.session.wake, "reset": self.session.reset}[kind]
                await asyncio.to_thread(method)
        elif kind == "planner_view":
            self.session.planner_view = bool(command.get("on", not self.session.planner_view))
            if self.session.planner_view and self.session.plan_stale:
                async with self.lock:
                    await asyncio.to_thread(self.session._plan_now)
        elif kind == "horizon":
            self.session.horizon_limit = max(0, self.session.horizon_limit + int(command.get("delta", 0)))
        elif kind == "save":
            await self._save(str(command.get("format", "gif")))
        else:
            raise ValueError(f"unknown command {kind!r}")

    async def _save(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = self.out_dir / f"play_{self.session.game}_{stamp}.{fmt}"
        async with self.lock:
            self.saved = await asyncio.to_thread(self.session.save_recording, path)
        self.message = f"saved {len(self.session.recording)} frames to {self.saved}"

    async def run_loop(self) -> None:
        """Steps while running, at most `max_fps` per second."""
        while not self.stopping:
            if not self.running:
                self.wake_up.clear()
                await self.wake_up.wait()
                continue
            started = time.perf_counter()
            try:
                await self._step(self._next_action(), running=True)
            except Exception as error:  # keep the loop alive; the page shows what went wrong
                self.running, self.message = False, f"stopped: {error}"
            await self.broadcast()
            await asyncio.sleep(max(0.0, 1.0 / self.max_fps - (time.perf_counter() - started)))

    async def socket(self, ws: WebSocket) -> None:
        await ws.accept()
        self.clients.add(ws)
        try:
            await ws.send_json(await self.snapshot())
            while True:
                command = await ws.receive_json()
                try:
                    await self.handle(command)
                except (ValueError, KeyError, TypeError, RuntimeError) as error:
                    self.message = f"error: {error}"
                await self.broadcast()
        except (WebSocketDisconnect, asyncio.CancelledError):  # the page left, or shutdown outwaited a step
            pass
        except RuntimeError:  # the server closed the socket first (shutdown); older Starlette raises it plainly
            if ws.application_state.name == "CONNECTED" and ws.client_state.name == "CONNECTED":
                raise
        finally:
            self.clients.discard(ws)


def build_app(viewer: Viewer) -> Starlette:
    async def index(request: Any) -> Response:
        return FileResponse(STATIC / "index.html")

    async def recording(request: Any) -> Response:
        if viewer.saved is None or not viewer.saved.is_file():
            return JSONResponse({"error": "nothing saved yet"}, status_code=404)
        return FileResponse(viewer.saved, filename=viewer.saved.name)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        task = asyncio.create_task(viewer.run_loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            viewer.session.close()

    return Starlette(routes=[Route("/", index), Route("/recording", recording),
                             WebSocketRoute("/ws", viewer.socket), Mount("/static", StaticFiles(directory=STATIC))],
                     lifespan=lifespan)
