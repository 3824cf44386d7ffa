"""The HTTP API: Toxiproxy 2.12's routes, status codes, JSON shapes and error bodies.

| route | success |
|---|---|
| GET /proxies | 200 map name -> proxy |
| POST /proxies | 201 proxy |
| POST /populate | 201 ``{"proxies": [...]}`` (error: same plus ``error``/``status``) |
| GET, PATCH (or POST), DELETE /proxies/{p} | 200, 200, 204 |
| GET, POST /proxies/{p}/toxics | 200 list, 200 toxic |
| GET, PATCH (or POST), DELETE /proxies/{p}/toxics/{t} | 200, 200, 204 |
| POST /reset | 204 |
| GET /version | 200 ``{"version": "2.12.0"}`` |
| GET /metrics | 200 Prometheus text (404 when metrics are off, as Toxiproxy without -proxy-metrics)
|
| GET /events?since=N&limit=M | 200 ``{"events": [...], "last_seq": N}`` (lab extra) |

Errors are ``{"error": msg, "status": code}`` + newline under ``text/plain; charset=utf-8`` (Go's
``http.Error``); a ``User-Agent`` starting with ``Mozilla/`` gets 403; unknown routes get the
plain ``404 page not found``. No handler waits on proxied traffic.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from lab.proxy.errors import ERR_BAD_REQUEST_BODY, ApiError
from lab.proxy.proxy import Proxy
from lab.proxy.proxy_collection import ProxyCollection

VERSION = "2.12.0"
log = logging.getLogger("lab.proxy.api")
COLLECTION = web.AppKey("collection", ProxyCollection)
METRICS_ON = web.AppKey("metrics_on", bool)
_request_ids = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _dumps(data: Any) -> str:
    # Go's encoding/json: no spaces, fields in struct order (our dicts are built in that order)
    return json.dumps(data, separators=(",", ":"))


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(data).encode(), status=status,
                        content_type="application/json")


def _error(exc: ApiError) -> web.Response:
    resp = web.Response(text=_dumps(exc.to_json()) + "\n", status=exc.status,
                        content_type="text/plain", charset="utf-8")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = str(next(_request_ids))
    if request.headers.get("User-Agent", "").startswith("Mozilla/"):
        resp: web.StreamResponse = web.Response(text="User agent not allowed\n", status=403)
    else:
        try:
            resp = await handler(request)
        except ApiError as exc:
            resp = _error(exc)
        except web.HTTPNotFound:
            resp = web.Response(text="404 page not found\n", status=404)
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug: report it like Go's 500, keep the traceback in the log
            log.exception("internal error")
            resp = _error(ApiError(f"internal error: {type(exc).__name__}", 500))
    resp.headers["X-Toxiproxy-Request-Id"] = rid
    return resp


async def _body(request: web.Request) -> Any:
    text = await request.text()
    if not text.strip():
        raise ERR_BAD_REQUEST_BODY.joined("EOF")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ERR_BAD_REQUEST_BODY.joined(str(exc)) from None


def _c(request: web.Request) -> ProxyCollection:
    return request.app[COLLECTION]


async def list_proxies(request: web.Request) -> web.Response:
    return _json(_c(request).to_json())


async def create_proxy(request: web.Request) -> web.Response:
    proxy = await _c(request).create(await _body(request))
    return _json(proxy.to_json(), 201)


async def populate(request: web.Request) -> web.Response:
    proxies: list[Proxy] = []
    err: ApiError | None
    try:
        body = await _body(request)
    except ApiError as exc:
        err = exc
    else:
        proxies, err = await _c(request).populate(body)
    data: dict[str, Any] = {"proxies": [p.to_json() for p in proxies]}
    if err is not None:
        data.update(err.to_json())
    return _json(data, err.status if err is not None else 201)


async def get_proxy(request: web.Request) -> web.Response:
    return _json(_c(request).get(request.match_info["proxy"]).to_json())


async def update_proxy(request: web.Request) -> web.Response:
    name = request.match_info["proxy"]
    _c(request).get(name)  # 404 before 400, as Toxiproxy
    proxy = await _c(request).update(name, await _body(request))
    return _json(proxy.to_json())


async def delete_proxy(request: web.Request) -> web.Response:
    await _c(request).delete(request.match_info["proxy"])
    return web.Response(status=204)


async def list_toxics(request: web.Request) -> web.Response:
    return _json(_c(request).get(request.match_info["proxy"]).toxics.to_json())


async def create_toxic(request: web.Request) -> web.Response:
    proxy = _c(request).get(request.match_info["proxy"])
    toxic = await proxy.toxics.add(await _body(request))
    return _json(toxic.to_json())


async def get_toxic(request: web.Request) -> web.Response:
    proxy = _c(request).get(request.match_info["proxy"])
    return _json(proxy.toxics.find(request.match_info["toxic"]).to_json())


async def update_toxic(request: web.Request) -> web.Response:
    proxy = _c(request).get(request.match_info["proxy"])
    proxy.toxics.find(request.match_info["toxic"])
    toxic = await proxy.toxics.update(request.match_info["toxic"], await _body(request))
    return _json(toxic.to_json())


async def delete_toxic(request: web.Request) -> web.Response:
    proxy = _c(request).get(request.match_info["proxy"])
    await proxy.toxics.remove(request.match_info["toxic"])
    return web.Response(status=204)


async def reset(request: web.Request) -> web.Response:
    await _c(request).reset()
    return web.Response(status=204)


async def version(request: web.Request) -> web.Response:
    return web.Response(text=json.dumps({"version": VERSION}) + "\n",
                        content_type="application/json", charset="utf-8")


async def metrics(request: web.Request) -> web.Response:
    if not request.app[METRICS_ON]:
        raise web.HTTPNotFound
    m = _c(request).metrics
    return web.Response(body=m.render(), headers={"Content-Type": m.content_type})


async def events(request: web.Request) -> web.Response:
    log_ = _c(request).events
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError:
        raise ApiError("since and limit must be integers", 400) from None
    return _json({"events": log_.since(since, limit), "last_seq": log_.last_seq})


def make_app(collection: ProxyCollection, *, metrics_on: bool = True) -> web.Application:
    """The aiohttp application over ``collection``; the caller runs and stops it."""
    app = web.Application(middlewares=[_middleware])
    app[COLLECTION] = collection
    app[METRICS_ON] = metrics_on
    r = app.router
    r.add_get("/proxies", list_proxies)
    r.add_post("/proxies", create_proxy)
    r.add_post("/populate", populate)
    r.add_get("/proxies/{proxy}", get_proxy)
    r.add_patch("/proxies/{proxy}", update_proxy)
    r.add_post("/proxies/{proxy}", update_proxy)
    r.add_delete("/proxies/{proxy}", delete_proxy)
    r.add_get("/proxies/{proxy}/toxics", list_toxics)
    r.add_post("/proxies/{proxy}/toxics", create_toxic)
    r.add_get("/proxies/{proxy}/toxics/{toxic}", get_toxic)
    r.add_patch("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    r.add_post("/proxies/{proxy}/toxics/{toxic}", update_toxic)
    r.add_delete("/proxies/{proxy}/toxics/{toxic}", delete_toxic)
    r.add_post("/reset", reset)
    r.add_get("/version", version)
    r.add_get("/metrics", metrics)
    r.add_get("/events", events)
    return app
