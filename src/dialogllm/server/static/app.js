// The page: a router over the URL's hash (#/, #/new, #/thread/ID, #/fleet) and
// the views. Every view reads the API the way any client does.

import { api, ApiError, credentials, streamRun, watchThread } from "./api.js";
import { fleetView } from "./fleet.js";
import { schemaForm } from "./form.js";
import {
  ago, Colours, download, el, isTurn, results, statusBadge, statusLabel, toMarkdown, topicOf, TranscriptView,
} from "./render.js";

const main = document.getElementById("main");
const notice = document.getElementById("notice");
const MODES = ["values", "messages-tuple"];
let view = null; // {abort: AbortController}

export function say(message, kind = "error") {
  notice.textContent = message;
  notice.className = `notice ${kind}`;
  notice.hidden = !message;
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    say("The server asks for an API key: enter it under “API key” above.");
    document.getElementById("settings").open = true;
  } else {
    say(error.message || String(error));
  }
}

let graphsCache = null;
let assistants = new Map(); // graph id -> its assistant's id
async function graphs() {
  if (!graphsCache) {
    const found = await api("POST", "/assistants/search", { limit: 100 });
    assistants = new Map();
    for (const a of found) if (!assistants.has(a.graph_id) || a.metadata?.created_by === "system") assistants.set(a.graph_id, a.assistant_id);
    graphsCache = [...assistants.keys()].sort();
  }
  return graphsCache;
}

// --- threads -----------------------------------------------------------------------

async function threadsView(signal) {
  const graphSelect = el("select", { id: "filter-graph", name: "graph" }, el("option", { value: "" }, "all graphs"));
  const statusSelect = el("select", { id: "filter-status", name: "status" },
    el("option", { value: "" }, "any status"), el("option", { value: "idle" }, "idle"),
    el("option", { value: "busy" }, "running"), el("option", { value: "interrupted" }, "waiting for a person, or paused"),
    el("option", { value: "error" }, "error"));
  const search = el("input", { id: "filter-metadata", name: "metadata", type: "search", placeholder: "key=value, …" });
  const body = el("tbody");
  const count = el("p", { class: "hint", "aria-live": "polite" });
  const form = el("form", { class: "filters", role: "search" },
    el("div", { class: "field" }, el("label", { for: "filter-graph" }, "Graph"), graphSelect),
    el("div", { class: "field" }, el("label", { for: "filter-status" }, "Status"), statusSelect),
    el("div", { class: "field grow" }, el("label", { for: "filter-metadata" }, "Metadata"), search));
  main.replaceChildren(
    el("div", { class: "heading" }, el("h1", {}, "Threads"), el("a", { class: "button", href: "#/new" }, "New dialogue")),
    form, count,
    el("div", { class: "scroll" }, el("table", { class: "threads" },
      el("thead", {}, el("tr", {}, ...["Thread", "Graph", "Topic", "Status", "Turns", "Last activity"].map((h) => el("th", { scope: "col" }, h)))),
      body)));
  graphs().then((names) => graphSelect.append(...names.map((g) => el("option", { value: g }, g)))).catch(failed);

  let asked = 0;
  const load = async () => {
    const mine = ++asked; // answers may come back out of order: show the latest
    const metadata = {};
    for (const part of search.value.split(",")) {
      const [k, ...v] = part.split("=");
      if (k.trim() && v.length) metadata[k.trim()] = v.join("=").trim();
    }
    if (graphSelect.value) metadata.graph_id = graphSelect.value;
    const query = { limit: 100, sort_by: "updated_at", sort_order: "desc", metadata };
    if (statusSelect.value) query.status = statusSelect.value;
    const found = await api("POST", "/threads/search", query);
    if (signal.aborted || mine !== asked) return;
    body.replaceChildren(...found.map((t) => {
      const values = t.values || {};
      const turns = (values.transcript || []).filter(isTurn).length;
      return el("tr", { "data-thread": t.thread_id },
        el("td", {}, el("a", { href: `#/thread/${t.thread_id}` }, t.thread_id.slice(0, 8))),
        el("td", {}, (t.metadata || {}).graph_id || "–"),
        el("td", { class: "topic" }, topicOf(values)),
        el("td", {}, statusBadge(t)),
        el("td", { class: "num" }, turns),
        el("td", {}, el("time", { datetime: t.updated_at, title: t.updated_at }, ago(t.updated_at))));
    }));
    count.textContent = `${found.length} thread${found.length === 1 ? "" : "s"}`;
    say("");
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); load().catch(failed); });
  for (const input of [graphSelect, statusSelect]) input.addEventListener("change", () => load().catch(failed));
  search.addEventListener("input", () => load().catch(failed));
  while (!signal.aborted) {
    await load().catch(failed);
    await new Promise((r) => setTimeout(r, 3000));
  }
}

