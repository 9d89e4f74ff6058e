// The page's only door to rollcall: the /v1 API, with the API key the user entered once.
// Every failure becomes an ApiError carrying the API's stable error code and message.

const KEY_STORAGE = "rollcall.apiKey";
const JOB_TIMEOUT_MS = 120_000;

export class ApiError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.code = code;
    this.status = status;
  }

  describe() {
    return `${this.code}: ${this.message}`;
  }
}

export function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

export function saveApiKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function headers(extra = {}) {
  const key = apiKey();
  return key ? { "X-API-Key": key, ...extra } : extra;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // not JSON (a proxy's error page): fall back to the HTTP status below
  }
  const error = body && body.error;
  if (error && error.code) return new ApiError(error.code, error.message || "", response.status);
  return new ApiError(`http_${response.status}`, response.statusText || "request failed", response.status);
}

async function send(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers), cache: "no-store" });
  } catch (err) {
    throw new ApiError("network_error", `the API did not answer (${err.message})`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

/** GET/POST/PATCH/DELETE a JSON resource; resolves to the parsed body (null for 204). */
export async function api(path, { method = "GET", json, form } = {}) {
  const options = { method };
  if (json !== undefined) {
    options.body = JSON.stringify(json);
    options.headers = { "Content-Type": "application/json" };
  } else if (form !== undefined) {
    options.body = form;
  }
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}

/** A binary resource (a camera frame, an enrolled photo) as a Blob, fetched with the key. */
export async function apiBlob(path) {
  const response = await send(path);
  return response.blob();
}

/** A camera frame as a Blob, with the headers that say where it came from (``X-Frame-Source``, ``X-Frame-Ts``). */
export async function apiFrame(path) {
  const response = await send(path);
  return { blob: await response.blob(), headers: response.headers };
}

/**
 * Read a Server-Sent Events stream with ``fetch`` (so the key goes in a header, never in the URL: the
 * browser's EventSource cannot send headers). Calls ``onEvent(json)`` for every ``data:`` event, skips
 * comments (``: keepalive``), and throws an ApiError for an ``event: error`` or when the stream ends.
 * Aborting ``signal`` ends it (the server then stops following the camera for this page).
 */
export async function readEvents(path, signal, onEvent) {
  const response = await send(path, { signal, headers: { Accept: "text/event-stream" } });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new ApiError("stream_ended", "the event stream ended");
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("event:")) name = line.slice(6).trim();
      }
      if (data.length === 0) continue; // a comment (keepalive) or the retry hint
      const payload = JSON.parse(data.join("\n"));
      if (name === "error") throw new ApiError(payload.error.code, payload.error.message);
      onEvent(payload);
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for a job to end by polling it, one request at a time; resolves to its result. */
export async function waitForJob(statusUrl) {
  const deadline = performance.now() + JOB_TIMEOUT_MS;
  let delay = 60;
  for (;;) {
    const job = await api(statusUrl);
    if (job.state === "succeeded") return job.result;
    if (job.state === "failed" || job.state === "revoked") {
      const error = job.error || { code: "job_failed", message: `the job ended as ${job.state}` };
      throw new ApiError(error.code, error.message);
    }
    if (performance.now() > deadline) {
      throw new ApiError("job_timeout", `no worker finished the job within ${JOB_TIMEOUT_MS / 1000} s`);
    }
    await sleep(delay);
    delay = Math.min(delay * 1.5, 400);
  }
}

/** Submit a detect / identify / attendance job and wait for its result. */
export async function runJob(type, body) {
  const accepted = await api(`/v1/jobs/${type}`, { method: "POST", json: body });
  return waitForJob(accepted.status_url);
}

/** Every person in the facebank (all pages). */
export async function allPeople() {
  const people = [];
  for (;;) {
    const page = await api(`/v1/people?offset=${people.length}&limit=500`);
    people.push(...page.items);
    if (page.items.length === 0 || people.length >= page.total) return people;
  }
}

/** The base64 text of a Blob's bytes (what the API's image_b64 fields take). */
export function blobToBase64(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new ApiError("read_error", "the image could not be read"));
    reader.readAsDataURL(blob);
  });
}

export function describeError(err) {
  return err instanceof ApiError ? err.describe() : `error: ${err.message || err}`;
}
