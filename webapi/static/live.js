// The live view: fetch a camera frame through the API, detect its faces with a job on exactly those
// bytes, show frame and boxes together, repeat. One request at a time: the next frame is asked for
// only after the previous detection has been shown (or has failed).

import { ApiError, apiBlob, blobToBase64, describeError, runJob } from "./api.js";
import { Snapshot, markSelected, renderStage } from "./overlay.js";

const PAUSE_MS = 300; // between a shown frame and the next request, so the workers are not saturated
const RETRY_MS = 2000; // after an error (camera down, API unreachable)
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/bmp"];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class LiveView {
  /** ``els``: stage, state, latency, faceCount, updated, error, empty elements; ``onPick(snapshot, face, index)``
   * runs when a box is clicked, ``onSnapshot(snapshot or null)`` when the frame on screen changes. */
  constructor(els, onPick, onSnapshot) {
    this.els = els;
    this.onPick = onPick;
    this.onSnapshot = onSnapshot;
    this.generation = 0; // bumped by every start/stop/upload: results of an older run are dropped
    this.running = false;
    this.queue = Promise.resolve(); // the one chain every request runs on: never two at a time
    this.snapshot = null;
    this.camera = null;
  }

  /** Refresh from ``camera`` until stopped; starts after the previous run's last request ended. */
  start(camera) {
    const generation = ++this.generation;
    this.running = true;
    if (camera !== this.camera) this.clearStage(`Waiting for the first frame from ${camera}…`);
    this.camera = camera;
    this.setState("live", `live · ${camera}`);
    this.clearError();
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
    this.setState("idle", "paused");
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
      const ok = await this.detect(generation, file, `photo ${file.name}`, performance.now(), 0);
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
    let blob;
    try {
      blob = await apiBlob(`/v1/cameras/${encodeURIComponent(camera)}/frame`);
    } catch (err) {
      if (generation === this.generation) this.showError(err, "camera");
      return false;
    }
    return this.detect(generation, blob, `camera ${camera}`, started, performance.now() - started);
  }

  async detect(generation, blob, label, started, frameMs) {
    try {
      const b64 = await blobToBase64(blob);
      const jobStarted = performance.now();
      const result = await runJob("detect", { image_b64: b64 });
      if (generation !== this.generation) return false;
      const snapshot = new Snapshot(blob, b64, result.frame.width, result.frame.height, label);
      this.show(snapshot, [...result.faces].sort((a, b) => a.box[0] - b.box[0])); // Face 1 is leftmost
      this.showLatency(performance.now() - started, frameMs, performance.now() - jobStarted, result);
      this.clearError();
      return true;
    } catch (err) {
      if (generation === this.generation) this.showError(err, "detect");
      return false;
    }
  }

  show(snapshot, faces) {
    const previous = this.snapshot;
    this.snapshot = snapshot;
    renderStage(this.els.stage, snapshot, faces.map((face) => ({ box: face.box })), (index) => {
      markSelected(this.els.stage, index);
      this.onPick(snapshot, faces[index], index);
    });
    if (previous) previous.release();
    this.els.empty.hidden = true;
    this.els.faceCount.textContent = `${faces.length} face${faces.length === 1 ? "" : "s"}`;
    this.els.updated.textContent = `updated ${snapshot.takenAt.toLocaleTimeString()}`;
    this.onSnapshot(snapshot);
  }

  /** Forget the frame on screen (another camera was chosen: its old faces must not be clicked). */
  clearStage(message) {
    if (this.snapshot) this.snapshot.release();
    this.snapshot = null;
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

  showLatency(totalMs, frameMs, jobMs, result) {
    const latency = this.els.latency;
    latency.textContent = `${Math.round(totalMs)} ms`;
    const worker = result.timings_ms && result.timings_ms.total;
    const parts = [frameMs ? `camera ${Math.round(frameMs)} ms` : null, `detect job ${Math.round(jobMs)} ms`,
      worker !== undefined ? `worker ${Math.round(worker)} ms` : null];
    latency.title = parts.filter(Boolean).join(" · ");
    latency.dataset.level = totalMs < 1000 ? "good" : totalMs < 3000 ? "slow" : "bad";
  }

  showError(err, stage = "") {
    const where = stage === "camera" ? "Camera frame failed" : stage === "detect" ? "Detection failed" : "Error";
    const retry = this.running ? ` — retrying every ${RETRY_MS / 1000} s` : "";
    this.els.error.textContent = `${where}: ${describeError(err)}${retry}`;
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
