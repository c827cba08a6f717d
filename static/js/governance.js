// Governance pages. No inline scripts (CSP script-src 'self'); htmx does the requests.
(function () {
  "use strict";
  // After an htmx swap of the decision panel, move focus to its error so screen readers announce it.
  document.addEventListener("htmx:afterSwap", function (event) {
    const error = event.target && event.target.querySelector && event.target.querySelector("[data-testid='decision-error']");
    if (error) { error.setAttribute("tabindex", "-1"); error.focus(); }
  });
  // Disable the decision buttons while a decision is being sent (no double submits).
  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = event.target && event.target.closest && event.target.closest(".gov-decide-form");
    if (form) { form.querySelectorAll("button").forEach(function (b) { b.disabled = true; }); }
  });
})();
