// How a dialogue looks: the transcript (appended turn by turn, never redrawn whole),
// streamed tokens, the typed results, and the exports.

/** An element: el("p", {class: "x"}, "text", child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// dark enough for text on white (contrast >= 4.5:1), distinct from one another
const PALETTE = ["#1f5fbf", "#b4235a", "#2e7d32", "#8a4d00", "#6a3fb5", "#00707a", "#a33b00", "#4a5a00"];
const ROLES = { director: "Director", judge: "Judge", analyst: "Analyst", system: "System" };
const TURN_KINDS = new Set(["persona", "human"]);

export const isTurn = (entry) => TURN_KINDS.has(entry.kind || "persona");

export const STATUS_LABELS = {
  idle: "idle", busy: "running", interrupted: "waiting for a person", error: "error",
};

/** The label of a thread's status; an interrupted thread with no question is paused. */
export function statusLabel(thread) {
  if (thread.status === "interrupted" && !Object.keys(thread.interrupts || {}).length) return "paused";
  return STATUS_LABELS[thread.status] || thread.status;
}

export function statusBadge(thread) {
  const label = statusLabel(thread);
  return el("span", { class: `badge status-${label.replaceAll(" ", "-")}` }, label);
}

/** The dialogue's subject, whichever graph it is. */
export function topicOf(values) {
  if (!values) return "";
  return values.topic || values.motion || values.prompt || "";
}

/** Colours by speaker: the cast in its order, then others as they appear. */
export class Colours {
  constructor() { this.map = new Map(); }
  cast(personas) {
    for (const p of personas || []) this.of(p.name);
  }
  of(name) {
    if (!this.map.has(name)) this.map.set(name, PALETTE[this.map.size % PALETTE.length]);
    return this.map.get(name);
  }
}

function entryMeta(entry, turn) {
  const parts = [];
  if (turn) parts.push(`turn ${turn}`);
  if (entry.latency_s) parts.push(`${entry.latency_s.toFixed(2)} s`);
  const tokens = (entry.prompt_tokens || 0) + (entry.completion_tokens || 0);
  if (tokens) parts.push(`${tokens} tokens`);
  if (entry.model) parts.push(entry.model);
  return parts.join(" · ");
}

/** The transcript as a list that only ever appends (or cuts back, after a fork). */
export class TranscriptView {
  constructor(colours) {
    this.colours = colours;
    this.ids = [];
    this.turns = 0;
    this.list = el("ol", { class: "transcript", role: "log", "aria-label": "Transcript", "aria-live": "polite" });
    this.typing = el("div", { class: "typing-area", "aria-hidden": "true" });
    this.streams = new Map();
    this.root = el("div", { class: "dialogue" }, this.list, this.typing);
  }

  /** Show ``entries``: the new ones are appended; a changed past is cut and redrawn. */
  update(entries) {
    const started = performance.now();
    entries = entries || [];
    let same = Math.min(this.ids.length, entries.length);
    for (let i = 0; i < same; i++) {
      if (this.ids[i] !== entries[i].id) { same = i; break; }
    }
    while (this.ids.length > same) {
      this.ids.pop();
      const gone = this.list.lastElementChild;
      if (gone.dataset.turn) this.turns -= 1;
      gone.remove();
    }
    if (entries.length > same) {
      const fragment = document.createDocumentFragment();
      for (const entry of entries.slice(same)) {
        fragment.append(this.entry(entry));
        this.ids.push(entry.id);
      }
      this.list.append(fragment);
      this.clearTyping();
      // the cost of showing new entries (read by the browser tests: it must not
      // grow with the transcript's length)
      performance.measure("transcript-append", { start: started, detail: { entries: entries.length } });
    }
  }

  entry(entry) {
    const kind = entry.kind || "persona";
    const turn = isTurn(entry) ? ++this.turns : null;
    const colour = isTurn(entry) ? this.colours.of(entry.speaker) : null;
    const flags = (entry.flags || []).map((f) => el("span", { class: "flag", title: "guard flag" }, f));
    const label = ROLES[kind];
    return el("li", {
      class: `entry ${isTurn(entry) ? "turn" : "note"} kind-${kind}`,
      "data-id": entry.id, "data-turn": turn || null, "data-speaker": entry.speaker,
      style: colour ? `--speaker: ${colour}` : null,
    },
      el("div", { class: "who" },
        el("span", { class: "name" }, entry.speaker),
        label && label !== entry.speaker ? el("span", { class: "role" }, label) : null,
        kind === "human" ? el("span", { class: "role" }, "person") : null,
        !isTurn(entry) ? el("span", { class: "role" }, kind) : null,
        ...flags),
      el("p", { class: "text" }, entry.text),
      el("div", { class: "meta" }, entryMeta(entry, turn)));
  }

