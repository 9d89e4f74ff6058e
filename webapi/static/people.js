// The people page: list and search the facebank, add and remove people, see and manage each
// person's enrolled photos (fetched with the API key and shown through blob URLs).

import { api, apiBlob, describeError } from "./api.js";
import { button, confirmButton } from "./controls.js";

const $ = (root, selector) => root.querySelector(selector);
const SEARCH_DELAY_MS = 250;

export class PeoplePage {
  constructor(root) {
    this.root = root;
    this.query = "";
    this.searchTimer = null;
    this.listRequest = 0;
    this.selected = null;
    this.faceUrls = [];
    $(root, "#people-search").addEventListener("input", (event) => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => {
        this.query = event.target.value.trim();
        this.refresh();
      }, SEARCH_DELAY_MS);
    });
    $(root, "#person-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.add();
    });
    $(root, "#person-photo").addEventListener("change", (event) => {
      const [file] = event.target.files;
      event.target.value = "";
      if (file) this.addPhoto(file);
    });
    $(root, "#person-detail .close").addEventListener("click", () => this.closeDetail());
  }

  setError(err) {
    const banner = $(this.root, "#people-error");
    banner.hidden = !err;
    banner.textContent = err ? describeError(err) : "";
  }

  async refresh() {
    const request = ++this.listRequest;
    const query = this.query ? `&q=${encodeURIComponent(this.query)}` : "";
    let page;
    try {
      page = await api(`/v1/people?limit=500${query}`);
    } catch (err) {
      if (request === this.listRequest) this.setError(err);
      return;
    }
    if (request !== this.listRequest) return;
    const shown = page.items.length < page.total ? ` (first ${page.items.length} shown)` : "";
    $(this.root, "#people-count").textContent = `${page.total} in all${shown}`;
    $(this.root, "#people-table tbody").replaceChildren(...page.items.map((person) => this.row(person)));
    $(this.root, "#people-empty").hidden = page.items.length > 0;
  }

  row(person) {
    const tr = document.createElement("tr");
    tr.dataset.personId = String(person.id);
    const name = document.createElement("td");
    name.className = "name";
    name.textContent = person.display_name;
    const external = document.createElement("td");
    external.textContent = person.external_id || "—";
    const faces = document.createElement("td");
    faces.className = "num";
    faces.textContent = String(person.face_count);
    const actions = document.createElement("td");
    actions.className = "actions";
    actions.append(
      button("Faces", "small secondary", () => this.openDetail(person)),
      confirmButton("Remove", () => this.remove(person)),
    );
    tr.append(name, external, faces, actions);
    return tr;
  }

  async add() {
    const form = $(this.root, "#person-form");
    const name = $(form, "#person-name").value.trim();
    const external = $(form, "#person-external").value.trim();
    const body = { display_name: name };
    if (external) body.external_id = external;
    this.setError(null);
    try {
      const person = await api("/v1/people", { method: "POST", json: body });
      form.reset();
      await this.refresh();
      await this.openDetail(person);
    } catch (err) {
      this.setError(err);
    }
  }

  async remove(person) {
    this.setError(null);
    try {
      await api(`/v1/people/${person.id}`, { method: "DELETE" });
      if (this.selected && this.selected.id === person.id) this.closeDetail();
      await this.refresh();
    } catch (err) {
      this.setError(err);
    }
  }

  closeDetail() {
    this.selected = null;
    $(this.root, "#person-detail").hidden = true;
    this.releaseFaces();
  }

  releaseFaces() {
    for (const url of this.faceUrls) URL.revokeObjectURL(url);
    this.faceUrls = [];
  }

  async openDetail(person) {
    this.setError(null);
    this.selected = person;
    const detail = $(this.root, "#person-detail");
    detail.hidden = false;
    $(detail, "#person-detail-name").textContent = person.display_name;
    $(detail, "#person-detail-meta").textContent = person.external_id ? `external id ${person.external_id}` : "";
    await this.loadFaces();
  }

  async loadFaces() {
    const person = this.selected;
    const grid = $(this.root, "#person-faces");
    const status = $(this.root, "#person-faces-status");
    status.textContent = "Loading photos…";
    let faces;
    try {
      faces = (await api(`/v1/people/${person.id}/faces`)).items;
    } catch (err) {
      status.textContent = "";
      this.setError(err);
      return;
    }
    if (this.selected !== person) return;
    this.releaseFaces();
    grid.replaceChildren(...faces.map((face) => this.faceTile(face)));
    status.textContent = faces.length ? `${faces.length} enrolled photo${faces.length === 1 ? "" : "s"}`
      : "No photos yet: add one below, or enrol a face from the classroom view.";
    await Promise.all(faces.map((face) => this.loadImage(face)));
  }

  faceTile(face) {
    const figure = document.createElement("figure");
    figure.className = "face-tile";
    figure.dataset.faceId = String(face.id);
    const img = document.createElement("img");
    img.alt = `Enrolled photo ${face.id}`;
    const [x1, y1, x2, y2] = face.box; // keep the enrolled face in view when the tile crops the photo
    img.style.objectPosition = `${(50 * (x1 + x2)) / face.width}% ${(50 * (y1 + y2)) / face.height}%`;
    const caption = document.createElement("figcaption");
    caption.textContent = `${face.width}×${face.height}`;
    caption.append(confirmButton("Remove", () => this.removeFace(face)));
    figure.append(img, caption);
    return figure;
  }

  async loadImage(face) {
    const img = this.root.querySelector(`.face-tile[data-face-id="${face.id}"] img`);
    try {
      const url = URL.createObjectURL(await apiBlob(face.image_url));
      this.faceUrls.push(url);
      img.src = url;
    } catch (err) {
      img.alt = `photo ${face.id} could not be loaded: ${describeError(err)}`;
      this.setError(err);
    }
  }

  async removeFace(face) {
    this.setError(null);
    try {
      await api(`/v1/people/${face.person_id}/faces/${face.id}`, { method: "DELETE" });
      await Promise.all([this.loadFaces(), this.refresh()]);
    } catch (err) {
      this.setError(err);
    }
  }

  async addPhoto(file) {
    const person = this.selected;
    const status = $(this.root, "#person-faces-status");
    status.textContent = `Enrolling ${file.name}…`;
    const form = new FormData();
    form.append("image", file);
    this.setError(null);
    try {
      await api(`/v1/people/${person.id}/faces`, { method: "POST", form });
    } catch (err) {
      this.setError(err);
    }
    await Promise.all([this.loadFaces(), this.refresh()]);
  }
}
