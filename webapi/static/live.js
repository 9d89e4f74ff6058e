// The live view: the camera's live events (GET /v1/cameras/<name>/events, read with fetch streaming, the
// key in the X-API-Key header) give the boxes and names; the camera's newest shared frame (GET …/frame,
// X-Frame-Source: live) is drawn under them. The stream reader tracks each face and names it once, so a
// name stays on its person and each track keeps its colour. Frames are asked for one at a time; the
// event stream is one long request beside them.

import { ApiError, apiFrame, blobToBase64, describeError, readEvents, runJob } from "./api.js";
import { Snapshot, markSelected, renderStage } from "./overlay.js";

const PAUSE_MS = 200; // between a shown frame and the next request
const RETRY_MS = 2000; // after an error (camera down, API unreachable, stream ended)
const KEPT_EVENTS = 30; // recent events, to find the one of the frame on screen (same ts)
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp"];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A colour per track id, far apart for neighbouring ids (golden angle), the same for the track's life. */
export function trackColor(trackId) {
  return `hsl(${Math.round((trackId * 137.508) % 360)}, 85%, 45%)`;
}

/** The boxes of a live event, leftmost first, labelled with the track's name (or its number). */
export function facesOf(event) {
  return [...event.tracks]
    .sort((a, b) => a.box[0] - b.box[0])
    .map((track) => ({
      box: track.box,
      landmarks: track.landmarks,
      trackId: track.track_id,
      personId: track.person_id,
      label: track.name || `#${track.track_id}`,
      color: trackColor(track.track_id),
    }));
}

export class LiveView {
  /** ``els``: stage, state, latency, faceCount, updated, error, empty elements; ``onPick(snapshot, face, index)``
   * runs when a box is clicked, ``onSnapshot(snapshot or null)`` when the frame on screen changes. */
  constructor(els, onPick, onSnapshot) {
    this.els = els;
    this.onPick = onPick;
    this.onSnapshot = onSnapshot;
    this.generation = 0; // bumped by every start/stop/upload: results of an older run are dropped
    this.running = false;
    this.queue = Promise.resolve(); // the one chain frame requests and uploads run on: never two at a time
    this.stream = null; // the AbortController of the open event stream
    this.events = []; // the newest events of the camera on screen, oldest first
    this.frameTs = null; // X-Frame-Ts of the frame on screen (the shared frame's decode time)
    this.snapshot = null;
    this.camera = null;
    this.errors = { camera: null, events: null };
  }

  /** Follow ``camera`` until stopped: its event stream, and its frames one request at a time. */
  start(camera) {
    const generation = ++this.generation;
    this.closeStream();
    this.running = true;
    if (camera !== this.camera) this.clearStage(`Waiting for the first frame from ${camera}…`);
    this.camera = camera;
    this.events = [];
    this.errors = { camera: null, events: null };
    this.setState("live", `live · ${camera}`);
    this.clearError();
    this.followEvents(generation, camera);
    this.queue = this.queue.then(async () => {
      while (this.running && generation === this.generation) {
        const ok = await this.step(generation, camera);
        await this.pause(generation, ok ? PAUSE_MS : RETRY_MS);
      }
    });
    return this.queue;
  }

  stop() {
    this.generation += 1;
    this.running = false;
    this.closeStream();
    this.setState("idle", "paused");
  }

  closeStream() {
    if (this.stream) this.stream.abort();
    this.stream = null;
  }

  /** The event stream of ``camera``, reopened after an error while this run lasts. */
  async followEvents(generation, camera) {
    while (this.running && generation === this.generation) {
      const controller = new AbortController();
      this.stream = controller;
      try {
        const path = `/v1/cameras/${encodeURIComponent(camera)}/events`;
        await readEvents(path, controller.signal, (event) => this.onEvent(generation, event));
      } catch (err) {
        if (controller.signal.aborted || generation !== this.generation) return;
        this.failed("events", err);
      }
      await this.pause(generation, RETRY_MS);
    }
  }

  onEvent(generation, event) {
    if (generation !== this.generation) return;
    this.events.push(event);
    if (this.events.length > KEPT_EVENTS) this.events.shift();
    if (this.errors.events) this.recovered("events");
    if (this.snapshot) this.drawBoxes();
  }

  /** The event of the frame on screen when it came (same ts), else the newest one. */
  eventForFrame() {
    if (this.events.length === 0) return null;
    const same = this.events.find((event) => this.frameTs !== null && event.ts === this.frameTs);
    return same || this.events[this.events.length - 1];
  }

  /** Detect the faces in an uploaded photo (stops the live view). */
  showUpload(file) {
    this.stop();
    this.camera = null;
    const generation = this.generation;
    this.queue = this.queue.then(async () => {
      if (!IMAGE_TYPES.includes(file.type)) {
        this.showError(new ApiError("not_an_image", `${file.name} is not a JPEG, PNG, WebP or BMP image`));
        return;
      }
      this.setState("busy", "detecting…");
      const ok = await this.detectUpload(generation, file);
      if (ok) this.setState("idle", `photo · ${file.name}`);
    });
    return this.queue;
  }

