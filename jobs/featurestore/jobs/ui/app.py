"""The console's thin ASGI routes (Starlette, server-rendered Jinja2 pages): each reads through
:class:`.store.Store`, builds its page model (:mod:`.pages`) and renders a template.

A store that cannot be reached (down, timing out, a Cluster failing over), a user refused
for being able to write, or one missing a read permission: an HTTP 503 page saying so, never
a stack trace.  Every message shown is redacted (no password).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from featurestore.jobs.ui import pages
from featurestore.jobs.ui.store import ConsoleConfig, Store, WriteUserRefused
from featurestore.readers.errors import (
    CatalogError,
    ConfigurationError,
    FeatureNotFoundError,
    FeatureStoreConnectionError,
    PermissionDeniedError,
)
from featurestore.readers.settings import redact_text

log = logging.getLogger(__name__)
PAGE_SIZE = 25
ENTITY_LOG_ROWS = 5  # the newest logged rows per view on the entity page (its log page has more)
_PACKAGE = "featurestore.jobs.ui"


def _environment() -> jinja2.Environment:
    templates = resources.files(_PACKAGE) / "templates"

    def load(name: str) -> str:
        return (templates / name).read_text(encoding="utf-8")

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True, undefined=jinja2.StrictUndefined)


Render = Callable[..., HTMLResponse]


def create_app(config: ConsoleConfig, clock: Callable[[], float] = time.time) -> Starlette:
    """The console's ASGI application for one store.  Builds no connection: the first request does."""
    store = Store(config)
    env = _environment()
    css = (resources.files(_PACKAGE) / "static" / "console.css").read_text(encoding="utf-8")
    where = config.connection.redacted_url

    def render(name: str, title: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(title=title, store=where, **context)
        return HTMLResponse(html, status_code=status_code)

    def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    app = Starlette(
        routes=[*_page_routes(config, store, render, clock), Route("/static/console.css", stylesheet)],
        exception_handlers=_error_pages(render, where),
        lifespan=lifespan,
    )
    app.state.store = store
    return app


def _page_routes(config: ConsoleConfig, store: Store, render: Render, clock: Callable[[], float]) -> list[Route]:
    """The pages: each reads through ``store``, builds its model, renders its template."""

    def now_ms() -> int:
        return int(clock() * 1000)

    def views_list(request: Request) -> Response:
        rows = pages.view_rows(config.catalog, store.statuses(now_ms()))
        entities = list(dict.fromkeys(v.entity.name for v in config.catalog.views))
        return render("views.html", "Feature views", rows=rows, entities=entities)

    def one_view(request: Request) -> Response:
        name = request.path_params["name"]
        view = config.catalog.view(name)
        before = request.query_params.get("before")
        entries, scanned_all = store.runs(name, before, PAGE_SIZE)
        page = pages.runs_page(entries, PAGE_SIZE, scanned_all)
        cursor = page.next_cursor or (entries[-1][0] if entries else before)
        return render(
            "view.html",
            f"View {name}",
            view=view,
            ttl=pages.age_text(view.ttl_seconds),
            max_age=pages.age_text(view.max_age_seconds),
            fresh=pages.freshness(store.view_status(name, now_ms())),
            features=pages.feature_rows(view),
            page=page,
            next_url=f"/views/{name}?before={cursor}",
            audits=[pages.audit_row(a) for a in store.audits(name)],
        )

    def runs(request: Request) -> Response:
        before = request.query_params.get("before")
        entries, scanned_all = store.runs(None, before, PAGE_SIZE)
        page = pages.runs_page(entries, PAGE_SIZE, scanned_all)
        return render("runs.html", "Runs", page=page, next_url=f"/runs?before={page.next_cursor}")

    def one_run(request: Request) -> Response:
        entry_id = request.path_params["entry_id"]
        record = store.run(entry_id)
        if record is None:
            raise HTTPException(404, f"no run record {entry_id} in fs:runs")
        row = pages.run_row(entry_id, record)
        return render("run.html", f"Run {record.run_id}", run=row)

    def stream(request: Request) -> Response:
        view = config.catalog.view(request.path_params["name"])
        model = pages.stream_model(view, store.progress(view.name), now_ms())
        return render("stream.html", f"Stream {view.name}", s=model)

    return [
        Route("/", views_list),
        Route("/views/{name}", one_view),
        Route("/runs", runs),
        Route("/runs/{entry_id}", one_run),
        Route("/streams/{name}", stream),
        *_entity_routes(config, store, render, now_ms),
    ]


def _entity_routes(config: ConsoleConfig, store: Store, render: Render, now_ms: Callable[[], int]) -> list[Route]:
    """One entity: the lookup form, what the reader serves with the newest logged rows, a view's log page."""

    def entity_form(request: Request) -> Response:
        entity, entity_id = request.query_params.get("entity", ""), request.query_params.get("id", "")
        if not entity or not entity_id:
            raise HTTPException(400, "give an entity and an id")
        return RedirectResponse(f"/entities/{entity}/{entity_id}", status_code=303)

    def entity(request: Request) -> Response:
        name, id_text = request.path_params["entity"], request.path_params["entity_id"]
        report = store.entity(name, id_text, now_ms())
        model = pages.entity_model(config.catalog, report, id_text)
        histories = [
            pages.history_model(view, id_text, store.history(view.name, id_text, 0, ENTITY_LOG_ROWS))
            for view in config.catalog.views_of(name)
        ]
        return render("entity.html", f"{name} {id_text}", e=model, histories=histories)

    def entity_log(request: Request) -> Response:
        name, id_text = request.path_params["entity"], request.path_params["entity_id"]
        view = config.catalog.view(request.path_params["view"])
        if view.entity.name != name:
            raise HTTPException(404, f"view {view.name} is not a view of entity {name}")
        try:
            offset = max(int(request.query_params.get("offset", "0")), 0)
        except ValueError:
            raise HTTPException(400, "offset must be a number of rows") from None
        history = pages.history_model(view, id_text, store.history(view.name, id_text, offset, PAGE_SIZE))
        title = f"{name} {id_text}: feature log of {view.name}"
        return render("entity_log.html", title, entity=name, entity_id=id_text, h=history)

    return [
        Route("/entity", entity_form),
        Route("/entities/{entity}/{entity_id}", entity),
        Route("/entities/{entity}/{entity_id}/log/{view}", entity_log),
    ]


def _error_pages(render: Render, where: str) -> dict[Any, Callable[[Request, Exception], Response]]:
    """A failure as a page (503 for an unavailable store or a refused user), never a stack trace."""

    def unavailable(request: Request, exc: Exception) -> Response:
        if isinstance(exc, WriteUserRefused):
            title = "Refusing a Redis user that can write"
        elif isinstance(exc, PermissionDeniedError):
            title = "The console's Redis user may not read this"
        else:
            title = "The store is unavailable"
        log.warning("%s: %s", title, redact_text(str(exc)))
        message = f"{redact_text(str(exc))} (store: {where})"
        return render("error.html", title, status_code=503, message=message)

    def not_found(request: Request, exc: Exception) -> Response:
        return render("error.html", "Not found", status_code=404, message=redact_text(str(exc)))

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return render("error.html", "Not found" if exc.status_code == 404 else "Bad request",
                      status_code=exc.status_code, message=str(exc.detail))  # fmt: skip

    def failure(request: Request, exc: Exception) -> Response:
        log.exception("console page %s failed", request.url.path)
        return render(
            "error.html", "The console failed", status_code=500,
            message=f"{type(exc).__name__}: {redact_text(str(exc).splitlines()[0] if str(exc) else '')}",
        )  # fmt: skip

    return {
        FeatureStoreConnectionError: unavailable,
        PermissionDeniedError: unavailable,
        CatalogError: not_found,
        FeatureNotFoundError: not_found,
        ConfigurationError: not_found,
        HTTPException: http_error,
        Exception: failure,
    }
