// The top search box: an ARIA combobox over the htmx typeahead fragment (templates/search/typeahead.html).
// ArrowDown/ArrowUp move through the options, Enter opens the active one (or, with none active,
// submits the form: the full results page), Escape closes the list (a second Escape clears the box).
(function () {
  "use strict";

  function parts() {
    const input = document.getElementById("global-search");
    const list = document.getElementById("search-suggestions");
    return input && list ? { input: input, list: list } : null;
  }

  function options(list) {
    return Array.prototype.slice.call(list.querySelectorAll('[role="option"]'));
  }

  function setActive(p, index) {
    const opts = options(p.list);
    opts.forEach(function (opt, i) { opt.setAttribute("aria-selected", i === index ? "true" : "false"); });
    if (index >= 0 && opts[index]) {
      p.input.setAttribute("aria-activedescendant", opts[index].id);
      opts[index].scrollIntoView({ block: "nearest" });
    } else {
      p.input.removeAttribute("aria-activedescendant");
    }
  }

  function activeIndex(p) {
    return options(p.list).findIndex(function (opt) { return opt.getAttribute("aria-selected") === "true"; });
  }

  function open(p) {
    const has = options(p.list).length > 0;
    p.list.hidden = !has;
    p.input.setAttribute("aria-expanded", has ? "true" : "false");
  }

  function close(p) {
    p.list.hidden = true;
    p.input.setAttribute("aria-expanded", "false");
    setActive(p, -1);
  }

  document.addEventListener("htmx:afterSwap", function (event) {
    const p = parts();
    if (!p || event.target !== p.list) { return; }
    if (p.input.value.trim() === "" || document.activeElement !== p.input) { close(p); return; }
    open(p);
    setActive(p, -1);
  });

  document.addEventListener("input", function (event) {
    const p = parts();
    if (p && event.target === p.input && p.input.value.trim() === "") {
      p.list.innerHTML = "";
      close(p);
    }
  });

  document.addEventListener("keydown", function (event) {
    const p = parts();
    if (!p || event.target !== p.input) { return; }
    const opts = options(p.list);
    const current = activeIndex(p);
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (!opts.length) { return; }
      event.preventDefault();
      if (p.list.hidden) { open(p); }
      const step = event.key === "ArrowDown" ? 1 : -1;
      const next = current < 0 ? (step > 0 ? 0 : opts.length - 1) : (current + step + opts.length) % opts.length;
      setActive(p, next);
    } else if (event.key === "Enter") {
      if (!p.list.hidden && current >= 0 && opts[current]) {
        event.preventDefault();
        window.location.assign(opts[current].href);
      }  // otherwise the form submits: /search?q=…
    } else if (event.key === "Escape") {
      if (!p.list.hidden) {
        event.preventDefault();
        close(p);
      } else if (p.input.value) {
        event.preventDefault();
        p.input.value = "";
      }
    } else if (event.key === "Home" || event.key === "End") {
      if (!p.list.hidden && current >= 0) {
        event.preventDefault();
        setActive(p, event.key === "Home" ? 0 : opts.length - 1);
      }
    }
  });

  // Reopen on focus when there is something to show; close when focus or a click goes elsewhere.
  document.addEventListener("focusin", function (event) {
    const p = parts();
    if (!p) { return; }
    if (event.target === p.input && p.input.value.trim() !== "") { open(p); }
    else if (!p.input.form.contains(event.target)) { close(p); }
  });
  document.addEventListener("mousedown", function (event) {
    const p = parts();
    if (p && !p.input.form.contains(event.target)) { close(p); }
  });
  // Hovering an option makes it the active one, so mouse and keyboard agree.
  document.addEventListener("mousemove", function (event) {
    const p = parts();
    const opt = event.target && event.target.closest ? event.target.closest('#search-suggestions [role="option"]') : null;
    if (p && opt) { setActive(p, options(p.list).indexOf(opt)); }
  });
})();
