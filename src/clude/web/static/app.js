// The dashboard's only script: the live part redrawn when the team moves (server-sent events from
// /stream), events listed as they come, and the actions posted to /actions/... The run's token comes
// in the address `clude team serve` printed; it is kept in this tab's sessionStorage (which, unlike a
// cookie, no other port of this host sees), taken out of the address bar, and sent with each request.
"use strict";
const KEY = "clude_token";
const here = new URLSearchParams(location.search);
if (here.has("token")) {
  sessionStorage.setItem(KEY, here.get("token"));
  here.delete("token");
  const rest = here.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
}
const token = sessionStorage.getItem(KEY) || "";

function withToken(address) {
  const url = new URL(address, location.href);
  url.searchParams.set("token", token);
  return url.pathname + url.search + url.hash;
}

// a page refused for want of the token (the back button, a reload): asked again once with this tab's
// token; refused with it too, the token is a stale one and is forgotten
const RETRY = "clude_token_retried";
if (document.body.dataset.refused) {
  if (token && sessionStorage.getItem(RETRY) !== location.pathname) {
    sessionStorage.setItem(RETRY, location.pathname);
    location.replace(withToken(location.href));
  } else {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(RETRY);
  }
} else {
  sessionStorage.removeItem(RETRY);
}

// a link to another page of the dashboard carries the token (taken out of the address bar there)
for (const kind of ["click", "auxclick"]) {
  document.addEventListener(kind, (event) => {
    const link = event.target.closest("a[href^='/']");
    if (link && token) link.setAttribute("href", withToken(link.getAttribute("href")));
  }, true);
}

const said = document.getElementById("said");

function say(text, ok) {
  if (!said) return;
  said.textContent = text;
  said.className = ok ? "" : "error";
}

async function redraw() {
  const live = document.getElementById("live");
  if (!live) return;
  const response = await fetch("/live", {cache: "no-store", headers: {"X-Clude-Token": token}});
  if (response.ok) live.innerHTML = await response.text();
}

async function post(url, fields) {
  const response = await fetch(url, {method: "POST", body: new URLSearchParams(fields),
                                     headers: {"X-Clude-Token": token}});
  let answer;
  try { answer = await response.json(); } catch (e) { answer = {ok: false, message: `${response.status} ${response.statusText}`}; }
  say(answer.message, answer.ok);
  await redraw();
  if (answer.ok && !document.getElementById("live")) location.reload();
  return answer.ok;
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const fields = {};
  if (button.dataset.prompt) {
    const answer = window.prompt(button.dataset.prompt);
    if (answer === null) return;
    fields[button.dataset.field] = answer;
  }
  post(button.dataset.action, fields);
});

const form = document.getElementById("add-task");
if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (await post(form.dataset.action, Object.fromEntries(new FormData(form)))) form.reset();
  });
}

const list = document.getElementById("events");
if (document.getElementById("live") || list) {
  const stream = new EventSource(withToken("/stream"));
  stream.addEventListener("changed", () => redraw());
  stream.addEventListener("line", (message) => {
    if (!list) return;
    const e = JSON.parse(message.data);
    const item = document.createElement("li");
    item.className = `level-${e.level}`;
    item.textContent = `${e.at} ${e.agent} ${e.kind} ${e.task || ""} ${e.text}`;
    list.prepend(item);
    while (list.children.length > 300) list.lastChild.remove();
  });
}
