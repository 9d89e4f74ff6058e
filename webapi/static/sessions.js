// An attendance session's report on the page: who was present or absent (with the seconds live cameras
// saw them), and the faces nobody enrolled as "unknown person N, seen K times", each with its best face
// and an enrol action that makes it a new person through the people API.

import { api, apiBlob, blobToBase64, describeError, waitForJob } from "./api.js";

const $ = (root, selector) => root.querySelector(selector);

function cell(value) {
  const td = document.createElement("td");
  if (value instanceof Node) td.append(value);
  else td.textContent = value === null || value === undefined ? "" : String(value);
  return td;
}

function seenText(entry) {
  if (entry.seconds_seen !== null && entry.seconds_seen !== undefined) return `${Math.round(entry.seconds_seen)} s`;
  return entry.ticks_seen ? `${entry.ticks_seen} ticks` : "";
}

export class SessionPanel {
  constructor(root, onEnrolled) {
    this.root = root;
    this.onEnrolled = onEnrolled;
    this.faceUrls = [];
    this.request = 0;
    $(root, ".close").addEventListener("click", () => {
      this.root.hidden = true;
    });
    $(root, "#session-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.load();
    });
  }

  open() {
    this.root.hidden = false;
    $(this.root, "#session-id").focus();
  }

  setError(err) {
    const banner = $(this.root, "#session-error");
    banner.hidden = !err;
    banner.textContent = err ? describeError(err) : "";
  }

  async load() {
    const request = ++this.request;
    const id = $(this.root, "#session-id").value.trim();
    const status = $(this.root, "#session-status");
    this.setError(null);
    if (!/^\d+$/.test(id)) {
      status.textContent = "Type the session's number.";
      return;
    }
    status.textContent = "Loading…";
    let report;
    try {
      report = await api(`/v1/attendance-sessions/${id}/report`);
    } catch (err) {
      if (request !== this.request) return;
      status.textContent = "";
      this.setError(err);
      return;
    }
    if (request !== this.request) return;
    const { session } = report;
    status.textContent = `${session.name || `Session ${session.id}`} (${session.status}): `
      + `${report.present.length} present · ${report.absent.length} absent · `
      + `${report.unknown_people.length} unknown`;
    this.renderPeople(report);
    await this.renderUnknown(report.unknown_people, request);
  }

  renderPeople(report) {
    const rows = [
      ...report.present.map((entry) => ["present", entry]),
      ...report.absent.map((entry) => ["absent", entry]),
    ].map(([state, entry]) => {
      const tr = document.createElement("tr");
      tr.dataset.status = state;
      const badge = document.createElement("span");
      badge.className = `badge ${state}`;
      badge.textContent = state;
      tr.append(cell(badge), cell(entry.person.display_name), cell(seenText(entry)), cell(entry.camera));
      return tr;
    });
    $(this.root, "#session-table tbody").replaceChildren(...rows);
  }

  async renderUnknown(unknown, request) {
    for (const url of this.faceUrls) URL.revokeObjectURL(url);
    this.faceUrls = [];
    const items = unknown.map((person) => this.unknownItem(person, request));
    $(this.root, "#session-unknown").replaceChildren(...items);
  }

  unknownItem(person, request) {
    const li = document.createElement("li");
    li.className = "unknown-person";
    li.dataset.number = person.number;
    const img = document.createElement("img");
    img.alt = `Best face of ${person.label}`;
    const label = document.createElement("span");
    label.className = "unknown-label";
    label.textContent = `${person.label}, seen ${person.seen} time${person.seen === 1 ? "" : "s"}`;
    const form = document.createElement("form");
    form.className = "unknown-enrol";
    const name = document.createElement("input");
    name.type = "text";
    name.placeholder = "Name";
    name.setAttribute("aria-label", `Name for ${person.label}`);
    const button = document.createElement("button");
    button.type = "submit";
    button.textContent = "Enrol";
    const status = document.createElement("span");
    status.className = "muted unknown-status";
    status.setAttribute("role", "status");
    form.append(name, button, status);
    li.append(img, label, form);
    let face = null;
    if (person.face_url) {
      apiBlob(person.face_url).then((blob) => {
        if (request !== this.request) return;
        face = blob;
        const url = URL.createObjectURL(blob);
        this.faceUrls.push(url);
        img.src = url;
      }, (err) => {
        status.textContent = `No face: ${describeError(err)}`;
      });
    } else {
      button.disabled = true;
      status.textContent = "No face was kept.";
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const displayName = name.value.trim();
      if (!displayName) {
        status.textContent = "Type the person's name first.";
        return;
      }
      if (!face) return;
      button.disabled = true;
      status.textContent = "Enrolling…";
      let created = null;
      try {
        created = await api("/v1/people", { method: "POST", json: { display_name: displayName } });
        const image = await blobToBase64(face);
        const answer = await api(`/v1/people/${created.id}/faces`, { method: "POST", json: { image_b64: image } });
        if (answer.state === "queued") await waitForJob(answer.status_url);
        status.textContent = `Enrolled as ${created.display_name}.`;
        li.dataset.enrolled = "true";
        name.disabled = true;
        this.onEnrolled(created);
      } catch (err) {
        status.textContent = describeError(err);
        button.disabled = false;
        if (created) {
          // A new person without a face would only clutter the list: take it back.
          try {
            await api(`/v1/people/${created.id}`, { method: "DELETE" });
          } catch (cleanup) {
            status.textContent += ` (and ${created.display_name} could not be removed: ${describeError(cleanup)})`;
          }
        }
      }
    });
    return li;
  }
}
