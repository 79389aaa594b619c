"""The dashboard's web app: a FastAPI application over :class:`~queuesim.dashboard.service.QueueMonitor`.

``create_app(connection, queues=[...], token=...)`` returns an ASGI app; serve it with uvicorn (the
``queuesim dashboard`` command does). It has two parts:

* the **API** under ``/api`` (JSON). Every API endpoint needs the admin token, sent as
  ``Authorization: Bearer <token>`` (or ``X-Admin-Token: <token>``): no token → 401, a wrong one → 403.
  Endpoints that change something (POST) also refuse requests sent by another web site (cross-site request
  forgery): a browser marks those with an ``Origin`` that is not this server, or ``Sec-Fetch-Site: cross-site``;
* the **page** at ``/`` with its script and style sheet. They hold no data, so a browser can load them without
  the token; the page then asks for the token (or reads it from the URL fragment, ``/#token=…``, which browsers
  never send to the server) and sends it with every API call.

While the app runs, two background tasks sample the queues: a health check every ``health_interval_s`` (30 s, as
in the seed; the last ``history_size`` = 100 checks are kept per queue) and a throughput / depth sample every
``sample_interval_s`` for the sparklines.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from queuesim.connection import Connection
from queuesim.dashboard.service import DashboardError, QueueMonitor
from queuesim.errors import OptionError

__all__ = ["MIN_TOKEN_LENGTH", "create_app"]

log = logging.getLogger("queuesim.dashboard")

#: The shortest admin token accepted.
MIN_TOKEN_LENGTH = 8

_PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def _check_token(token: Any) -> str:
    if not isinstance(token, str) or not token.strip():
        raise OptionError("token", "an admin token is required (there is no default); pass a long random string, "
                                   "e.g. from `python -c \"import secrets; print(secrets.token_urlsafe(24))\"`")
    if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise OptionError("token", f"must be at least {MIN_TOKEN_LENGTH} characters, without surrounding spaces")
    return token


def _supplied_token(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    header = request.headers.get("x-admin-token")
    return header.strip() if header and header.strip() else None


def _cross_site_reason(request: Request) -> str | None:
    """Why a state-changing request looks like it came from another site (None when it did not)."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site is {fetch_site!r}"
    origin = request.headers.get("origin")
    if origin is not None:
        host = request.headers.get("host", "")
        served = f"{request.url.scheme}://{host}"
        if origin.rstrip("/").lower() != served.lower():
            return f"Origin {origin!r} is not this server ({served})"
    return None


