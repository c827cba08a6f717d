// Create pages. No inline scripts (CSP script-src 'self').
(function () {
  "use strict";
  // Keep the live log scrolled to its end while the run page polls (htmx swaps #run-status).
  function follow() {
    const log = document.querySelector(".run-log");
    if (log) { log.scrollTop = log.scrollHeight; }
  }
  document.addEventListener("DOMContentLoaded", follow);
  document.addEventListener("htmx:afterSwap", follow);
  // Pressing Enter in a wizard field means "Next", not "Back" (the first submit button).
  document.addEventListener("keydown", function (event) {
    const el = event.target;
    if (event.key !== "Enter" || !el || el.tagName !== "INPUT" || !el.form || el.form.id !== "wizard") { return; }
    const next = el.form.querySelector('button[value="next"], button[value="create"]');
    if (next) { event.preventDefault(); next.click(); }
  });
})();
