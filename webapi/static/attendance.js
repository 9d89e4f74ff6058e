// Attendance: one job on the frame on screen, with every enrolled person as the roster, so the
// answer lists who is present, who is absent and which faces nobody is known for. CSV is made here.

import { allPeople, describeError, runJob } from "./api.js";
import { renderStage } from "./overlay.js";

const $ = (root, selector) => root.querySelector(selector);

/** One CSV field; a leading = + - @ is defused so a spreadsheet never runs a name as a formula. */
function csvField(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function attendanceCsv(rows) {
  const header = ["status", "name", "external_id", "person_id", "score"];
  const lines = [header, ...rows.map((row) => [row.status, row.name, row.externalId, row.personId, row.score])];
  return `${lines.map((line) => line.map(csvField).join(",")).join("\r\n")}\r\n`;
}

function rowsOf(result) {
  const present = result.present.map((entry) => ({
    status: "present", name: entry.person.display_name, externalId: entry.person.external_id,
    personId: entry.person.id, score: entry.score.toFixed(3),
  }));
  const absent = (result.absent || []).map((person) => ({
    status: "absent", name: person.display_name, externalId: person.external_id, personId: person.id, score: "",
  }));
  const unknown = result.unknown_faces.map((_, index) => ({
    status: "unknown", name: `unknown face ${index + 1}`, externalId: "", personId: "", score: "",
  }));
  const byName = (a, b) => a.name.localeCompare(b.name);
  return [...present.sort(byName), ...absent.sort(byName), ...unknown];
}

export class AttendancePanel {
  constructor(root) {
    this.root = root;
    this.rows = [];
    this.takenAt = null;
    this.request = 0; // the latest click; an older answer is dropped
    $(root, ".close").addEventListener("click", () => {
      this.root.hidden = true;
    });
    $(root, "#attendance-csv").addEventListener("click", () => this.download());
  }

  async take(liveSnapshot) {
    const request = ++this.request;
    this.root.hidden = false;
    if (this.snapshot) this.snapshot.release();
    const snapshot = liveSnapshot.clone(); // the live view releases its frames as new ones arrive
    this.snapshot = snapshot;
    const status = $(this.root, "#attendance-status");
    const error = $(this.root, "#attendance-error");
    error.hidden = true;
    status.textContent = "Taking attendance…";
    $(this.root, "#attendance-csv").disabled = true;
    $(this.root, "#attendance-table tbody").replaceChildren();
    let result;
    try {
      const roster = (await allPeople()).map((person) => person.id);
      result = await runJob("attendance", { image_b64: snapshot.b64, roster });
    } catch (err) {
      if (request !== this.request) return;
      status.textContent = "";
      error.textContent = `Attendance failed: ${describeError(err)}`;
      error.hidden = false;
      return;
    }
    if (request !== this.request) return;
    this.rows = rowsOf(result);
    this.takenAt = snapshot.takenAt;
    const counts = { present: 0, absent: 0, unknown: 0 };
    for (const row of this.rows) counts[row.status] += 1;
    status.textContent = `${snapshot.label} at ${snapshot.takenAt.toLocaleTimeString()}: `
      + `${counts.present} present · ${counts.absent} absent · ${counts.unknown} unknown`;
    this.renderTable();
    const faces = [
      ...result.present.map((entry) => ({ box: entry.face.box, label: entry.person.display_name, kind: "known" })),
      ...result.unknown_faces.map((face, i) => ({ box: face.box, label: `unknown ${i + 1}`, kind: "unknown" })),
    ];
    renderStage($(this.root, ".stage"), snapshot, faces);
    $(this.root, "#attendance-csv").disabled = false;
  }

  renderTable() {
    $(this.root, "#attendance-table tbody").replaceChildren(
      ...this.rows.map((row) => {
        const tr = document.createElement("tr");
        tr.dataset.status = row.status;
        const badge = document.createElement("span");
        badge.className = `badge ${row.status}`;
        badge.textContent = row.status;
        const cells = [badge, row.name, row.externalId || "", row.score];
        for (const value of cells) {
          const td = document.createElement("td");
          if (value instanceof Node) td.append(value);
          else td.textContent = value;
          tr.append(td);
        }
        return tr;
      }),
    );
  }

  download() {
    const blob = new Blob([attendanceCsv(this.rows)], { type: "text/csv;charset=utf-8" });
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    const stamp = this.takenAt.toISOString().slice(0, 19).replaceAll(":", "-");
    link.href = url;
    link.download = `attendance-${stamp}.csv`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }
}
