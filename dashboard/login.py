"""The dashboards' login page, /dashboard/login: the control map's form and script.

The form posts to /api/v1/auth/session with the control map's `login.js`, which reloads the
page once the session cookie is set; this page then sends the browser on to the dashboard it
came from. A session that may not see the dashboards stays here with the reason.
"""

from __future__ import annotations

import html
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from .access import PREFIX, session_viewer
from .strings import STRINGS, Language, language

router = APIRouter(prefix=PREFIX, tags=["dashboards"], include_in_schema=False)

#: Shared with the control map (parking/static): one login form for every page.
_SCRIPT = "/parking/static/login.js"
_STYLE = "/parking/static/map.css"


def _back_to(next_path: str | None) -> str:
    """Where to go after login: a dashboard path only (no open redirect)."""
    if next_path and next_path.startswith(f"{PREFIX}/") and not next_path.startswith("//"):
        return next_path
    return f"{PREFIX}/"


def _login_page(lang: Language, message: str | None) -> str:
    t = STRINGS[lang]
    e = {k: html.escape(v) for k, v in t.items()}
    notice = f'<p class="notice" role="alert">{html.escape(message)}</p>' if message else ""
    config = json.dumps({"strings": t}, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>{e["login_title"]} · civicsense</title>
<link rel="stylesheet" href="{_STYLE}">
</head>
<body>
<main class="login">
<h1>{e["login_title"]}</h1>
{notice}
<form id="login-form" autocomplete="on">
<label>{e["email"]}<input name="username" type="email" autocomplete="username" required></label>
<label>{e["password"]}<input name="password" type="password" autocomplete="current-password"
 required></label>
<label>{e["otp"]}<input name="otp" inputmode="numeric" autocomplete="one-time-code"></label>
<button type="submit">{e["login"]}</button>
<p id="login-error" class="error" role="alert" hidden></p>
</form>
</main>
<script type="application/json" id="cs-config">{config}</script>
<script src="{_SCRIPT}" defer></script>
</body>
</html>
"""


@router.get("/login", response_class=HTMLResponse)
def login(
    request: Request,
    next_path: Annotated[str | None, Query(alias="next")] = None,
    lang: str | None = None,
) -> Response:
    """The login form; with a session admitted to the dashboards, the page asked for."""
    chosen = language(lang)
    headers = {"Cache-Control": "no-store"}
    try:
        session_viewer(request)
    except HTTPException as refused:
        message = STRINGS[chosen]["forbidden"] if refused.status_code == 403 else None
        return HTMLResponse(_login_page(chosen, message), headers=headers)
    target = _back_to(next_path)
    return RedirectResponse(f"{target}?lang={chosen}", status_code=303, headers=headers)
