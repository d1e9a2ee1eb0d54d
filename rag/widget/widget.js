/* Hỏi đáp chuyến thăm: the chat widget for intranet pages.
 *
 *   <script src="https://HOST/widget.js" data-title="Hỏi đáp chuyến thăm" async></script>
 *
 * Draws a chat bubble that opens the chat in an iframe on HOST/embed: the page's CSS and scripts
 * cannot reach into the chat, and the chat talks only to its own server. Options (data-*):
 * title, greeting, position (right | left), color (a CSS colour), open (true: open on load),
 * lang (vi | en), token (a signed token, when the server has RAG_API_KEY).
 */
(function () {
  "use strict";
  var script = document.currentScript ||
    Array.prototype.slice.call(document.querySelectorAll("script[src]")).filter(function (s) {
      return /\/widget\.js(\?|#|$)/.test(s.src);
    }).pop();
  if (!script || window.__ragWidget) return;
  window.__ragWidget = true;

  var data = script.dataset;
  var server = new URL(script.src, document.baseURI).origin;
  var lang = data.lang === "en" ? "en" : "vi";
  var labels = {
    vi: { open: "Mở hỏi đáp", close: "Đóng hỏi đáp", title: "Hỏi đáp chuyến thăm" },
    en: { open: "Open the Q&A chat", close: "Close the Q&A chat", title: "Official visits Q&A" }
  }[lang];
  var title = data.title || labels.title;
  var left = data.position === "left";

  var params = new URLSearchParams({ lang: lang, title: title });
  if (data.greeting) params.set("greeting", data.greeting);
  if (data.color) params.set("color", data.color);
  // The token goes in the fragment: it is not sent to the server with the page request or logged.
  var src = server + "/embed?" + params.toString() + (data.token ? "#token=" + encodeURIComponent(data.token) : "");

  var host = document.createElement("div");
  host.setAttribute("data-rag-widget", "");
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  var style = document.createElement("style");
  style.textContent =
    ":host{all:initial}" +
    ".bubble{position:fixed;bottom:20px;z-index:2147483000;width:56px;height:56px;border-radius:50%;" +
    "border:0;cursor:pointer;background:#b91c1c;color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.3);" +
    "display:flex;align-items:center;justify-content:center;padding:0}" +
    ".bubble:focus-visible{outline:3px solid #2563eb;outline-offset:2px}" +
    ".bubble svg{width:28px;height:28px;fill:currentColor}" +
    ".frame{position:fixed;bottom:88px;z-index:2147483000;width:380px;height:560px;" +
    "max-width:calc(100vw - 32px);max-height:calc(100vh - 110px);border:0;border-radius:12px;" +
    "box-shadow:0 8px 30px rgba(0,0,0,.3);background:#fff;display:none}" +
    ".frame.open{display:block}";
  root.appendChild(style);

  var bubble = document.createElement("button");
  bubble.className = "bubble";
  bubble.type = "button";
  bubble.setAttribute("aria-label", labels.open);
  bubble.setAttribute("aria-expanded", "false");
  bubble.title = title;
  bubble.style[left ? "left" : "right"] = "20px";
  if (data.color) bubble.style.background = data.color; // CSSOM: an invalid colour is ignored
  var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  var path = document.createElementNS("http://www.w3.org/2000/svg", "path");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 6v2h2V9H7zm4 0v2h2V9h-2zm4 0v2h2V9h-2z");
  svg.appendChild(path);
  bubble.appendChild(svg);
  root.appendChild(bubble);

  var frame = null;
  function setOpen(open) {
    if (open && !frame) {
      frame = document.createElement("iframe");
      frame.className = "frame";
      frame.src = src;
      frame.title = title;
      frame.setAttribute("allow", "clipboard-write");
      frame.style[left ? "left" : "right"] = "20px";
      root.appendChild(frame);
    }
    if (frame) frame.classList.toggle("open", open);
    bubble.setAttribute("aria-expanded", String(open));
    bubble.setAttribute("aria-label", open ? labels.close : labels.open);
  }
  bubble.addEventListener("click", function () {
    setOpen(!(frame && frame.classList.contains("open")));
  });
  // The chat's close button: only a message from our iframe, from our server, is obeyed.
  window.addEventListener("message", function (event) {
    if (frame && event.source === frame.contentWindow && event.origin === server &&
        event.data && event.data.type === "rag-widget:close") {
      setOpen(false);
      bubble.focus();
    }
  });

  function mount() {
    document.body.appendChild(host);
    if (data.open === "true" || data.open === "") setOpen(true);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
