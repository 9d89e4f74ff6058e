// The cameras page: the cameras jobs and the live view can name (the registry, and ROLLCALL_UI_CAMERAS read
// only). An admin key adds, tests and removes registered cameras; a jobs key only sees them. A password is
// sent once, when the camera is added, and never comes back: the list says "password" instead.

import { api, describeError } from "./api.js";
import { button, confirmButton } from "./controls.js";

const $ = (root, selector) => root.querySelector(selector);
const SOURCES = { registry: "registry", settings: "setting" }; // settings: ROLLCALL_UI_CAMERAS, read only

function cell(text, className = "") {
  const td = document.createElement("td");
  td.className = className;
  td.textContent = text;
  return td;
}

function login(camera) {
  if (camera.has_password) return camera.username ? `${camera.username} · password` : "password";
  return camera.username || "—";
}

export class CamerasPage {
  /** ``onChange()`` runs after a camera was added or removed (the classroom's camera list follows). */
  constructor(root, onChange) {
    this.root = root;
    this.onChange = onChange;
    this.listRequest = 0;
    $(root, "#camera-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    $(root, "#camera-test .close").addEventListener("click", () => {
      $(root, "#camera-test").hidden = true;
    });
  }

  setError(err) {
    const banner = $(this.root, "#cameras-error");
    banner.hidden = !err;
    banner.textContent = err ? describeError(err) : "";
  }

  async refresh() {
    const request = ++this.listRequest;
    let listing;
    try {
      listing = await api("/v1/cameras");
    } catch (err) {
      if (request === this.listRequest) this.setError(err);
      return;
    }
    if (request !== this.listRequest) return;
    this.canManage = listing.can_manage;
    $(this.root, "#camera-add").hidden = !listing.can_manage;
    $(this.root, "#cameras-admin-hint").hidden = listing.can_manage;
    $(this.root, "#cameras-count").textContent = `${listing.items.length} in all`;
    $(this.root, "#cameras-table tbody").replaceChildren(...listing.items.map((camera) => this.row(camera)));
    $(this.root, "#cameras-empty").hidden = listing.items.length > 0;
  }

  row(camera) {
    const tr = document.createElement("tr");
    tr.dataset.camera = camera.name;
    const actions = document.createElement("td");
    actions.className = "actions";
    if (this.canManage) {
      actions.append(button("Test", "small secondary", () => this.test(camera)));
      if (camera.source === "registry") actions.append(confirmButton("Remove", () => this.remove(camera)));
    }
    const source = cell(SOURCES[camera.source] || camera.source);
    if (camera.source === "settings") source.title = "ROLLCALL_UI_CAMERAS: change the setting to change it";
    tr.append(cell(camera.name, "name"), cell(camera.label || "—"), cell(login(camera)), source, actions);
    return tr;
  }

  async add() {
    const form = $(this.root, "#camera-form");
    const field = (id) => $(form, id).value.trim();
    const body = { name: field("#camera-name"), url: field("#camera-url") };
    const optional = {
      username: field("#camera-username"),
      password: $(form, "#camera-password").value, // as typed: spaces may belong to it
      label: field("#camera-label"),
      small_faces: field("#camera-small-faces"),
    };
    for (const [key, value] of Object.entries(optional)) if (value) body[key] = value;
    this.setError(null);
    try {
      await api("/v1/cameras", { method: "POST", json: body });
      form.reset();
      await this.refresh();
      this.onChange();
    } catch (err) {
      this.setError(err);
    }
  }

  async remove(camera) {
    this.setError(null);
    try {
      await api(`/v1/cameras/${encodeURIComponent(camera.name)}`, { method: "DELETE" });
      await this.refresh();
      this.onChange();
    } catch (err) {
      this.setError(err);
    }
  }

  async test(camera) {
    const panel = $(this.root, "#camera-test");
    panel.hidden = false;
    panel.dataset.state = "busy";
    $(panel, "#camera-test-title").textContent = `Testing ${camera.name}…`;
    $(panel, "#camera-test-result").replaceChildren();
    this.setError(null);
    let report;
    try {
      report = await api(`/v1/cameras/${encodeURIComponent(camera.name)}/test`, { method: "POST" });
    } catch (err) {
      panel.dataset.state = "failed";
      $(panel, "#camera-test-title").textContent = `${camera.name}: the test could not run`;
      this.setError(err);
      return;
    }
    panel.dataset.state = report.ok ? "ok" : "failed";
    $(panel, "#camera-test-title").textContent = report.ok
      ? `${camera.name}: a frame arrived`
      : `${camera.name}: ${report.error_code}`;
    const seconds = (value) => (value === null ? "—" : `${value.toFixed(2)} s`);
    const facts = [
      ["Result", report.ok ? "frame received" : `${report.error_code}: ${report.error_message}`],
      ["Reachable", report.reachable ? "yes" : "no"],
      ["Protocol", report.protocol + (report.codec ? ` (${report.codec})` : "")],
      ["Authentication", report.auth],
      ["TLS", report.tls],
      ["Round trips", String(report.round_trips)],
      ["First frame", seconds(report.first_frame_s)],
      ["Frame", report.ok ? `${report.width}×${report.height}, ${report.bytes} bytes, ${report.content_type}` : "—"],
    ];
    $(panel, "#camera-test-result").replaceChildren(
      ...facts.flatMap(([term, value]) => {
        const dt = document.createElement("dt");
        dt.textContent = term;
        const dd = document.createElement("dd");
        dd.textContent = value;
        dd.dataset.fact = term.toLowerCase().replace(" ", "-");
        return [dt, dd];
      }),
    );
  }
}
