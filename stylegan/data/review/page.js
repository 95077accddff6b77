// The review page's clicks and keys (stylegan/data/review/server.py renders the page).
// Each mark is POSTed at once; the server has written the exclusion list before it
// answers. Strings reach the page only as server-escaped HTML or through textContent.
"use strict";

const REASONS = JSON.parse(document.body.dataset.reasons);  // key -> label, in key order 1-5
const ORDER = Object.keys(REASONS);
const UNDO = "stylegan-review-undo";  // the undo stack outlives paging and reloads (this tab's session)
const cards = Array.from(document.querySelectorAll(".face"));
const status = document.getElementById("status");
let selected = 0;

function undoStack() {
  return JSON.parse(sessionStorage.getItem(UNDO) || "[]");
}

function say(text, failed) {
  status.textContent = text;
  status.classList.toggle("error", Boolean(failed));
}

function select(index) {
  if (!cards.length) return;
  selected = Math.max(0, Math.min(cards.length - 1, index));
  cards.forEach((card, i) => card.classList.toggle("selected", i === selected));
  cards[selected].scrollIntoView({block: "nearest"});
}

function show(face, reason) {
  const card = cards.find((c) => c.dataset.face === face);
  if (!card) return;
  card.dataset.reason = reason || "";
  card.classList.toggle("marked", Boolean(reason));
  card.querySelector(".mark").textContent = reason ? REASONS[reason] : "";
  card.querySelectorAll("button[data-reason]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.reason === reason)));
}

async function save(face, reason) {
  const response = await fetch("/mark", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({face, reason}),
  });
  if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
  const saved = await response.json();
  show(saved.face, saved.reason);
  document.getElementById("count").textContent = String(saved.marked);
  return saved;
}

async function mark(card, reason) {
  if (!card.querySelector(".buttons")) return;  // rejected faces are shown, not marked
  const face = card.dataset.face, before = card.dataset.reason || null;
  if (reason === before) return;
  try {
    await save(face, reason);
  } catch (err) {
    say(`NOT saved: ${face}: ${err.message}`, true);
    return;
  }
  sessionStorage.setItem(UNDO, JSON.stringify([...undoStack(), {face, reason: before}]));
  say(reason ? `saved: ${face} is ${REASONS[reason]}` : `saved: ${face} unmarked`);
}

async function undo() {
  const stack = undoStack(), last = stack.pop();
  if (!last) return say("nothing to undo");
  try {
    await save(last.face, last.reason);
  } catch (err) {
    say(`NOT undone: ${last.face}: ${err.message}`, true);
    return;
  }
  sessionStorage.setItem(UNDO, JSON.stringify(stack));
  say(`undone: ${last.face} is ${last.reason ? REASONS[last.reason] : "unmarked"}`);
}

function columns() {
  const top = cards.length ? cards[0].offsetTop : 0;
  return Math.max(1, cards.filter((c) => c.offsetTop === top).length);
}

function go(id) {
  const link = document.getElementById(id);
  if (!link.hasAttribute("aria-disabled")) location.href = link.href;
}

const KEYS = {
  ArrowLeft: () => select(selected - 1), ArrowRight: () => select(selected + 1),
  ArrowUp: () => select(selected - columns()), ArrowDown: () => select(selected + columns()),
  n: () => go("next"), PageDown: () => go("next"), p: () => go("prev"), PageUp: () => go("prev"),
  u: undo, 0: () => cards.length && mark(cards[selected], null),
  Delete: () => cards.length && mark(cards[selected], null),
};

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.metaKey) return;
  const number = ORDER[Number(event.key) - 1];
  const action = event.ctrlKey ? (event.key === "z" ? undo : null)
    : number ? () => cards.length && mark(cards[selected], number) : KEYS[event.key];
  if (!action) return;
  event.preventDefault();
  action();
});

cards.forEach((card, index) => {
  card.addEventListener("click", (event) => {
    select(index);
    const button = event.target.closest("button[data-reason]");
    if (button) mark(card, button.dataset.reason === card.dataset.reason ? null : button.dataset.reason);
  });
});
select(0);
