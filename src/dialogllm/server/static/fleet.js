// The fleet view: what `dialogllm status` prints (GET /dialogllm/fleet), live, with
// an inline SVG chart of runs and LLM latency over the last hour.

import { api } from "./api.js";
import { el } from "./render.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const fmt = (s) => (s === null || s === undefined ? "–" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`);

/** Runs finished per minute (bars) and mean LLM latency (line), last 60 minutes. */
export function chart(timeline) {
  const W = 600, H = 160, pad = 28;
  const runs = timeline.map((b) => b.runs);
  const latency = timeline.map((b) => b.llm_latency_s);
  const maxRuns = Math.max(1, ...runs);
  const maxLatency = Math.max(0.001, ...latency.filter((v) => v !== null));
  const step = (W - 2 * pad) / Math.max(1, timeline.length);
  const bars = timeline.map((b, i) => {
    const h = ((H - 2 * pad) * b.runs) / maxRuns;
    return svg("rect", {
      class: b.errors ? "bar has-errors" : "bar", x: (pad + i * step + 1).toFixed(1), y: (H - pad - h).toFixed(1),
      width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1),
    }, svg("title", {}, `${b.runs} runs, ${b.errors} failed`));
  });
  const points = latency.map((v, i) => (v === null ? null
    : `${(pad + i * step + step / 2).toFixed(1)},${(H - pad - ((H - 2 * pad) * v) / maxLatency).toFixed(1)}`)).filter(Boolean);
  const line = points.length ? svg("polyline", { class: "latency", points: points.join(" ") }) : null;
  const dots = points.map((p) => { const [x, y] = p.split(","); return svg("circle", { class: "latency-dot", cx: x, cy: y, r: 2 }); });
  return svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart",
    "aria-label": `Runs per minute (at most ${maxRuns}) and LLM latency (at most ${fmt(maxLatency)}) over the last hour` },
  svg("line", { class: "axis", x1: pad, y1: H - pad, x2: W - pad, y2: H - pad }),
  svg("text", { x: pad, y: H - 8, class: "label" }, "−60 min"),
  svg("text", { x: W - pad, y: H - 8, class: "label end" }, "now"),
  svg("text", { x: pad, y: 14, class: "label" }, `runs/min (max ${maxRuns})`),
  svg("text", { x: W - pad, y: 14, class: "label end latency-label" }, `LLM latency (max ${fmt(maxLatency)})`),
  ...bars, ...(line ? [line] : []), ...dots);
}

function figure(label, value, id) {
  return el("div", { class: "figure" }, el("span", { class: "value", "data-figure": id }, value), el("span", { class: "label" }, label));
}

export function renderFleet(data) {
  const workers = data.workers || [];
  const llm = Object.values(data.llm || {});
  const statusRows = Object.entries(data.runs_by_status || {});
  return [
    el("div", { class: "figures" },
      figure("queue depth", data.queue_depth, "queue_depth"),
      figure("delayed", data.delayed, "delayed"),
      figure("dead letters", data.dead_letters, "dead_letters"),
      figure("live workers", data.live_workers, "live_workers"),
      figure("error rate", `${Math.round((data.error_rate || 0) * 100)}%`, "error_rate"),
      figure("run p50", fmt(data.run_duration_p50_s), "run_p50")),
    (data.alerts || []).length
      ? el("ul", { class: "alerts", "aria-label": "Alerts" }, data.alerts.map((a) => el("li", {}, el("strong", {}, a.name), ": ", a.message)))
      : null,
    el("section", { class: "card" }, el("h3", {}, "Last hour"), chart(data.timeline || []),
      el("p", { class: "legend" }, el("span", { class: "key bars" }), "runs finished per minute ",
        el("span", { class: "key errors" }), "a minute with failed runs ",
        el("span", { class: "key line" }), "mean LLM latency")),
    el("div", { class: "columns" },
      el("section", { class: "card" }, el("h3", {}, "Runs by status"),
        el("table", { class: "runs-by-status" }, el("tbody", {}, statusRows.map(([s, n]) =>
          el("tr", {}, el("th", { scope: "row" }, s), el("td", { "data-status": s }, n)))))),
      el("section", { class: "card" }, el("h3", {}, "Workers"),
        workers.length ? el("table", { class: "workers" },
          el("thead", {}, el("tr", {}, ...["worker", "host", "alive", "ready", "slots"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, workers.map((w) => el("tr", {},
            el("td", {}, w.name), el("td", {}, `${w.host}:${w.pid}`),
            el("td", {}, w.alive ? "yes" : "no"), el("td", { class: w.ready ? "ok" : "bad" }, w.ready ? "ready" : "not ready"),
            el("td", {}, w.concurrency)))))
          : el("p", {}, "No worker has announced itself."))),
    el("section", { class: "card" }, el("h3", {}, "LLM (last hour)"),
      llm.length ? el("table", { class: "llm" },
        el("thead", {}, el("tr", {}, ...["model", "calls", "p50", "p95", "tokens in", "tokens out", "errors"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, llm.map((m) => el("tr", {},
          el("td", {}, m.model), el("td", {}, m.calls), el("td", {}, fmt(m.latency_p50_s)), el("td", {}, fmt(m.latency_p95_s)),
          el("td", {}, m.prompt_tokens), el("td", {}, m.completion_tokens),
          el("td", {}, Object.values(m.errors || {}).reduce((a, b) => a + b, 0))))))
        : el("p", {}, "No LLM calls in the last hour.")),
  ];
}

/** Poll the fleet every ``everyMs`` into ``container`` until ``signal`` aborts. */
export async function fleetView(container, signal, everyMs = 2000) {
  const body = el("div", { class: "fleet-body", "aria-live": "off" });
  const stamp = el("p", { class: "hint", "aria-live": "polite" });
  container.replaceChildren(el("h2", {}, "Fleet"), stamp, body);
  while (!signal.aborted) {
    try {
      const data = await api("GET", "/dialogllm/fleet");
      if (signal.aborted) return;
      body.replaceChildren(...renderFleet(data).filter(Boolean));
      stamp.textContent = `Queue ${data.queue} · updated ${new Date(data.now * 1000).toLocaleTimeString()}`;
    } catch (error) {
      stamp.textContent = `Could not read the fleet: ${error.message}`;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
