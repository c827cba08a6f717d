// Plinth's small behaviours. No inline scripts anywhere (the CSP forbids them).
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  // The main menu's disclosure button (narrow screens): aria-expanded says whether the links show;
  // Escape closes the menu and gives the focus back to the button.
  function wireMenu() {
    const button = document.querySelector(".nav-toggle");
    const nav = button && document.getElementById(button.getAttribute("aria-controls"));
    if (!nav) { return; }
    button.hidden = false;
    function set(open) { button.setAttribute("aria-expanded", open ? "true" : "false"); nav.classList.toggle("open", open); }
    button.addEventListener("click", function () { set(button.getAttribute("aria-expanded") !== "true"); });
    nav.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { set(false); button.focus(); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", wireMenu); } else { wireMenu(); }
  // The user menu (a <details>): Escape closes it and gives the focus back to its summary; so does a
  // click elsewhere on the page.
  document.addEventListener("keydown", function (event) {
    const menu = event.key === "Escape" && event.target.closest && event.target.closest("details.usermenu[open]");
    if (menu) { menu.open = false; menu.querySelector("summary").focus(); }
  });
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.usermenu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) { menu.open = false; }
    });
  });
  // "/" focuses the search box, like most developer tools.
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable);
    if (event.key === "/" && !typing) {
      const box = document.getElementById("global-search");
      if (box) { event.preventDefault(); box.focus(); box.select(); }
    }
  });
  // <select data-autosubmit> submits its form on change.
  document.addEventListener("change", function (event) {
    const el = event.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) { el.form.requestSubmit(); }
  });
  // "Copy" buttons (data-copy="text"): run ids, a new API token. The text stays selectable without this.
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(button.dataset.copy).then(function () {
      const label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
  // Elements with data-confirm ask before submitting.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const message = form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });
})();
