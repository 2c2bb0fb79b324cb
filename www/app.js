// Records which of the page's resources arrived, on the page for a person and in
// <body data-loaded="..."> for a headless browser's --dump-dom (the project's browser test reads it).
"use strict";

function mark(name, ok) {
  const item = document.querySelector(`[data-check="${name}"] .result`);
  item.textContent = ok ? "loaded" : "failed";
  item.className = "result " + (ok ? "ok" : "failed");
  return `${name}:${ok ? "ok" : "failed"}`;
}

async function checkAll() {
  const probe = document.getElementById("css-probe");
  const css = getComputedStyle(probe).width === "7px";
  const logo = document.getElementById("logo");
  const img = logo.complete && logo.naturalWidth > 0;
  let favicon = false;
  try {
    const answer = await fetch("/favicon.ico", { cache: "no-store" });
    favicon = answer.ok && (await answer.arrayBuffer()).byteLength > 0;
  } catch (_) {
    favicon = false;
  }
  const results = [mark("css", css), mark("js", true), mark("img", img), mark("favicon", favicon)];
  document.body.dataset.loaded = results.join(" ");
}

window.addEventListener("load", checkAll);
