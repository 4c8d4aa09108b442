// The API as the page speaks it: JSON requests and Server-Sent Events over fetch
// (EventSource can send neither headers nor a POST body), with the API key and the
// custom auth's Authorization header from localStorage.

const KEY = "dialogllm.apiKey";
const AUTH = "dialogllm.authorization";

export const credentials = {
  get apiKey() { return localStorage.getItem(KEY) || ""; },
  get authorization() { return localStorage.getItem(AUTH) || ""; },
  save(apiKey, authorization) {
    apiKey ? localStorage.setItem(KEY, apiKey) : localStorage.removeItem(KEY);
    authorization ? localStorage.setItem(AUTH, authorization) : localStorage.removeItem(AUTH);
  },
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

function headers(extra = {}) {
  const out = { ...extra };
  if (credentials.apiKey) out["x-api-key"] = credentials.apiKey;
  if (credentials.authorization) out["Authorization"] = credentials.authorization;
  return out;
}

async function refusal(response) {
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail ?? body);
  } catch { /* not JSON */ }
  return new ApiError(response.status, detail);
}

/** One JSON request; throws ApiError for a status >= 400. */
export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await refusal(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** The events of one SSE response: {event, data, id}; comments (pings) skipped. */
export async function* sse(method, path, { body, lastEventId, signal } = {}) {
  const h = headers({ Accept: "text/event-stream" });
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (lastEventId) h["Last-Event-ID"] = lastEventId;
  const response = await fetch(path, {
    method, headers: h, signal, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await refusal(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message", data = [], id = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      for (;;) {
        const end = buffer.search(/\r\n|\r|\n/);
        if (end < 0 || (buffer[end] === "\r" && end + 1 === buffer.length)) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + (buffer.startsWith("\r\n", end) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { event, data: data.join("\n"), id };
          event = "message"; data = []; id = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") event = text;
        else if (field === "data") data.push(text);
        else if (field === "id") id = text;
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const TERMINAL = new Set(["success", "error", "interrupted", "timeout"]);

/**
 * Stream a run the page starts (POST /threads/{tid}/runs/stream), and when the
 * connection drops, join it again after the last event seen
 * (GET /threads/{tid}/runs/{rid}/stream with Last-Event-ID). onEvent(ev, runId).
 * Resolves with the run id when the run's stream ends.
 */
export async function streamRun(threadId, body, onEvent, { signal, onRun } = {}) {
  let runId = null;
  let last = null;
  let failures = 0;
  let open = () => sse("POST", `/threads/${threadId}/runs/stream`, { body, signal });
  for (;;) {
    try {
      for await (const ev of open()) {
        failures = 0;
        if (ev.id) last = ev.id;
        if (ev.event === "metadata" && !runId) {
          runId = JSON.parse(ev.data).run_id;
          if (onRun) onRun(runId);
        }
        onEvent(ev, runId);
      }
      if (!runId) return null;
      const run = await api("GET", `/threads/${threadId}/runs/${runId}`);
      if (TERMINAL.has(run.status)) return runId;
    } catch (error) {
      if (signal && signal.aborted) return runId;
      if (!runId || (error instanceof ApiError && error.status < 500)) throw error;
      failures += 1;
    }
    if (signal && signal.aborted) return runId;
    await sleep(Math.min(250 * 2 ** failures, 4000));
    open = () => sse("GET", `/threads/${threadId}/runs/${runId}/stream`, { lastEventId: last, signal });
  }
}

/**
 * Follow every run of a thread as it happens (GET /threads/{tid}/stream), until
 * the signal aborts; reconnects after the last event id when the stream drops.
 */
export async function watchThread(threadId, modes, onEvent, { signal } = {}) {
  const query = modes.map((m) => `stream_mode=${encodeURIComponent(m)}`).join("&");
  let last = null;
  let failures = 0;
  while (!(signal && signal.aborted)) {
    try {
      for await (const ev of sse("GET", `/threads/${threadId}/stream?${query}`, { lastEventId: last, signal })) {
        failures = 0;
        if (ev.id) last = ev.id;
        onEvent(ev, ev.id ? ev.id.split("/")[0] : null);
      }
    } catch (error) {
      if (signal && signal.aborted) return;
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) return;
      failures += 1;
    }
    await sleep(Math.min(250 * 2 ** failures, 4000));
  }
}
