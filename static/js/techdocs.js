// Interactive API reference: Swagger UI or Redoc from drf-spectacular-sidecar's static files (offline).
// Loaded with a <script src>; the spec URL comes from data- attributes (the CSP forbids inline scripts).
(function () {
  "use strict";
  const host = document.getElementById("td-api-viewer");
  if (!host) { return; }
  const loaded = {};

  function load(src) {
    if (!loaded[src]) {
      loaded[src] = new Promise(function (resolve, reject) {
        const el = document.createElement("script");
        el.src = src; el.onload = resolve; el.onerror = reject;
        document.head.appendChild(el);
      });
    }
    return loaded[src];
  }

  function css(href) {
    if (document.querySelector('link[href="' + href + '"]')) { return; }
    const link = document.createElement("link");
    link.rel = "stylesheet"; link.href = href;
    document.head.appendChild(link);
  }

  function swagger() {
    css(host.dataset.swaggerCss);
    return load(host.dataset.swaggerJs).then(function () {
      host.innerHTML = "";
      window.SwaggerUIBundle({
        url: host.dataset.specUrl,
        domNode: host,
        deepLinking: false,
        supportedSubmitMethods: [],   // a reference, not a client: no "Try it out" against other servers
        validatorUrl: null,
        defaultModelsExpandDepth: 0,
      });
    });
  }

  function redoc() {
    return load(host.dataset.redocJs).then(function () {
      host.innerHTML = "";
      // A definition's x-logo (kept only when it is an image on this portal) is drawn as wide and as tall
      // as Redoc's sidebar (260 px) by default: a small mark above the search box instead.
      const theme = { logo: { maxHeight: "56px", maxWidth: "160px", gutter: "12px 16px" } };
      window.Redoc.init(host.dataset.specUrl, { disableSearch: false, hideDownloadButton: true, theme: theme }, host);
    });
  }

  function show(name) {
    document.querySelectorAll("[data-td-viewer]").forEach(function (b) {
      b.setAttribute("aria-pressed", b.dataset.tdViewer === name ? "true" : "false");
    });
    host.setAttribute("data-viewer", name);
    (name === "redoc" ? redoc() : swagger()).catch(function () {
      host.textContent = "The interactive reference could not be loaded; the operations table above has the details.";
    });
  }

  document.querySelectorAll("[data-td-viewer]").forEach(function (b) {
    b.addEventListener("click", function () { show(b.dataset.tdViewer); });
  });
  show("swagger");
})();