// --- a new dialogue ------------------------------------------------------------------

async function newView(signal, graph) {
  const names = await graphs();
  graph = graph && names.includes(graph) ? graph : names[0];
  const picker = el("select", { id: "graph", name: "graph" }, names.map((g) => el("option", { value: g, selected: g === graph }, g)));
  picker.addEventListener("change", () => { location.hash = `#/new/${picker.value}`; });
  const slot = el("div");
  const submit = el("button", { type: "submit" }, "Start");
  const form = el("form", { class: "card start", "aria-label": "Start a dialogue" },
    el("div", { class: "field" }, el("label", { for: "graph" }, "Graph"), picker), slot, submit);
  main.replaceChildren(el("h1", {}, "New dialogue"), form);
  const schemas = await api("GET", `/assistants/${encodeURIComponent(assistants.get(graph))}/schemas`);
  if (signal.aborted) return;
  const fields = schemaForm(schemas.input_schema || {});
  slot.replaceChildren(fields.node);
  slot.querySelector("input, select, textarea")?.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const input = fields.read();
      const thread = await api("POST", "/threads", { metadata: { graph_id: graph } });
      pending = { threadId: thread.thread_id, body: { assistant_id: graph, input, stream_mode: MODES } };
      location.hash = `#/thread/${thread.thread_id}`;
    } catch (error) {
      submit.disabled = false;
      failed(error);
    }
  });
}

// a run to start once the thread view is open (set by the start form)
let pending = null;

// --- one thread ----------------------------------------------------------------------

class ThreadPage {
  constructor(threadId, signal) {
    this.id = threadId;
    this.signal = signal;
    this.colours = new Colours();
    this.transcript = new TranscriptView(this.colours);
    this.thread = null;
    this.values = {};
    this.seen = new Set();
    this.viewing = null; // a checkpoint of the past being looked at
    this.streaming = 0;
    this.header = el("div", { class: "thread-head" });
    this.actions = el("div", { class: "actions", role: "toolbar", "aria-label": "Thread actions" });
    this.scene = el("div", { class: "scene" });
    this.banner = el("div", { class: "banner", hidden: true });
    this.error = el("div", { class: "run-error", role: "alert", hidden: true });
    this.ask = el("div", { class: "ask", hidden: true });
    this.results = el("div", { class: "results" });
    this.history = el("section", { class: "card history", hidden: true, "aria-label": "History" });
    main.replaceChildren(this.header, this.actions, this.banner, this.scene, this.transcript.root,
      this.ask, this.error, this.results, this.history);
  }

  get graph() { return ((this.thread || {}).metadata || {}).graph_id; }

  async open() {
    try {
      await this.refresh();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      main.replaceChildren(el("h1", {}, "Thread not found"),
        el("p", {}, "It may have been deleted, or this key may not be allowed to see it."),
        el("a", { href: "#/" }, "All threads"));
      return;
    }
    if (pending && pending.threadId === this.id) {
      const { body } = pending;
      pending = null;
      this.run(body);
    }
    watchThread(this.id, MODES, (ev, runId) => this.onEvent(ev, runId), { signal: this.signal });
    while (!this.signal.aborted) {
      await new Promise((r) => setTimeout(r, 1500));
      if (!this.signal.aborted) await this.refresh().catch(() => {});
    }
  }

  async refresh() {
    const thread = await api("GET", `/threads/${this.id}`);
    if (this.signal.aborted) return;
    const changed = !this.thread || thread.updated_at !== this.thread.updated_at || thread.status !== this.thread.status;
    this.thread = thread;
    // while a run holds the thread its streams show it; a poll could be older
    if (thread.values && !this.viewing && thread.status !== "busy" && (changed || !this.values.transcript)) this.show(thread.values);
    if (changed) {
      this.renderHead();
      await this.renderStatus();
      // (not while a fork is being written: it would be redrawn away)
      if (!this.history.hidden && !this.history.querySelector("form.fork")) this.loadHistory().catch(failed);
    }
  }

  show(values) {
    this.values = values || {};
    this.colours.cast(this.values.personas);
    this.scene.replaceChildren(...(this.values.scenario ? [el("p", { class: "scenario" }, this.values.scenario)] : []),
      ...(this.values.personas || []).length ? [el("ul", { class: "cast", "aria-label": "Cast" },
        this.values.personas.map((p) => el("li", { style: `--speaker: ${this.colours.of(p.name)}` },
          el("strong", {}, p.name), p.role ? ` — ${p.role}` : "")))] : []);
    this.transcript.update(this.values.transcript);
    this.results.replaceChildren(...results(this.values));
  }

