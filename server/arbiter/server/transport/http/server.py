"""The HTTP listener: the REST API, its OpenAPI document and Studio, on a thread of their own (transport layer).

aiohttp runs on its own event loop in its own thread (an HTTP server busy on
the gRPC loop starves grpc.aio's accept loop). Each REST call is translated
here (gateway.py), then handed to the core's loop, where the caller is
authenticated and the same servicer the gRPC door uses serves it: the core's
state keeps a single owner, and a REST write is visible to the next gRPC
Decide and the reverse.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, cast

import grpc
from aiohttp import web
from google.protobuf.message import Message
from google.rpc import error_details_pb2

from arbiter.v1 import catalog_pb2

from ...app.auth import TENANT_HEADER, Authenticator, Credentials
from ...domain.access import require
from ...domain.errors import DomainError, FieldViolation, InvalidArgument, NotFound
from ..access_log import AccessLog
from ..errors import ERROR_DOMAIN, HttpError, error_body, http_error, internal_http_error, new_request_id
from ..grpc.interceptor import CURRENT_PRINCIPAL
from ..grpc.request_limits import REQUEST_BYTE_LIMITS
from ..metrics import SCRAPE_CONTENT_TYPE, Metrics
from .gateway import RestRequest, build_request, location_of, response_body, rest_violations
from .openapi import openapi_document
from .routes import ROUTES, Route

log = logging.getLogger("arbiter.server.http")
# A path parameter with more path after it ("/actions/{id}/stats").
_INNER_PATH_PARAM = re.compile(r"\{(\w+)\}(?=/)")

JSON_TYPE = "application/json"
STUDIO_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Studio loads nothing from elsewhere: everything comes from this server.
STUDIO_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
# The servicers never read their context argument: the REST door has no gRPC call to give them.
NO_GRPC_CONTEXT = cast(grpc.aio.ServicerContext, None)


@dataclass(frozen=True, slots=True)
class HttpTls:
    """PEM files for HTTPS; with `client_ca`, clients must present a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        if self.client_ca is not None:
            context.load_verify_locations(cafile=str(self.client_ca))
            context.verify_mode = ssl.CERT_REQUIRED
        return context


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return web.Response(status=status, text=text, content_type=JSON_TYPE, headers=headers)


def _error_response(error: HttpError, request_id: str) -> web.Response:
    return _json_response(error.status, error.body, {**error.headers, "X-Request-Id": request_id})


