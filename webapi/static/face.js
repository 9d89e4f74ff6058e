// The face panel: identify the face the user clicked, and enrol it when nobody is known for it.
// Enrolment uploads a crop of the face with a margin (one face per photo is what the API accepts).

import { allPeople, api, blobToBase64, describeError, runJob, waitForJob } from "./api.js";
import { cropFace } from "./overlay.js";

const $ = (root, selector) => root.querySelector(selector);

export class FacePanel {
  constructor(root, onEnrolled) {
    this.root = root;
    this.onEnrolled = onEnrolled;
    this.request = 0; // the latest click; answers to older clicks are dropped
    this.cropUrl = null;
    $(root, ".close").addEventListener("click", () => this.close());
    this.form = $(root, "#enrol-form");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.enrol();
    });
    for (const radio of this.form.querySelectorAll("input[name=enrol-target]")) {
      radio.addEventListener("change", () => this.syncTarget());
    }
  }

  close() {
    this.request += 1;
    this.root.hidden = true;
  }

  async open(snapshot, face, index) {
    const request = ++this.request;
    this.snapshot = snapshot;
    this.face = face;
    this.root.hidden = false;
    $(this.root, "#face-title").textContent = `Face ${index + 1} · ${snapshot.label}`;
    this.setName("Identifying…", "busy");
    $(this.root, "#face-score").textContent = "";
    $(this.root, "#face-candidates").replaceChildren();
    this.form.hidden = true;
    this.setStatus("");
    this.setError(null);
    this.crop = await cropFace(snapshot, face.box);
    if (request !== this.request) return;
    if (this.cropUrl) URL.revokeObjectURL(this.cropUrl);
    this.cropUrl = URL.createObjectURL(this.crop);
    $(this.root, "#face-crop").src = this.cropUrl;
    await this.identify(request);
  }

  async identify(request) {
    this.setName("Identifying…", "busy");
    let result;
    try {
      result = await runJob("identify", { image_b64: this.snapshot.b64, box: this.face.box, top_k: 3 });
    } catch (err) {
      if (request !== this.request) return;
      this.setName("Not identified", "error");
      this.setError(err);
      return;
    }
    if (request !== this.request) return;
    const score = `score ${result.score.toFixed(2)} (needs ${result.threshold.toFixed(2)})`;
    if (result.person) {
      this.setName(result.person.display_name, "known");
      this.form.hidden = true;
    } else {
      this.setName("Unknown", "unknown");
      this.showEnrolForm();
    }
    $(this.root, "#face-score").textContent = score;
    $(this.root, "#face-candidates").replaceChildren(
      ...result.candidates.map((candidate) => {
        const item = document.createElement("li");
        item.textContent = `${candidate.person.display_name} — ${candidate.score.toFixed(2)}`;
        return item;
      }),
    );
  }

  async showEnrolForm() {
    this.form.hidden = false;
    this.form.querySelector("input[value=new]").checked = true;
    $(this.form, "#enrol-name").value = "";
    this.syncTarget();
    const select = $(this.form, "#enrol-person");
    try {
      const people = await allPeople();
      select.replaceChildren(
        ...people.map((person) => {
          const option = document.createElement("option");
          option.value = String(person.id);
          option.textContent = person.external_id
            ? `${person.display_name} (${person.external_id})`
            : person.display_name;
          return option;
        }),
      );
    } catch (err) {
      this.setError(err);
    }
  }

  syncTarget() {
    const existing = this.form.querySelector("input[value=existing]").checked;
    $(this.form, "#enrol-name").disabled = existing;
    $(this.form, "#enrol-person").disabled = !existing;
  }

  async enrol() {
    const request = this.request;
    const button = $(this.form, "button[type=submit]");
    const existing = this.form.querySelector("input[value=existing]").checked;
    const name = $(this.form, "#enrol-name").value.trim();
    if (!existing && !name) {
      this.setStatus("Type the person's name first.");
      return;
    }
    button.disabled = true;
    this.setError(null);
    this.setStatus("Enrolling…");
    let created = null;
    try {
      let person;
      if (existing) {
        person = await api(`/v1/people/${$(this.form, "#enrol-person").value}`);
      } else {
        person = created = await api("/v1/people", { method: "POST", json: { display_name: name } });
      }
      const image = await blobToBase64(this.crop);
      const answer = await api(`/v1/people/${person.id}/faces`, { method: "POST", json: { image_b64: image } });
      if (answer.state === "queued") await waitForJob(answer.status_url); // slow worker: 202 with the job
      this.setStatus(`Enrolled as ${person.display_name}.`);
      this.onEnrolled(person);
      if (request === this.request) await this.identify(request);
    } catch (err) {
      this.setError(err);
      this.setStatus("");
      // A new person without a face would only clutter the list: take it back.
      if (created) await this.removeOrphan(created);
    } finally {
      button.disabled = false;
    }
  }

  async removeOrphan(person) {
    try {
      await api(`/v1/people/${person.id}`, { method: "DELETE" });
    } catch (err) {
      this.setError(new Error(`${describeError(err)} (and ${person.display_name} could not be removed)`));
    }
  }

  setName(text, state) {
    const name = $(this.root, "#face-name");
    name.textContent = text;
    name.dataset.state = state;
  }

  setStatus(text) {
    $(this.root, "#enrol-status").textContent = text;
  }

  setError(err) {
    const banner = $(this.root, "#face-error");
    banner.hidden = !err;
    banner.textContent = err ? describeError(err) : "";
  }
}