def create_app(connection: Connection, queues: Iterable[str] | None = None, *, token: str,
               health_interval_s: float = 30.0, sample_interval_s: float = 2.0, history_size: int = 100,
               background: bool = True) -> FastAPI:
    """Build the dashboard app.

    Args:
        connection: the queues' connection (:func:`queuesim.connect`).
        queues: queue names to watch; ``None`` discovers every queue on the connection (``<prefix>:*:meta``).
        token: the admin token every API call must carry (required; at least 8 characters).
        health_interval_s: seconds between two recorded health checks (the seed: 30).
        sample_interval_s: seconds between two sparkline samples.
        history_size: health checks kept per queue (the seed: 100).
        background: run the sampling tasks while the app is served (tests may call the monitor themselves).

    The monitor is available as ``app.state.monitor``, the list of API endpoints as ``app.state.api_endpoints``.
    """
    admin_token = _check_token(token)
    for value, field in ((health_interval_s, "health_interval_s"), (sample_interval_s, "sample_interval_s")):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise OptionError(field, f"must be a number of seconds > 0, got {value!r}")
    monitor = QueueMonitor(connection, queues, history_size=history_size)

    async def every(interval_s: float, action: Callable[[], Any]) -> None:
        while True:
            try:
                await asyncio.to_thread(action)
            except Exception:  # keep sampling: a dropped connection must not end the task for good
                log.exception("dashboard sampling failed")
            await asyncio.sleep(interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tasks = []
        if background:
            tasks = [asyncio.create_task(every(health_interval_s, monitor.record_health)),
                     asyncio.create_task(every(sample_interval_s, monitor.record_series))]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    app = FastAPI(title="queuesim dashboard", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.monitor = monitor

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.path.startswith("/api"):
            response.headers["Cache-Control"] = "no-store"
        else:
            response.headers["Content-Security-Policy"] = _PAGE_CSP
        return response

    @app.exception_handler(DashboardError)
    async def dashboard_error(_: Request, exc: DashboardError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(OptionError)
    async def option_error(_: Request, exc: OptionError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    def require_admin(request: Request) -> None:
        supplied = _supplied_token(request)
        if supplied is None:
            raise HTTPException(401, "admin token missing: send it as 'Authorization: Bearer <token>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(supplied.encode(), admin_token.encode()):
            raise HTTPException(403, "wrong admin token")

    def same_site_only(request: Request) -> None:
        reason = _cross_site_reason(request)
        if reason is not None:
            raise HTTPException(403, f"cross-site request refused: {reason}")

    read = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])
    act = APIRouter(prefix="/api", dependencies=[Depends(require_admin), Depends(same_site_only)])

    @read.get("/queues")
    def list_queues() -> dict[str, Any]:
        """The watched queues and, for those that have one, their dead-letter queue."""
        names = monitor.queue_names()
        dlqs = monitor.dead_letter_names()
        return {"queues": [{"name": n, "dead_letter_queue": dlqs.get(n)} for n in names],
                "discovered": monitor.discovers, "prefix": monitor.prefix}

    @read.get("/health")
    def health() -> dict[str, Any]:
        return monitor.health()

    @read.get("/health/{queue}/history")
    def health_history(queue: str, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return monitor.history(queue, limit)

    @read.get("/stats")
    def stats() -> dict[str, Any]:
        return monitor.stats()

    @read.get("/series")
    def series() -> dict[str, Any]:
        return {"interval_s": sample_interval_s, **monitor.series()}

    @read.get("/jobs/{job_id}")
    def find_job(job_id: str) -> dict[str, Any]:
        return monitor.find_job(job_id)

    @read.get("/queues/{queue}/jobs/{job_id}")
    def job_details(queue: str, job_id: str) -> dict[str, Any]:
        return monitor.job_details(queue, job_id)

    @read.get("/failed")
    def failed_jobs(queue: str | None = None, limit: int = Query(20, ge=1, le=1000)) -> dict[str, Any]:
        return monitor.failed_jobs(queue, limit)

    @read.get("/queues/{queue}/dlq")
    def dlq_jobs(queue: str, limit: int = Query(50, ge=1, le=1000)) -> dict[str, Any]:
        return monitor.dlq_jobs(queue, limit)

    @act.post("/queues/{queue}/jobs/{job_id}/cancel")
    def cancel(queue: str, job_id: str) -> dict[str, Any]:
        return monitor.cancel(queue, job_id)

    @act.post("/queues/{queue}/jobs/{job_id}/retry")
    def retry(queue: str, job_id: str) -> dict[str, Any]:
        return monitor.retry(queue, job_id)

    @act.post("/queues/{queue}/dlq/redrive")
    def redrive_all(queue: str) -> dict[str, Any]:
        return monitor.redrive_all(queue)

    @act.post("/queues/{queue}/dlq/purge")
    def purge(queue: str) -> dict[str, Any]:
        return monitor.purge(queue)

    @act.post("/queues/{queue}/dlq/{job_id}/redrive")
    def redrive(queue: str, job_id: str) -> dict[str, Any]:
        return monitor.redrive(queue, job_id)

    @act.post("/queues/{queue}/pause")
    def pause(queue: str) -> dict[str, Any]:
        return monitor.pause(queue)

    @act.post("/queues/{queue}/resume")
    def resume(queue: str) -> dict[str, Any]:
        return monitor.resume(queue)

    app.include_router(read)
    app.include_router(act)
    #: every API endpoint as (method, path): all of them need the token, the POSTs also a same-site caller
    app.state.api_endpoints = sorted((m, r.path) for router in (read, act) for r in router.routes
                                     for m in getattr(r, "methods", ()))

    static_dir = resources.files("queuesim.dashboard") / "static"

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(str(static_dir / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")
    return app
