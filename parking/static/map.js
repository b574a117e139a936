// civicsense control map: bays drawn in SVG over slippy-map tiles (Web Mercator),
// live through Server-Sent Events with a fallback to polling, plate checks and the list
// of bays to check. No third-party code.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("cs-config").textContent);
  const T = config.strings;
  const API = config.api + "/parking";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATUSES = ["unpaid", "overstay", "grace", "paid", "free", "unverified", "unknown",
    "unregulated"];
  // Okabe–Ito based: distinguishable with the common colour-vision deficiencies; the
  // statuses to act on also get a larger dot with a black ring.
  const COLOURS = {
    free: "#d9d9d9", paid: "#009e73", grace: "#f0e442", unpaid: "#c8102e",
    overstay: "#7b3294", unknown: "#555555", unregulated: "#0072b2", unverified: "#e69f00",
  };
  const TO_CHECK = new Set(["unpaid", "overstay"]);
  const TILE = 256;
  const MIN_ZOOM = 2;
  const MAX_ZOOM = 20;
  const POLL_MS = 5000;
  const RETRY_LIVE_MS = 30000;

  const svg = document.getElementById("map");
  const tilesLayer = document.getElementById("tiles");
  const baysLayer = document.getElementById("bays");
  const zoneSelect = document.getElementById("zone");
  const feedState = document.getElementById("feed-state");
  const info = document.getElementById("bay-info");

  const bays = new Map(); // code → {code, mx, my, props, el}
  window.civicsenseBays = {}; // code → status, for tests and tools
  const view = { cx: 0.5, cy: 0.5, zoom: MIN_ZOOM, fitted: false };
  let zone = "";
  let selected = null;

  // --- helpers -------------------------------------------------------------------------

  function label(status) {
    return T["status." + status] || status;
  }

  function formatTime(value) {
    if (!value) return "";
    const when = new Date(value);
    const sameDay = when.toDateString() === new Date().toDateString();
    const options = sameDay
      ? { hour: "2-digit", minute: "2-digit" }
      : { day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit" };
    return new Intl.DateTimeFormat(config.lang, options).format(when);
  }

  function zoneQuery(extra) {
    const params = new URLSearchParams(extra || {});
    if (zone) params.set("zone", zone);
    const text = params.toString();
    return text ? "?" + text : "";
  }

  async function api(path, options) {
    const response = await fetch(API + path, { credentials: "same-origin", ...options });
    if (response.status === 401) {
      window.location.reload(); // the session ended: the page shows the login form
      throw new Error("session ended");
    }
    return response;
  }

  function setFeedState(kind) {
    feedState.className = "feed " + kind;
    feedState.textContent = T[kind] || "";
  }

  // --- projection and view -------------------------------------------------------------

  function project(lon, lat) {
    const sin = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
    return [(lon + 180) / 360, 0.5 - Math.log((1 + sin) / (1 - sin)) / (4 * Math.PI)];
  }

  function size() {
    const box = svg.getBoundingClientRect();
    return [box.width || 390, box.height || 400];
  }

  function scale() {
    return TILE * Math.pow(2, view.zoom);
  }

  function toScreen(mx, my) {
    const [w, h] = size();
    const s = scale();
    return [(mx - view.cx) * s + w / 2, (my - view.cy) * s + h / 2];
  }

  function fit() {
    if (bays.size === 0) return;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const bay of bays.values()) {
      x0 = Math.min(x0, bay.mx); x1 = Math.max(x1, bay.mx);
      y0 = Math.min(y0, bay.my); y1 = Math.max(y1, bay.my);
    }
    const [w, h] = size();
    const pad = 24;
    const spanX = Math.max(x1 - x0, 1e-9), spanY = Math.max(y1 - y0, 1e-9);
    const zoom = Math.log2(Math.min((w - 2 * pad) / (spanX * TILE), (h - 2 * pad) / (spanY * TILE)));
    view.zoom = Math.max(MIN_ZOOM, Math.min(19, zoom));
    view.cx = (x0 + x1) / 2;
    view.cy = (y0 + y1) / 2;
    view.fitted = true;
    render();
  }

  function zoomAt(zoom, px, py) {
    const [w, h] = size();
    const before = scale();
    const wx = view.cx + (px - w / 2) / before;
    const wy = view.cy + (py - h / 2) / before;
    view.zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, zoom));
    const after = scale();
    view.cx = wx - (px - w / 2) / after;
    view.cy = wy - (py - h / 2) / after;
    scheduleRender();
  }

  let frame = 0;
  function scheduleRender() {
    if (!frame) frame = requestAnimationFrame(() => { frame = 0; render(); });
  }

  function render() {
    tilesLayer.removeAttribute("transform");
    baysLayer.removeAttribute("transform");
    for (const bay of bays.values()) {
      place(bay);
      bay.el.setAttribute("r", radius(bay.props.status));
    }
    drawTiles();
  }

  function place(bay) {
    const [x, y] = toScreen(bay.mx, bay.my);
    bay.el.setAttribute("cx", x.toFixed(1));
    bay.el.setAttribute("cy", y.toFixed(1));
  }

  // --- tiles: drawn when they load; a failing tile is hidden and never retried ------------

  const tiles = new Map(); // "z/x/y" → <image>
  const failed = new Set();

  function tileUrl(z, x, y) {
    return config.tileUrl.replace("{z}", z).replace("{x}", x).replace("{y}", y)
      .replace("{s}", "abc"[(x + y) % 3]);
  }

  function drawTiles() {
    if (!config.tileUrl) return;
    const [w, h] = size();
    const z = Math.max(0, Math.min(19, Math.round(view.zoom)));
    const n = Math.pow(2, z);
    const s = scale();
    const side = s / n; // one tile on screen
    const left = view.cx - w / 2 / s, top = view.cy - h / 2 / s;
    const tx0 = Math.floor(left * n), ty0 = Math.max(0, Math.floor(top * n));
    const tx1 = Math.floor((left + w / s) * n), ty1 = Math.min(n - 1, Math.floor((top + h / s) * n));
    const wanted = new Set();
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) <= 100) {
      for (let ty = ty0; ty <= ty1; ty++) {
        for (let tx = tx0; tx <= tx1; tx++) {
          const wrapped = ((tx % n) + n) % n;
          const key = z + "/" + wrapped + "/" + ty;
          if (failed.has(key)) continue;
          const id = key + "@" + tx; // the same tile may show twice across the antimeridian
          wanted.add(id);
          let image = tiles.get(id);
          if (!image) {
            image = document.createElementNS(SVG_NS, "image");
            image.setAttribute("preserveAspectRatio", "none");
            image.style.opacity = "0";
            image.addEventListener("load", () => { image.style.opacity = "1"; });
            image.addEventListener("error", () => { failed.add(key); image.remove(); tiles.delete(id); });
            image.setAttribute("href", tileUrl(z, wrapped, ty));
            tiles.set(id, image);
            tilesLayer.appendChild(image);
          }
          const [x, y] = toScreen(tx / n, ty / n);
          image.setAttribute("x", x.toFixed(1));
          image.setAttribute("y", y.toFixed(1));
          image.setAttribute("width", (side + 0.5).toFixed(1));
          image.setAttribute("height", (side + 0.5).toFixed(1));
        }
      }
    }
    for (const [id, image] of tiles) {
      if (!wanted.has(id)) { image.remove(); tiles.delete(id); }
    }
  }

  // --- bays ------------------------------------------------------------------------------

  // dots grow as the map zooms in; the statuses to act on stay a little larger
  function radius(status) {
    const base = view.zoom >= 18 ? 6 : view.zoom >= 17 ? 4.5 : 3.5;
    return String(TO_CHECK.has(status) ? base + 1.5 : base);
  }

  function paint(bay) {
    const status = bay.props.status;
    bay.el.setAttribute("data-status", status);
    bay.el.setAttribute("fill", COLOURS[status] || COLOURS.unknown);
    bay.el.setAttribute("r", radius(status));
    window.civicsenseBays[bay.code] = status;
  }

  function upsert(feature) {
    const props = feature.properties;
    const code = String(feature.id ?? props.bay);
    let bay = bays.get(code);
    const [lon, lat] = feature.geometry.coordinates;
    const [mx, my] = project(lon, lat);
    if (!bay) {
      const el = document.createElementNS(SVG_NS, "circle");
      el.setAttribute("data-bay", code);
      bay = { code, mx, my, props, el };
      bays.set(code, bay);
      baysLayer.appendChild(el);
    } else {
      bay.mx = mx; bay.my = my; bay.props = props;
    }
    place(bay);
    paint(bay);
    if (selected === code) showInfo(bay);
  }

  function remove(code) {
    const bay = bays.get(code);
    if (!bay) return;
    bay.el.remove();
    bays.delete(code);
    delete window.civicsenseBays[code];
  }

  function apply(collection, complete) {
    const seen = new Set();
    for (const feature of collection.features || []) {
      upsert(feature);
      seen.add(String(feature.id ?? feature.properties.bay));
    }
    if (complete) {
      for (const code of [...bays.keys()]) if (!seen.has(code)) remove(code);
    }
    if (!view.fitted) fit();
    updateLegend();
  }

  function showInfo(bay) {
    const p = bay.props;
    const parts = [p.bay, label(p.status)];
    if (p.since) parts.push(T.since + " " + formatTime(p.since));
    if (p.plate) parts.push(p.plate);
    parts.push(T.in_zone + " " + p.zone);
    info.textContent = parts.join(" · ");
    info.hidden = false;
  }

  function select(code) {
    if (selected && bays.has(selected)) bays.get(selected).el.classList.remove("selected");
    selected = code;
    const bay = bays.get(code);
    if (!bay) { info.hidden = true; return; }
    bay.el.classList.add("selected");
    baysLayer.appendChild(bay.el); // on top
    showInfo(bay);
  }

  function centreOn(code) {
    const bay = bays.get(code);
    if (!bay) return;
    view.cx = bay.mx; view.cy = bay.my;
    view.zoom = Math.max(view.zoom, 18);
    render();
    select(code);
    svg.scrollIntoView({ block: "nearest" });
  }

  // --- legend ----------------------------------------------------------------------------

  const legend = document.getElementById("legend");
  const legendCounts = {};
  for (const status of STATUSES) {
    const item = document.createElement("li");
    item.dataset.status = status;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = COLOURS[status];
    swatch.setAttribute("aria-hidden", "true");
    const text = document.createElement("span");
    text.textContent = label(status);
    const count = document.createElement("span");
    count.className = "count";
    legendCounts[status] = count;
    item.append(swatch, text, count);
    legend.appendChild(item);
  }

  function updateLegend() {
    const counts = {};
    for (const bay of bays.values()) counts[bay.props.status] = (counts[bay.props.status] || 0) + 1;
    for (const status of STATUSES) legendCounts[status].textContent = " (" + (counts[status] || 0) + ")";
  }

  // --- the list of bays to check ---------------------------------------------------------

  const unpaidList = document.getElementById("unpaid");
  const unpaidCount = document.getElementById("unpaid-count");
  let unpaidTimer = 0;

  function scheduleUnpaid() {
    clearTimeout(unpaidTimer);
    unpaidTimer = setTimeout(loadUnpaid, 300);
  }

  async function loadUnpaid() {
    const response = await api("/enforcement/unpaid" + zoneQuery());
    if (!response.ok) return;
    const rows = await response.json();
    unpaidList.replaceChildren();
    unpaidCount.textContent = "(" + rows.length + ")";
    if (rows.length === 0) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = T.none_to_check;
      unpaidList.appendChild(empty);
      return;
    }
    for (const row of rows) {
      const item = document.createElement("li");
      item.dataset.bay = row.bay;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = COLOURS[row.status];
      swatch.setAttribute("aria-hidden", "true");
      const text = document.createElement("span");
      const parts = [row.bay, label(row.status)];
      if (row.since) parts.push(T.since + " " + formatTime(row.since));
      if (row.plate) parts.push(row.plate);
      text.textContent = parts.join(" · ");
      const show = document.createElement("button");
      show.type = "button";
      show.className = "link";
      show.textContent = T.show;
      show.setAttribute("aria-label", T.show + " " + row.bay);
      show.addEventListener("click", () => centreOn(row.bay));
      item.append(swatch, text, show);
      unpaidList.appendChild(item);
    }
  }

  // --- feed: Server-Sent Events, polling when they fail -----------------------------------

  let source = null;
  let pollTimer = 0;
  let retryTimer = 0;
  let etag = "";

  async function loadStatus() {
    const headers = etag ? { "If-None-Match": etag } : {};
    const response = await api("/bays/status" + zoneQuery(), { headers, cache: "no-store" });
    if (response.status === 304) return false;
    if (!response.ok) throw new Error("status " + response.status);
    etag = response.headers.get("ETag") || "";
    apply(await response.json(), true);
    return true;
  }

  function stopPolling() {
    clearInterval(pollTimer);
    pollTimer = 0;
  }

  function startPolling() {
    if (pollTimer) return;
    setFeedState("polling");
    pollTimer = setInterval(async () => {
      try {
        if (await loadStatus()) scheduleUnpaid();
        setFeedState("polling");
      } catch (_error) {
        setFeedState("offline");
      }
    }, POLL_MS);
  }

  function connectLive() {
    clearTimeout(retryTimer);
    if (source) source.close();
    if (typeof EventSource === "undefined") { startPolling(); return; }
    source = new EventSource(API + "/bays/events" + zoneQuery(), { withCredentials: true });
    source.addEventListener("open", () => { stopPolling(); setFeedState("live"); });
    source.addEventListener("bays", (event) => {
      apply(JSON.parse(event.data), false);
      scheduleUnpaid();
    });
    source.addEventListener("error", () => {
      source.close();
      source = null;
      startPolling();
      retryTimer = setTimeout(connectLive, RETRY_LIVE_MS);
    });
  }

  // --- zones -----------------------------------------------------------------------------

  async function loadZones() {
    const response = await api("/zones");
    if (!response.ok) return;
    for (const z of await response.json()) {
      const option = document.createElement("option");
      option.value = z.code;
      option.textContent = z.code + " – " + z.name;
      zoneSelect.appendChild(option);
    }
  }

  async function changeZone() {
    zone = zoneSelect.value;
    for (const code of [...bays.keys()]) remove(code);
    etag = "";
    view.fitted = false;
    select(null);
    await start();
  }

  // --- plate check -----------------------------------------------------------------------

  const plateForm = document.getElementById("plate-form");
  const plateInput = document.getElementById("plate");
  const plateResult = document.getElementById("plate-result");

  plateForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const plate = plateInput.value.trim().toUpperCase();
    if (!plate) return;
    plateResult.className = "plate-result";
    plateResult.textContent = "…";
    try {
      const response = await api("/enforcement/plates/" + encodeURIComponent(plate) + zoneQuery());
      const answer = await response.json();
      if (!response.ok) {
        plateResult.textContent = T.error + " : " +
          (typeof answer.detail === "string" ? answer.detail : response.status);
        return;
      }
      plateResult.dataset.paid = String(answer.paid);
      if (answer.paid) {
        plateResult.classList.add("paid");
        const until = answer.until ? T.until + " " + formatTime(answer.until) : T.until_stop;
        plateResult.textContent = answer.plate + " : " + T.paid + " " + until +
          (answer.zone ? " · " + T.in_zone + " " + answer.zone : "");
      } else {
        plateResult.classList.add("not-paid");
        plateResult.textContent = answer.plate + " : " + T.not_paid;
      }
    } catch (_error) {
      plateResult.textContent = T.offline;
    }
  });

  // --- pan and zoom: drag, wheel, pinch, buttons ------------------------------------------

  const pointers = new Map();
  let drag = null; // {x, y, dx, dy, target, moved}
  let pinch = null; // {distance, zoom}

  function pointerXY(event) {
    const box = svg.getBoundingClientRect();
    return [event.clientX - box.left, event.clientY - box.top];
  }

  function pinchState() {
    const [a, b] = [...pointers.values()];
    return {
      distance: Math.hypot(a[0] - b[0], a[1] - b[1]) || 1,
      mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2],
    };
  }

  function commitDrag() {
    if (!drag || (!drag.dx && !drag.dy)) return;
    const s = scale();
    view.cx -= drag.dx / s;
    view.cy -= drag.dy / s;
    drag.dx = drag.dy = 0;
    render();
  }

  svg.addEventListener("pointerdown", (event) => {
    svg.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, pointerXY(event));
    if (pointers.size === 1) {
      const [x, y] = pointerXY(event);
      drag = { x, y, dx: 0, dy: 0, target: event.target, moved: false };
      svg.classList.add("dragging");
    } else if (pointers.size === 2) {
      commitDrag();
      drag = null;
      pinch = { ...pinchState(), zoom: view.zoom };
    }
  });

  svg.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId)) return;
    pointers.set(event.pointerId, pointerXY(event));
    if (pinch && pointers.size >= 2) {
      const now = pinchState();
      zoomAt(pinch.zoom + Math.log2(now.distance / pinch.distance), now.mid[0], now.mid[1]);
    } else if (drag) {
      const [x, y] = pointerXY(event);
      drag.dx = x - drag.x;
      drag.dy = y - drag.y;
      if (Math.hypot(drag.dx, drag.dy) > 4) drag.moved = true;
      const shift = "translate(" + drag.dx + " " + drag.dy + ")";
      tilesLayer.setAttribute("transform", shift);
      baysLayer.setAttribute("transform", shift);
    }
  });

  function pointerEnd(event) {
    if (!pointers.delete(event.pointerId)) return;
    if (pointers.size < 2) pinch = null;
    if (pointers.size === 0) {
      svg.classList.remove("dragging");
      if (drag && !drag.moved) {
        const code = drag.target && drag.target.getAttribute && drag.target.getAttribute("data-bay");
        select(code || null);
        drag.dx = drag.dy = 0;
        render();
      } else {
        commitDrag();
      }
      drag = null;
    }
  }
  svg.addEventListener("pointerup", pointerEnd);
  svg.addEventListener("pointercancel", pointerEnd);

  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = pointerXY(event);
    zoomAt(view.zoom - event.deltaY * 0.002, x, y);
  }, { passive: false });

  function zoomCentre(step) {
    const [w, h] = size();
    zoomAt(Math.round(view.zoom) + step, w / 2, h / 2);
  }
  document.getElementById("zoom-in").addEventListener("click", () => zoomCentre(1));
  document.getElementById("zoom-out").addEventListener("click", () => zoomCentre(-1));
  document.getElementById("zoom-fit").addEventListener("click", fit);
  window.addEventListener("resize", scheduleRender);

  // --- start -----------------------------------------------------------------------------

  document.getElementById("logout").addEventListener("click", async () => {
    const csrf = (document.cookie.match(/(?:^|;\s*)civicsense_csrf=([^;]+)/) || [])[1] || "";
    await fetch(config.api + "/auth/session", {
      method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
    });
    window.location.reload();
  });

  zoneSelect.addEventListener("change", changeZone);

  if (config.tileUrl && config.tileUrl.includes("openstreetmap.org")) {
    document.getElementById("attribution").textContent = "© OpenStreetMap";
  }

  async function start() {
    try {
      await loadStatus();
    } catch (_error) {
      setFeedState("offline");
    }
    loadUnpaid();
    connectLive();
  }

  loadZones();
  start();
})();
