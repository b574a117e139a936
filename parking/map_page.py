"""The control map for enforcement agents: a phone-sized page at /parking/map (a login
form without a browser session) and its own static files. The page only reads the
parking API (/api/v1/parking/...) with the session cookie; it draws the map itself."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from core.identity.principal import session_principal

router = APIRouter(prefix="/parking", tags=["parking control map"], include_in_schema=False)

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {
    "map.js": "text/javascript",
    "map.css": "text/css",
    "login.js": "text/javascript",
}
PERMISSION = "parking:enforce"

STRINGS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Carte de contrôle",
        "login_title": "Connexion agent",
        "email": "Adresse e-mail",
        "password": "Mot de passe",
        "otp": "Code à usage unique (si activé)",
        "login": "Se connecter",
        "login_failed": "Connexion refusée",
        "forbidden": "Ce compte n'a pas accès au contrôle du stationnement.",
        "logout": "Déconnexion",
        "zone": "Zone",
        "all_zones": "Toutes les zones",
        "legend": "Légende",
        "zoom_in": "Zoomer",
        "zoom_out": "Dézoomer",
        "fit": "Recadrer",
        "map": "Carte des places",
        "plate_check": "Contrôle de plaque",
        "plate": "Plaque",
        "check": "Vérifier",
        "paid": "Payé",
        "not_paid": "Non payé",
        "until": "jusqu'à",
        "until_stop": "jusqu'à l'arrêt",
        "in_zone": "zone",
        "to_check": "À contrôler",
        "none_to_check": "Aucune place à contrôler.",
        "show": "Voir",
        "since": "depuis",
        "live": "En direct",
        "polling": "Actualisation toutes les 5 s",
        "offline": "Hors ligne",
        "bays": "places",
        "error": "Erreur",
        "status.free": "Libre",
        "status.paid": "Payé",
        "status.grace": "Délai de grâce",
        "status.unpaid": "Impayé",
        "status.overstay": "Dépassement",
        "status.unknown": "Inconnu",
        "status.unregulated": "Non réglementé",
        "status.unverified": "Non vérifié",
    },
    "en": {
        "title": "Control map",
        "login_title": "Agent login",
        "email": "E-mail address",
        "password": "Password",
        "otp": "One-time code (if enabled)",
        "login": "Log in",
        "login_failed": "Login refused",
        "forbidden": "This account may not use parking enforcement.",
        "logout": "Log out",
        "zone": "Zone",
        "all_zones": "All zones",
        "legend": "Legend",
        "zoom_in": "Zoom in",
        "zoom_out": "Zoom out",
        "fit": "Fit",
        "map": "Map of the bays",
        "plate_check": "Plate check",
        "plate": "Plate",
        "check": "Check",
        "paid": "Paid",
        "not_paid": "Not paid",
        "until": "until",
        "until_stop": "until stopped",
        "in_zone": "zone",
        "to_check": "To check",
        "none_to_check": "No bay to check.",
        "show": "Show",
        "since": "since",
        "live": "Live",
        "polling": "Refreshing every 5 s",
        "offline": "Offline",
        "bays": "bays",
        "error": "Error",
        "status.free": "Free",
        "status.paid": "Paid",
        "status.grace": "Grace period",
        "status.unpaid": "Unpaid",
        "status.overstay": "Overstay",
        "status.unknown": "Unknown",
        "status.unregulated": "Unregulated",
        "status.unverified": "Unverified",
    },
}


def _language(request: Request) -> str:
    lang = request.query_params.get("lang", "fr")
    return lang if lang in STRINGS else "fr"


def _session_permissions(request: Request) -> frozenset[str] | None:
    """The permissions of the browser session's user, or None without a live session."""
    try:
        return session_principal(request).permissions
    except HTTPException:
        return None


def _page(lang: str, title: str, body: str, script: str, config: dict[str, Any]) -> str:
    data = json.dumps(config, ensure_ascii=False).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="referrer" content="same-origin">
<title>{html.escape(title)} · civicsense</title>
<link rel="stylesheet" href="/parking/static/map.css">
</head>
<body>
{body}
<script type="application/json" id="cs-config">{data}</script>
<script src="/parking/static/{script}" defer></script>
</body>
</html>
"""


def _login_page(lang: str, message: str | None) -> str:
    t = STRINGS[lang]
    e = {k: html.escape(v) for k, v in t.items()}
    notice = f'<p class="notice" role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<main class="login">
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
</main>"""
    return _page(lang, t["login_title"], body, "login.js", {"strings": t})


def _map_page(lang: str, tile_url: str) -> str:
    t = STRINGS[lang]
    e = {k: html.escape(v) for k, v in t.items()}
    body = f"""<header class="bar">
<h1>{e["title"]}</h1>
<label class="zone">{e["zone"]}
<select id="zone"><option value="">{e["all_zones"]}</option></select></label>
<span id="feed-state" class="feed" role="status"></span>
<button id="logout" type="button" class="link">{e["logout"]}</button>
</header>
<main>
<section class="map-wrap" aria-label="{e["map"]}">
<svg id="map" role="img" aria-label="{e["map"]}"><g id="tiles"></g><g id="bays"></g></svg>
<div class="zoom">
<button type="button" id="zoom-in" aria-label="{e["zoom_in"]}">+</button>
<button type="button" id="zoom-out" aria-label="{e["zoom_out"]}">−</button>
<button type="button" id="zoom-fit" aria-label="{e["fit"]}">⤢</button>
</div>
<p id="bay-info" class="bay-info" role="status" hidden></p>
<small id="attribution" class="attribution"></small>
</section>
<section aria-labelledby="legend-title">
<h2 id="legend-title">{e["legend"]}</h2>
<ul id="legend" class="legend"></ul>
</section>
<section aria-labelledby="plate-title">
<h2 id="plate-title">{e["plate_check"]}</h2>
<form id="plate-form" class="plate">
<label class="sr-only" for="plate">{e["plate"]}</label>
<input id="plate" name="plate" placeholder="AB-123-CD" autocapitalize="characters"
 autocomplete="off" required>
<button type="submit">{e["check"]}</button>
</form>
<p id="plate-result" class="plate-result" role="status" aria-live="polite"></p>
</section>
<section aria-labelledby="unpaid-title">
<h2 id="unpaid-title">{e["to_check"]} <span id="unpaid-count"></span></h2>
<ol id="unpaid" class="unpaid"></ol>
</section>
</main>"""
    config = {"strings": t, "lang": lang, "tileUrl": tile_url, "api": "/api/v1"}
    return _page(lang, t["title"], body, "map.js", config)


@router.get("/map", response_class=HTMLResponse)
def control_map(request: Request) -> HTMLResponse:
    """The control map, or the login form without a live browser session."""
    lang = _language(request)
    headers = {"Cache-Control": "no-store"}
    permissions = _session_permissions(request)
    if permissions is None:
        return HTMLResponse(_login_page(lang, None), headers=headers)
    if PERMISSION not in permissions:
        return HTMLResponse(_login_page(lang, STRINGS[lang]["forbidden"]), headers=headers)
    settings = request.app.state.settings
    tile_url = settings.map_tile_url  # empty: no tiles
    return HTMLResponse(_map_page(lang, tile_url), headers=headers)


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    """The page's own script and style sheet."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404, "no such file")
    return FileResponse(STATIC / name, media_type=media_type,
                        headers={"Cache-Control": "no-cache"})  # fmt: skip