  /** Wait ``ms``, but end early when the run is superseded (a camera switch should not wait for it). */
  async pause(generation, ms) {
    const end = performance.now() + ms;
    while (generation === this.generation && performance.now() < end) await sleep(50);
  }

  async step(generation, camera) {
    const started = performance.now();
    let frame;
    try {
      frame = await apiFrame(`/v1/cameras/${encodeURIComponent(camera)}/frame`);
      if (generation !== this.generation) return false;
      const bitmap = await createImageBitmap(frame.blob);
      const [width, height] = [bitmap.width, bitmap.height];
      bitmap.close();
      const b64 = await blobToBase64(frame.blob);
      if (generation !== this.generation) return false;
      const ts = frame.headers.get("X-Frame-Ts");
      this.frameTs = ts === null ? null : Number(ts);
      this.showFrame(new Snapshot(frame.blob, b64, width, height, `camera ${camera}`));
      this.showLatency(performance.now() - started, frame.headers);
      if (this.errors.camera) this.recovered("camera");
      return true;
    } catch (err) {
      if (generation === this.generation) this.failed("camera", err);
      return false;
    }
  }

  async detectUpload(generation, file) {
    try {
      const b64 = await blobToBase64(file);
      const started = performance.now();
      const result = await runJob("detect", { image_b64: b64 });
      if (generation !== this.generation) return false;
      const snapshot = new Snapshot(file, b64, result.frame.width, result.frame.height, `photo ${file.name}`);
      this.events = [];
      this.showFrame(snapshot, [...result.faces].sort((a, b) => a.box[0] - b.box[0])); // Face 1 is leftmost
      this.els.latency.textContent = `${Math.round(performance.now() - started)} ms`;
      this.clearError();
      return true;
    } catch (err) {
      if (generation === this.generation) this.showError(err, "detect");
      return false;
    }
  }

  /** Put ``snapshot`` on screen, with ``faces`` (an upload's detections) or the live event's boxes. */
  showFrame(snapshot, faces = null) {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    this.uploadFaces = faces;
    this.drawBoxes();
    if (previous) previous.release();
    this.els.empty.hidden = true;
    this.els.updated.textContent = `updated ${snapshot.takenAt.toLocaleTimeString()}`;
    this.onSnapshot(snapshot);
  }

  drawBoxes() {
    const snapshot = this.snapshot;
    const event = this.uploadFaces ? null : this.eventForFrame();
    const faces = this.uploadFaces || (event ? facesOf(event) : []);
    renderStage(this.els.stage, snapshot, faces, (index) => {
      markSelected(this.els.stage, index);
      this.onPick(snapshot, faces[index], index);
    });
    this.els.faceCount.textContent = `${faces.length} face${faces.length === 1 ? "" : "s"}`;
  }

  /** Forget the frame on screen (another camera was chosen: its old faces must not be clicked). */
  clearStage(message) {
    if (this.snapshot) this.snapshot.release();
    this.snapshot = null;
    this.uploadFaces = null;
    const { stage, empty, faceCount, updated, latency } = this.els;
    stage.classList.remove("has-frame");
    stage.querySelector("img").removeAttribute("src");
    stage.querySelector(".boxes").replaceChildren();
    empty.textContent = message;
    empty.hidden = false;
    faceCount.textContent = "";
    updated.textContent = "";
    latency.textContent = "—";
    latency.dataset.level = "none";
    this.onSnapshot(null);
  }

  showLatency(frameMs, headers) {
    const latency = this.els.latency;
    const event = this.events[this.events.length - 1];
    const age = headers.get("X-Frame-Age-Ms");
    latency.textContent = `${Math.round(frameMs)} ms`;
    const parts = [`frame ${Math.round(frameMs)} ms (${headers.get("X-Frame-Source") || "?"})`,
      age !== null ? `frame age ${age} ms` : null, event ? `${event.tracks.length} tracked` : "no events yet"];
    latency.title = parts.filter(Boolean).join(" · ");
    latency.dataset.level = frameMs < 1000 ? "good" : frameMs < 3000 ? "slow" : "bad";
  }

  failed(where, err) {
    this.errors[where] = err;
    this.showError(err, where);
  }

  recovered(where) {
    this.errors[where] = null;
    const other = where === "camera" ? "events" : "camera";
    if (this.errors[other]) this.showError(this.errors[other], other);
    else this.clearError();
  }

  showError(err, stage = "") {
    const where = { camera: "Camera frame failed", events: "Event stream failed", detect: "Detection failed" };
    const retry = this.running ? ` — retrying every ${RETRY_MS / 1000} s` : "";
    this.els.error.textContent = `${where[stage] || "Error"}: ${describeError(err)}${retry}`;
    this.els.error.hidden = false;
    this.els.state.dataset.state = "error";
    this.els.state.textContent = "error";
  }

  clearError() {
    this.els.error.hidden = true;
    this.els.error.textContent = "";
    if (this.running) this.setState("live", this.els.state.dataset.label);
  }

  setState(state, text) {
    this.els.state.dataset.state = state;
    this.els.state.dataset.label = text;
    this.els.state.textContent = text;
  }
}
