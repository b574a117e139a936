"""The Dash app of the dashboards, mounted at /dashboard behind the login gate.

One Dash app per web app (each `create_app` builds its own: callbacks are registered on the
instance, never globally). Its Flask server runs under a2wsgi's WSGI middleware; the gate
(`dashboard.access.Gate`) checks the session first. The pages are paths of one layout:
/dashboard/ (overview), /dashboard/air, /dashboard/fleet, each with `?lang=en` for English.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any, cast

import dash
import flask
from a2wsgi import WSGIMiddleware
from dash import Input, Output, dcc, html
from fastapi import FastAPI
from starlette.types import ASGIApp

from core.identity.principal import CSRF_COOKIE, CSRF_HEADER

from . import repository
from .access import PREFIX, Gate, tenant_data
from .pages import air, catalogue, fleet, incidents, overview, parking, water
from .strings import STRINGS, language, language_of_search

#: Path under /dashboard → (title key, page module); the first one is the home page.
PAGES: dict[str, tuple[str, ModuleType]] = {
    "": ("overview", overview),
    "air": ("air", air),
    "fleet": ("fleet", fleet),
    "parking": ("parking", parking),
    "incidents": ("incidents", incidents),
    "water": ("water", water),
    "catalogue": ("catalogue", catalogue),
}


class _Dash(dash.Dash):
    """Dash with the page's language on its `<html>` element."""

    def interpolate_index(
        self,
        metas: str = "",
        title: str = "",
        css: str = "",
        config: str = "",
        scripts: str = "",
        app_entry: str = "",
        favicon: str = "",
        renderer: str = "",
    ) -> str:
        page = str(
            super().interpolate_index(
                metas=metas,
                title=title,
                css=css,
                config=config,
                scripts=scripts,
                app_entry=app_entry,
                favicon=favicon,
                renderer=renderer,
            )
        )
        lang = language(flask.request.args.get("lang"))
        return page.replace("<html>", f'<html lang="{lang}">', 1)


def create_dash() -> dash.Dash:
    """The Dash app with its shell layout and every page's callbacks."""
    app = _Dash(
        __name__,
        routes_pathname_prefix="/",  # Flask sees paths below the mount
        requests_pathname_prefix=f"{PREFIX}/",
        assets_folder=str(Path(__file__).parent / "assets"),
        title="civicsense",
        update_title="",
        suppress_callback_exceptions=True,  # page components appear with their page
        csrf_token_name=CSRF_COOKIE,  # callbacks carry the session's CSRF token
        csrf_header_name=CSRF_HEADER,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.layout = html.Div(
        [
            dcc.Location(id="url"),
            html.Header([html.H1(id="town"), html.Nav(id="nav")], className="bar"),
            html.Main(id="page"),
        ]
    )

    @app.callback(
        Output("page", "children"),
        Output("nav", "children"),
        Output("town", "children"),
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def render(pathname: str | None, search: str | None) -> tuple[Any, list[Any], str]:
        lang = language_of_search(search)
        strings = STRINGS[lang]
        current = app.strip_relative_path(pathname or "") or ""
        title, page = PAGES.get(current, PAGES[""])
        with tenant_data() as conn:
            town = repository.town(conn)
            content = page.layout(conn, strings, lang)
        nav = [
            dcc.Link(
                strings[name],
                href=f"{PREFIX}/{path}?lang={lang}",
                className="active" if name == title else "",
            )
            for path, (name, _) in PAGES.items()
        ]
        return content, nav, f"{town.name} · {strings[title]}"

    for _, page in PAGES.values():
        page.register(app)
    return app


def mount(app: FastAPI) -> None:
    """Mount the dashboards at /dashboard (a registry `mounts` target)."""
    # a2wsgi types the ASGI interface more narrowly than Starlette: the same protocol
    flask_app = cast(ASGIApp, WSGIMiddleware(create_dash().server))
    app.mount(PREFIX, Gate(flask_app), name="dashboard")