  onEvent(ev, runId) {
    const key = `${runId}/${(ev.id || "").split("/").pop()}`;
    if (ev.id && this.seen.has(key)) return;
    if (ev.id) this.seen.add(key);
    if (this.viewing) return;
    if (ev.event === "values") {
      const values = JSON.parse(ev.data);
      if (values && typeof values === "object" && !Array.isArray(values)) this.show(values);
    } else if (ev.event === "messages") {
      const [chunk, meta] = JSON.parse(ev.data);
      if (typeof chunk.content === "string" && chunk.content) {
        this.transcript.token(chunk.id || "m", (meta || {}).langgraph_node || "…", chunk.content);
      }
    } else if (ev.event === "error") {
      this.refresh().catch(() => {});
    }
  }

  /** Start a run on this thread and stream it (joining again if the stream drops). */
  async run(body) {
    this.streaming += 1;
    this.renderActions();
    try {
      await streamRun(this.id, body, (ev, runId) => this.onEvent(ev, runId), {
        signal: this.signal, onRun: (runId) => { this.runId = runId; this.refresh().catch(() => {}); },
      });
    } catch (error) {
      failed(error);
    } finally {
      this.streaming -= 1;
      this.transcript.clearTyping();
      if (!this.signal.aborted) await this.refresh().catch(failed);
    }
  }

  renderHead() {
    const t = this.thread;
    this.header.replaceChildren(
      el("h1", {}, topicOf(this.values) || `Thread ${t.thread_id.slice(0, 8)}`),
      el("p", { class: "sub" }, el("span", {}, this.graph || "no graph yet"), " · ", statusBadge(t), " · ",
        el("span", { class: "hint" }, `updated ${ago(t.updated_at)}`)),
      el("div", { class: "share" }, el("label", { for: "share-link" }, "Link to this thread"),
        el("input", { id: "share-link", readonly: true, value: `${location.origin}/#/thread/${t.thread_id}` })));
    this.renderActions();
  }

  renderActions() {
    if (!this.thread) return;
    const status = this.thread.status;
    const button = (label, onclick, cls) => el("button", { type: "button", class: cls, onclick }, label);
    this.actions.replaceChildren(...[
      status === "busy" ? button("Stop", () => this.cancel().catch(failed), "danger") : null,
      status === "error" ? button("Retry", () => this.retry().catch(failed)) : null,
      statusLabel(this.thread) === "paused" ? button("Continue", () => this.retry().catch(failed)) : null,
      button(this.history.hidden ? "History" : "Hide history", () => this.toggleHistory().catch(failed), "secondary"),
      button("Export Markdown", () => this.exportMarkdown(), "secondary"),
      button("Export JSON", () => this.exportJson(), "secondary"),
      button("Copy link", () => this.copyLink(), "secondary"),
      button("Delete", () => this.remove().catch(failed), "danger secondary")].filter(Boolean));
  }

  async renderStatus() {
    const t = this.thread;
    if (t.status === "error") {
      const runs = await api("GET", `/threads/${this.id}/runs?limit=1`);
      const run = runs[0] || {};
      this.error.replaceChildren(el("h2", {}, "The run failed"),
        el("p", {}, run.error_node ? ["in node ", el("code", { class: "node" }, run.error_node), ": "] : "",
          el("span", { class: "message" }, run.error || t.error || "unknown error")));
      this.error.hidden = false;
    } else {
      this.error.hidden = true;
    }
    const pendingAsks = Object.values(t.interrupts || {}).flat();
    if (t.status === "interrupted" && pendingAsks.length && !this.viewing) this.renderAsk(pendingAsks);
    else this.ask.hidden = true;
  }

