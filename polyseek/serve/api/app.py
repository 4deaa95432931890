"""`create_app(config)`: the FastAPI app over one index. No module-level state: each app owns its AppState."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

from . import errors
from .config import ServeConfig
from .openapi_errors import document_errors
from .routes import ask, assets, index, search, status, ui
from .security import BodyLimitMiddleware, HostOriginMiddleware
from .state import AppState

MULTIPART_SLACK = 1 << 20  # room for multipart headers and small fields around the files


def create_app(config: ServeConfig) -> FastAPI:
    """Build the app: opens the index (it must exist), installs routers, JSON errors, limits and CORS."""
    state = AppState(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from fastapi.concurrency import run_in_threadpool

        await run_in_threadpool(state.warm_up)  # load the query encoders now, not on the first search
        yield
        state.close()

    import polyseek

    app = FastAPI(title="Polyseek", version=polyseek.__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Multimodal search over one Polyseek index: text, image and crop queries, assets, "
                              "thumbnails, PDF pages, and indexing. Send `Authorization: Bearer <token>` when the "
                              "server was started with a token.")
    app.state.polyseek = state
    errors.install(app)
    for r in (search.router, ask.router, assets.router, index.router, status.router, ui.router):
        app.include_router(r)
    app.mount("/ui", StaticFiles(directory=ui.UI_DIR, check_dir=True), name="ui")
    app.add_middleware(BodyLimitMiddleware, limit=config.max_upload_bytes + MULTIPART_SLACK)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(HostOriginMiddleware, hosts=config.host_names(), origins=config.cors_origins)  # outermost
    extra = search.EXTRA_SCHEMAS + index.EXTRA_SCHEMAS + ask.EXTRA_SCHEMAS

    def openapi():
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in extra:
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(s.pop("$defs", {}))
                schemas[model.__name__] = s
            document_errors(doc)
            if config.token:
                doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
                doc["security"] = [{"bearer": []}]
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi
    return app
