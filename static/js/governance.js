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
// The approval confirmation dialog (production-affecting requests). Delegated: htmx swaps the form.
(function () {
  "use strict";
  let opener = null;
  document.addEventListener("click", function (event) {
    const open = event.target.closest && event.target.closest("[data-open-dialog]");
    if (open) {
      const dialog = document.getElementById(open.getAttribute("data-open-dialog"));
      if (dialog && !dialog.open) { opener = open; dialog.showModal(); const input = dialog.querySelector("input"); if (input) { input.focus(); } }
      return;
    }
    const close = event.target.closest && event.target.closest("[data-close-dialog]");
    if (close) { const dialog = close.closest("dialog"); if (dialog) { dialog.close(); } }
  });
  document.addEventListener("close", function (event) {
    if (event.target.tagName === "DIALOG" && opener && document.contains(opener)) { opener.focus(); }
  }, true);
  // The confirm button is enabled only while the typed text matches; the server checks it again.
  document.addEventListener("input", function (event) {
    const input = event.target;
    if (!input.hasAttribute || !input.hasAttribute("data-confirm-word")) { return; }
    const button = input.closest("dialog").querySelector("[data-confirm-submit]");
    button.disabled = input.value.trim() !== input.getAttribute("data-confirm-word");
  });
})();