  renderAsk(asks) {
    const first = asks[0];
    const value = first.value || {};
    const who = value.speaker || "you";
    const question = typeof value === "string" ? value : value.prompt ?? JSON.stringify(value);
    const answer = el("textarea", { id: "answer", name: "answer", rows: 3, required: true, maxlength: value.max_chars || null });
    const send = el("button", { type: "submit" }, "Send answer");
    const form = el("form", { class: "card answer", "aria-label": "Answer" },
      el("h2", {}, `Waiting for ${who}`),
      el("p", { class: "question" }, value.asked_by ? el("strong", {}, `${value.asked_by}: `) : null, question),
      (value.choices || []).length ? el("div", { class: "choices" }, value.choices.map((c) =>
        el("button", { type: "button", class: "secondary", onclick: () => { answer.value = c; } }, c))) : null,
      el("label", { for: "answer" }, `Your answer as ${who}`), answer, send);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = answer.value.trim();
      if (!text) return;
      send.disabled = true;
      const resume = asks.length > 1 ? Object.fromEntries(asks.map((a) => [a.id, text])) : text;
      this.ask.hidden = true;
      this.run({ assistant_id: this.graph, command: { resume }, stream_mode: MODES });
    });
    this.ask.replaceChildren(form);
    this.ask.hidden = false;
  }

  async activeRun() {
    const runs = await api("GET", `/threads/${this.id}/runs?limit=5`);
    return runs.find((r) => r.status === "running" || r.status === "pending");
  }

  async cancel() {
    const run = await this.activeRun();
    if (run) await api("POST", `/threads/${this.id}/runs/${run.run_id}/cancel`);
    say("Stopped.", "info");
    await this.refresh();
  }

  /** Run the thread on from its last checkpoint (after a failure or a stop). */
  async retry() {
    this.error.hidden = true;
    this.run({ assistant_id: this.graph, input: null, stream_mode: MODES });
  }

  async remove() {
    if (!confirm("Delete this thread and its whole history?")) return;
    await api("DELETE", `/threads/${this.id}`);
    say("Thread deleted.", "info");
    location.hash = "#/";
  }

  exportMarkdown() {
    download(`dialogue-${this.id}.md`, "text/markdown", toMarkdown(this.thread, this.values));
  }

  exportJson() {
    const data = { thread_id: this.id, graph_id: this.graph, status: this.thread.status, metadata: this.thread.metadata, values: this.values };
    download(`dialogue-${this.id}.json`, "application/json", JSON.stringify(data, null, 2));
  }

  copyLink() {
    const link = `${location.origin}/#/thread/${this.id}`;
    (navigator.clipboard ? navigator.clipboard.writeText(link) : Promise.reject()).then(
      () => say("Link copied.", "info"),
      () => { document.getElementById("share-link").select(); say("Copy the selected link.", "info"); });
  }

  // --- time travel ---------------------------------------------------------------

  async toggleHistory() {
    this.history.hidden = !this.history.hidden;
    this.renderActions();
    if (!this.history.hidden) await this.loadHistory();
  }

  async loadHistory() {
    const states = await api("POST", `/threads/${this.id}/history`, { limit: 500 });
    const byId = new Map(states.map((s) => [s.checkpoint_id, s]));
    const children = new Map();
    for (const s of states) {
      const p = s.parent_checkpoint_id;
      if (p) children.set(p, [...(children.get(p) || []), s.checkpoint_id]);
    }
    const current = new Set();
    for (let s = states[0]; s; s = byId.get(s.parent_checkpoint_id)) current.add(s.checkpoint_id);
    const rows = [...states].reverse().map((s) => {
      const parent = byId.get(s.parent_checkpoint_id);
      const node = parent && parent.next.length ? parent.next.join(", ") : (s.metadata || {}).source || "";
      const entries = (s.values || {}).transcript || [];
      const before = ((parent || {}).values || {}).transcript || [];
      const wrote = entries.length > before.length ? entries[entries.length - 1] : null;
      const forks = (children.get(s.checkpoint_id) || []).length;
      return el("li", { class: current.has(s.checkpoint_id) ? "step" : "step other-branch", "data-checkpoint": s.checkpoint_id },
        el("div", { class: "what" },
          el("span", { class: "step-no" }, `step ${(s.metadata || {}).step ?? "?"}`),
          el("span", { class: "node" }, node || "input"),
          wrote ? el("span", { class: "said" }, `${wrote.speaker}: ${wrote.text.slice(0, 60)}`) : null,
          current.has(s.checkpoint_id) ? null : el("span", { class: "badge" }, "other branch"),
          forks > 1 ? el("span", { class: "badge" }, `splits into ${forks} branches`) : null),
        el("div", { class: "do" },
          el("button", { type: "button", class: "secondary", onclick: () => this.viewAt(s) }, "View"),
          el("button", { type: "button", class: "secondary", onclick: (e) => this.forkForm(e.target.closest("li"), s, parent, wrote) }, "Fork from here")));
    });
    this.history.replaceChildren(el("h2", {}, "History"),
      el("p", { class: "hint" }, `${states.length} checkpoints; pick a step to see the dialogue there or to branch off it.`),
      el("ol", { class: "steps" }, rows));
  }

  viewAt(state) {
    this.viewing = state.checkpoint_id;
    this.transcript.update(((state.values || {}).transcript) || []);
    this.results.replaceChildren(...results(state.values || {}));
    this.ask.hidden = true;
    const back = el("button", { type: "button", onclick: () => this.backToLive() }, "Back to now");
    this.banner.replaceChildren(el("p", {}, `Viewing step ${(state.metadata || {}).step} (checkpoint ${state.checkpoint_id.slice(-8)}). `), back);
    this.banner.hidden = false;
    back.focus();
  }

  backToLive() {
    this.viewing = null;
    this.banner.hidden = true;
    if (this.thread && this.thread.values) this.show(this.thread.values);
    this.renderStatus().catch(failed);
  }

  forkForm(row, state, parent, wrote) {
    row.querySelector("form.fork")?.remove();
    // spent_tokens is a counter the graph adds to (a value written there is added)
    const scalars = Object.fromEntries(Object.entries(state.values || {}).filter(([k, v]) =>
      k !== "spent_tokens" && ["string", "number", "boolean"].includes(typeof v)));
    const edit = wrote && parent ? el("textarea", { id: "fork-turn", name: "turn", rows: 2 }, wrote.text) : null;
    const inputs = el("textarea", { id: "fork-values", name: "values", rows: 3 }, JSON.stringify(scalars, null, 1));
    const form = el("form", { class: "fork", "aria-label": "Fork" },
      edit ? [el("label", { for: "fork-turn" }, `${wrote.speaker}'s turn at this step (edit to change it)`), edit] : null,
      el("label", { for: "fork-values" }, "Values at this step (JSON; edit to change the input)"), inputs,
      el("button", { type: "submit" }, "Fork and run"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      let values;
      try { values = JSON.parse(inputs.value || "{}"); } catch { say("The values are not valid JSON."); return; }
      const changed = Object.fromEntries(Object.entries(values).filter(([k, v]) => scalars[k] !== v));
      this.fork(state, parent, edit && edit.value !== wrote.text ? { ...wrote, text: edit.value } : null, changed).catch(failed);
    });
    row.append(form);
    (edit || inputs).focus();
  }

  /** A new branch from ``state``: edit its turn or values (a new checkpoint), run on. */
  async fork(state, parent, editedEntry, changed) {
    let from = state.checkpoint_id;
    const asNode = parent && parent.next.length ? parent.next[0] : undefined;
    if (editedEntry && parent) {
      const entry = { ...editedEntry, id: crypto.randomUUID().replaceAll("-", ""), index: -1 };
      if (entry.reply && typeof entry.reply.message === "string") entry.reply = { ...entry.reply, message: entry.text };
      const update = await api("POST", `/threads/${this.id}/state`,
        { values: { ...changed, transcript: [entry] }, checkpoint_id: parent.checkpoint_id, as_node: asNode });
      from = update.checkpoint.checkpoint_id;
    } else if (Object.keys(changed).length) {
      const update = await api("POST", `/threads/${this.id}/state`, { values: changed, checkpoint_id: from, as_node: asNode });
      from = update.checkpoint.checkpoint_id;
    }
    this.backToLive();
    say("Forked: a new branch runs from that step.", "info");
    this.run({ assistant_id: this.graph, input: null, checkpoint_id: from, stream_mode: MODES });
    this.loadHistory().catch(() => {});
  }
}

// --- router --------------------------------------------------------------------------

async function route() {
  if (view) view.abort();
  view = new AbortController();
  const signal = view.signal;
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  for (const link of document.querySelectorAll("[data-nav]")) {
    const active = link.dataset.nav === (parts[0] || "threads") || (parts[0] === "thread" && link.dataset.nav === "threads");
    if (active) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  try {
    if (parts[0] === "thread" && parts[1]) await new ThreadPage(decodeURIComponent(parts[1]), signal).open();
    else if (parts[0] === "new") await newView(signal, parts[1]);
    else if (parts[0] === "fleet") await fleetView(main, signal);
    else await threadsView(signal);
  } catch (error) {
    if (!signal.aborted) failed(error);
  }
}

function settings() {
  const form = document.getElementById("settings-form");
  form.api_key.value = credentials.apiKey;
  form.authorization.value = credentials.authorization;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    credentials.save(form.api_key.value.trim(), form.authorization.value.trim());
    document.getElementById("settings").open = false;
    graphsCache = null;
    say("Saved.", "info");
    route();
  });
}

settings();
window.addEventListener("hashchange", () => { say(""); route(); main.focus({ preventScroll: true }); });
route();