  /** A token of a reply being generated (messages-tuple events). */
  token(messageId, node, text) {
    let bubble = this.streams.get(messageId);
    if (!bubble) {
      bubble = el("div", { class: "entry turn typing", "data-node": node },
        el("div", { class: "who" }, el("span", { class: "name" }, node), el("span", { class: "role" }, "typing…")),
        el("p", { class: "text" }));
      bubble.raw = "";
      this.streams.set(messageId, bubble);
      this.typing.append(bubble);
    }
    bubble.raw += text;
    bubble.querySelector(".text").textContent = readable(bubble.raw);
  }

  clearTyping() {
    this.streams.clear();
    this.typing.replaceChildren();
  }
}

/** What a streamed typed reply says so far: the "message" of partial JSON. */
export function readable(raw) {
  const match = /"(?:message|summary|setting)"\s*:\s*"((?:[^"\\]|\\.)*)/.exec(raw);
  if (!match) return raw.trim().startsWith("{") ? "…" : raw;
  try { return JSON.parse(`"${match[1].replace(/\\$/, "")}"`); } catch { return match[1]; }
}

/** The typed results of a dialogue, as what they are. */
export function results(values) {
  const cards = [];
  if (!values) return cards;
  const verdict = values.verdict;
  if (verdict && typeof verdict === "object") {
    cards.push(el("section", { class: "card result verdict", "aria-label": "Verdict" },
      el("h3", {}, "Verdict"),
      el("p", { class: "winner" }, el("strong", {}, verdict.winner), " wins"),
      el("ul", {}, (verdict.reasons || []).map((r) => el("li", {}, r)))));
  }
  if (typeof values.conclusion === "string" && values.conclusion) {
    cards.push(el("section", { class: "card result conclusion", "aria-label": "Conclusion" },
      el("h3", {}, "Conclusion"), el("p", {}, values.conclusion)));
  }
  const analysis = values.analysis;
  if (analysis && typeof analysis === "object") {
    cards.push(el("section", { class: "card result analysis", "aria-label": "Analysis" },
      el("h3", {}, "Analysis"),
      el("table", { class: "sentiment" },
        el("caption", {}, "Sentiment by speaker"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Speaker"), el("th", { scope: "col" }, "Sentiment"))),
        el("tbody", {}, (analysis.sentiment || []).map((s) => el("tr", {},
          el("td", {}, s.speaker),
          el("td", {}, el("span", { class: `sentiment-${s.sentiment}` }, s.sentiment)))))),
      el("h4", {}, "Claims to check"),
      el("ul", { class: "claims" }, (analysis.claims_to_check || []).map((c) => el("li", {}, c))),
      el("h4", {}, "Privacy flags"),
      (analysis.privacy_flags || []).length
        ? el("ul", { class: "privacy" }, analysis.privacy_flags.map((c) => el("li", {}, c)))
        : el("p", { class: "none" }, "None found.")));
  }
  if (values.stop_reason) cards.push(el("p", { class: "stop-reason" }, `Ended: ${values.stop_reason}`));
  return cards;
}

/** The transcript and results as Markdown. */
export function toMarkdown(thread, values) {
  const graph = (thread.metadata || {}).graph_id || "dialogue";
  const lines = [`# ${graph}: ${topicOf(values) || thread.thread_id}`, ""];
  lines.push(`Thread \`${thread.thread_id}\` · status ${statusLabel(thread)}`, "");
  if (values.scenario) lines.push(`*${values.scenario}*`, "");
  for (const entry of values.transcript || []) {
    const tag = isTurn(entry) ? "" : ` _(${entry.kind})_`;
    lines.push(`**${entry.speaker}:**${tag} ${entry.text}`, "");
  }
  if (values.verdict) {
    lines.push("## Verdict", "", `**${values.verdict.winner}** wins.`, "");
    for (const r of values.verdict.reasons || []) lines.push(`- ${r}`);
    lines.push("");
  }
  if (values.conclusion) lines.push("## Conclusion", "", values.conclusion, "");
  if (values.analysis) {
    lines.push("## Analysis", "");
    for (const s of values.analysis.sentiment || []) lines.push(`- ${s.speaker}: ${s.sentiment}`);
    lines.push("", "Claims to check:", "");
    for (const c of values.analysis.claims_to_check || []) lines.push(`- ${c}`);
    lines.push("", "Privacy flags:", "");
    const flags = values.analysis.privacy_flags || [];
    lines.push(...(flags.length ? flags.map((f) => `- ${f}`) : ["- none"]), "");
  }
  return lines.join("\n");
}

/** Offer ``text`` as a file download. */
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** "3 min ago" for an ISO time. */
export function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
