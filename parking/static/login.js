// Login form of the control map: POST /api/v1/auth/session, then reload the page.
"use strict";
(function () {
  const config = JSON.parse(document.getElementById("cs-config").textContent);
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const body = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (value !== "") body.append(key, String(value));
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch("/api/v1/auth/session", {
        method: "POST",
        body,
        credentials: "same-origin",
      });
      if (response.ok) {
        window.location.reload();
        return;
      }
      let detail = "";
      try {
        const answer = await response.json();
        detail = typeof answer.detail === "string" ? answer.detail : "";
      } catch (_ignored) {
        detail = "";
      }
      error.textContent = config.strings.login_failed + (detail ? " : " + detail : "");
      error.hidden = false;
    } catch (_network) {
      error.textContent = config.strings.offline;
      error.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
})();