def _plain_error(status: int, code: grpc.StatusCode, message: str, reason: str) -> web.Response:
    """An error the HTTP layer itself answers (no route, wrong method, body too large or not JSON)."""
    info = error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN)
    return _json_response(status, error_body(status, code, message, [info]))


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class BodyError(Exception):
    """A body that cannot be read as JSON: answered before anything else."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def _read_json(
    request: web.Request, max_bytes: int, route_max_bytes: int | None = None
) -> tuple[Any, list[FieldViolation]]:
    """The parsed JSON body (None when empty) and what is wrong with it, or BodyError for 413/415.

    A body over `route_max_bytes` (the gRPC method's own request limit) is a violation, and is never parsed.
    """
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyError(_too_large(max_bytes))
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyError(_too_large(max_bytes)) from None
    if not raw:
        return None, []
    if request.content_type != JSON_TYPE:
        shown = request.headers.get("Content-Type", "none")
        raise BodyError(
            _plain_error(
                415,
                grpc.StatusCode.INVALID_ARGUMENT,
                f"send the body as Content-Type: {JSON_TYPE} (got {shown})",
                "UNSUPPORTED_MEDIA_TYPE",
            )
        )
    if route_max_bytes is not None and len(raw) > route_max_bytes:
        return None, [FieldViolation("body", f"is {len(raw):,} bytes; this route takes at most {route_max_bytes:,}")]
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        return None, [FieldViolation("body", "is not UTF-8 text")]
    except RecursionError:
        return None, [FieldViolation("body", "nests too deeply")]
    except ValueError as exc:  # json.JSONDecodeError included
        return None, [FieldViolation("body", f"is not valid JSON: {exc}")]
    # A \ud800-style escape decodes to a lone surrogate, which is no Unicode text; only look when one may be there.
    if b"\\ud" in raw.lower():
        try:
            where = _lone_surrogate_at(parsed, "")
        except RecursionError:
            return None, [FieldViolation("body", "nests too deeply")]
        if where is not None:
            return None, [FieldViolation(where or "body", "holds a \\u escape of a lone surrogate, which is not text")]
    return parsed, []


def _lone_surrogate_at(value: Any, path: str) -> str | None:
    """The JSON path of the first string (or key) holding a lone surrogate; None when there is none."""
    if isinstance(value, str):
        return None if value.isascii() or not _has_surrogate(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if _has_surrogate(key):
                return path or "body"
            found = _lone_surrogate_at(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _lone_surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _too_large(max_bytes: int) -> web.Response:
    return _plain_error(
        413,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        f"the body is larger than the server's limit of {max_bytes} bytes",
        "BODY_TOO_LARGE",
    )


def _credentials(request: web.Request) -> Credentials:
    return Credentials(
        authorization=request.headers.get("Authorization"),
        tenant=request.headers.get(TENANT_HEADER),
        api_key=request.headers.get("X-API-Key"),
    )


OnCore = Callable[[Coroutine[Any, Any, Message]], Awaitable[Message]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def http_metrics_middleware(metrics: Metrics) -> Any:
    """Counts and times every request by method, route template and status (never by raw path)."""

    @web.middleware
    async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        code = 500
        try:
            response = await handler(request)
            code = response.status
            return response
        except web.HTTPException as exc:
            code = exc.status
            raise
        finally:
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            metrics.http_requests.labels(request.method, route, str(code)).inc()
            metrics.http_seconds.labels(request.method, route).observe(time.perf_counter() - started)

    return measure


def scrape_handler(metrics: Metrics) -> Handler:
    """GET /metrics: the Prometheus text format (open to all, like health)."""

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=metrics.scrape(), headers={"Content-Type": SCRAPE_CONTENT_TYPE})

    return scrape


def metrics_application(metrics: Metrics) -> web.Application:
    """A listener of its own for /metrics (--metrics-address)."""
    app = web.Application(middlewares=[http_metrics_middleware(metrics)])
    app.router.add_get("/metrics", scrape_handler(metrics))
    return app


@dataclass(slots=True)
class _Caller:
    """What one REST call learns along the way, for its access line."""

    tenant: str | None = None
    request_id: str | None = None
    decision_id: str | None = None


class RestApi:
    """The aiohttp application: one handler per (method, path) of the route table, plus the extras."""

    def __init__(
        self,
        servicers: dict[str, Any],
        authenticator: Authenticator,
        on_core: OnCore,
        max_body_bytes: int,
        metrics: Metrics | None = None,
        serve_metrics: bool = False,
        access: AccessLog | None = None,
    ) -> None:
        """`metrics` counts the HTTP requests; with `serve_metrics`, GET /metrics scrapes them too;
        `access` writes an access line per API call."""
        self._servicers = servicers
        self._auth = authenticator
        self._on_core = on_core
        self._max_body = max_body_bytes
        self._metrics = metrics
        self._serve_metrics = serve_metrics
        self._access = access
        self._openapi = json.dumps(openapi_document(ROUTES))
        self._studio = _studio_files()

    def application(self) -> web.Application:
        measuring = [http_metrics_middleware(self._metrics)] if self._metrics is not None else []
        app = web.Application(client_max_size=self._max_body, middlewares=[*measuring, self._errors])
        grouped: dict[tuple[str, str], list[Route]] = {}
        for route in ROUTES:
            grouped.setdefault((route.method, route.path), []).append(route)
        for (method, path), routes in grouped.items():
            # An empty inner path segment still reaches the RPC, whose use case names the missing field
            # (GET /actions//stats is INVALID_ARGUMENT about offerId, as on gRPC), not "no route".
            app.router.add_route(method, _INNER_PATH_PARAM.sub(r"{\1:[^{}/]*}", path), self._handler(routes))
        app.router.add_get("/api/v1/openapi.json", self._openapi_json)
        app.router.add_get("/studio", self._studio_file)
        app.router.add_get("/studio/", self._studio_file)
        app.router.add_get("/studio/{name}", self._studio_file)
        app.router.add_get("/", self._to_studio)
        if self._serve_metrics and self._metrics is not None:
            app.router.add_get("/metrics", scrape_handler(self._metrics))
        return app

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The router's own refusals (no such path, method not allowed) in the same error shape."""
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return _plain_error(
                404, grpc.StatusCode.NOT_FOUND, f"no route {request.method} {request.path}", "ROUTE_NOT_FOUND"
            )
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            response = _plain_error(
                405,
                grpc.StatusCode.UNIMPLEMENTED,
                f"{request.path} answers {allowed}, not {request.method}",
                "METHOD_NOT_ALLOWED",
            )
            response.headers["Allow"] = allowed
            return response

    def _handler(self, routes: list[Route]) -> Callable[[web.Request], Awaitable[web.Response]]:
        takes_body = any(r.body is not None for r in routes)
        # The same per-method request limit as gRPC (Decide), checked before the JSON is parsed.
        limits = [REQUEST_BYTE_LIMITS.get(f"/arbiter.v1.{r.service}/{r.rpc}") for r in routes]
        known = [limit for limit in limits if limit is not None]
        route_max_bytes = max(known) if known and len(known) == len(limits) else None

        async def handle(request: web.Request) -> web.Response:
            started = time.perf_counter()
            caller = _Caller()
            response = await answer(request, caller)
            if self._access is not None:
                self._access.record(
                    request_id=caller.request_id or new_request_id(),
                    method=f"{request.method} {routes[0].path}",
                    tenant=caller.tenant,
                    status=response.status,
                    duration_s=time.perf_counter() - started,
                    decision_id=caller.decision_id,
                )
            return response

        async def answer(request: web.Request, caller: _Caller) -> web.Response:
            body: Any = None
            problems: list[FieldViolation] = []
            if takes_body:
                try:
                    body, problems = await _read_json(request, self._max_body, route_max_bytes)
                except BodyError as exc:
                    return exc.response
            route = next((r for r in routes if r.fits is None or r.fits(body)), routes[-1])
            rest = RestRequest(dict(request.match_info), tuple(request.query.items()), request.headers, body)
            try:
                if problems:
                    message, violations = route.request(), problems
                else:
                    message, violations = build_request(route, rest)
                response = await self._on_core(
                    self._serve(route, _credentials(request), message, violations, rest.path_params, caller)
                )
            except DomainError as error:
                if isinstance(error, InvalidArgument):
                    error = InvalidArgument(rest_violations(route, error.violations), reason=error.reason)
                caller.request_id = new_request_id()
                return _error_response(http_error(error, caller.request_id), caller.request_id)
            except Exception:
                caller.request_id = new_request_id()
                log.exception("unexpected error in %s %s (request id %s)", route.method, route.path, caller.request_id)
                return _error_response(internal_http_error(caller.request_id), caller.request_id)
            caller.decision_id = getattr(response, "decision_id", None) or None
            if route.response is None:
                return web.Response(status=204)
            location = location_of(route, response)
            return _json_response(
                route.status, response_body(route, response), {"Location": location} if location else None
            )

        return handle

    async def _serve(
        self,
        route: Route,
        credentials: Credentials,
        request: Message,
        violations: list[FieldViolation],
        path_params: Mapping[str, str],
        caller: _Caller,
    ) -> Message:
        """On the core's loop: authenticate, then hand the request to the route's servicer."""
        principal = self._auth.authenticate(credentials)
        caller.tenant = principal.tenant
        if violations:
            require(principal, route.permission)
            raise InvalidArgument(violations)
        token = CURRENT_PRINCIPAL.set(principal)
        try:
            if route.parent is not None:
                await self._check_parent(path_params[route.parent], path_params["id"])
            method = getattr(self._servicers[route.service], route.rpc)
            return cast(Message, await method(request, NO_GRPC_CONTEXT))
        finally:
            CURRENT_PRINCIPAL.reset(token)

    async def _check_parent(self, category_id: str, sub_category_id: str) -> None:
        """A sub-category is found under its own category's path only."""
        found = await self._servicers["CatalogService"].GetSubCategory(
            catalog_pb2.GetSubCategoryRequest(id=sub_category_id), NO_GRPC_CONTEXT
        )
        if found.sub_category.category_id != category_id:
            raise NotFound(
                f"sub-category {sub_category_id} not found in category {category_id}", reason="SUB_CATEGORY_NOT_FOUND"
            )

    async def _openapi_json(self, request: web.Request) -> web.Response:
        return web.Response(text=self._openapi, content_type=JSON_TYPE)

    async def _to_studio(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/studio")

    async def _studio_file(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "index.html"
        found = self._studio.get(name)
        if found is None:
            return _plain_error(404, grpc.StatusCode.NOT_FOUND, f"Studio has no file {name!r}", "ROUTE_NOT_FOUND")
        content, content_type = found
        return web.Response(body=content, content_type=content_type, headers=STUDIO_HEADERS)


def _studio_files() -> dict[str, tuple[bytes, str]]:
    """Studio's files, read once from the installed package (name -> content, type)."""
    folder = resources.files(__package__).joinpath("studio")
    files: dict[str, tuple[bytes, str]] = {}
    if not folder.is_dir():
        return files
    for entry in folder.iterdir():
        suffix = Path(entry.name).suffix
        if entry.is_file() and suffix in STUDIO_TYPES:
            files[entry.name] = (entry.read_bytes(), STUDIO_TYPES[suffix])
    return files


class HttpFrontDoor:
    """An HTTP listener's thread and loop: `start` binds and serves, `stop` drains and joins.

    `make_app` builds the aiohttp application, given how to hand work to the core's loop.
    """

    def __init__(
        self,
        make_app: Callable[[OnCore], web.Application],
        *,
        host: str,
        port: int,
        tls: HttpTls | None = None,
        shared_port: bool = False,
    ) -> None:
        """With `shared_port` the port is bound with SO_REUSEPORT: the workers of one server share it."""
        self._make_app = make_app
        self._host = host
        self._wanted_port = port
        self._tls = tls
        self._shared_port = shared_port
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    async def start(self) -> None:
        """Bind and serve (called on the core's loop, which the REST calls are handed to)."""
        core_loop = asyncio.get_running_loop()

        def on_core(coro: Coroutine[Any, Any, Message]) -> Awaitable[Message]:
            future = asyncio.run_coroutine_threadsafe(coro, core_loop)
            # A caller that goes away does not cancel a write half way: the core finishes it.
            return asyncio.shield(asyncio.wrap_future(future))

        app = self._make_app(on_core)
        ready: asyncio.Future[int] = core_loop.create_future()
        self._thread = threading.Thread(
            target=self._run, args=(app, core_loop, ready), name="arbiter-http", daemon=True
        )
        self._thread.start()
        self.port = await ready

    def _run(self, app: web.Application, core_loop: asyncio.AbstractEventLoop, ready: asyncio.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(app, core_loop, ready))
        finally:
            loop.close()

    async def _serve(
        self, app: web.Application, core_loop: asyncio.AbstractEventLoop, ready: asyncio.Future[int]
    ) -> None:
        self._stopping = asyncio.Event()
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        try:
            await runner.setup()
            site = web.TCPSite(
                runner,
                self._host,
                self._wanted_port,
                ssl_context=self._tls.context() if self._tls else None,
                reuse_port=self._shared_port or None,
            )
            await site.start()
            port = runner.addresses[0][1]
        except BaseException as exc:
            core_loop.call_soon_threadsafe(_fail, ready, exc)
            await runner.cleanup()
            return
        core_loop.call_soon_threadsafe(_succeed, ready, port)
        await self._stopping.wait()
        await runner.cleanup()

    async def stop(self) -> None:
        """Stop accepting, let calls in flight finish (they still reach the core), join the thread."""
        if self._thread is None:
            return
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
        await asyncio.to_thread(self._thread.join, 15.0)
        self._thread = None


def rest_front_door(
    servicers: dict[str, Any],
    authenticator: Authenticator,
    *,
    host: str,
    port: int,
    tls: HttpTls | None,
    max_body_bytes: int,
    metrics: Metrics | None,
    serve_metrics: bool,
    access: AccessLog | None,
    shared_port: bool = False,
) -> HttpFrontDoor:
    """The REST API and Studio (and /metrics when `serve_metrics`) on one listener."""

    def make(on_core: OnCore) -> web.Application:
        api = RestApi(
            servicers, authenticator, on_core, max_body_bytes, metrics, serve_metrics=serve_metrics, access=access
        )
        return api.application()

    return HttpFrontDoor(make, host=host, port=port, tls=tls, shared_port=shared_port)


def metrics_front_door(
    metrics: Metrics, *, host: str, port: int, tls: HttpTls | None, shared_port: bool = False
) -> HttpFrontDoor:
    """GET /metrics alone, on a listener of its own."""
    return HttpFrontDoor(lambda _: metrics_application(metrics), host=host, port=port, tls=tls, shared_port=shared_port)


def _succeed(future: asyncio.Future[int], port: int) -> None:
    if not future.done():
        future.set_result(port)


def _fail(future: asyncio.Future[int], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
