// A frame with face boxes over it. Boxes are placed in percent of the frame's size, so they stay on
// the faces however the image is scaled by the layout.

/** A frame the page holds: the exact bytes that were (or will be) sent to a job, and their size. */
export class Snapshot {
  constructor(blob, b64, width, height, label) {
    this.blob = blob;
    this.b64 = b64;
    this.width = width;
    this.height = height;
    this.label = label;
    this.url = URL.createObjectURL(blob);
    this.takenAt = new Date();
  }

  /** The same frame with its own object URL, for a panel that outlives the live view's frame. */
  clone() {
    const copy = new Snapshot(this.blob, this.b64, this.width, this.height, this.label);
    copy.takenAt = this.takenAt;
    return copy;
  }

  release() {
    URL.revokeObjectURL(this.url);
  }
}

function percent(value, total) {
  return `${((100 * value) / total).toFixed(3)}%`;
}

/**
 * Show ``snapshot`` in the stage element (an <img> and a .boxes layer inside it) with one box per
 * face. ``faces`` items: {box: [x1, y1, x2, y2], label?: string, kind?: "known"|"unknown", trackId?: number,
 * color?: a CSS colour that stays with a live track}.
 * ``onPick(index)`` makes boxes clickable buttons.
 */
export function renderStage(stage, snapshot, faces, onPick = null) {
  const img = stage.querySelector("img");
  const layer = stage.querySelector(".boxes");
  if (img.getAttribute("src") !== snapshot.url) img.src = snapshot.url;
  layer.replaceChildren(
    ...faces.map((face, index) => {
      const [x1, y1, x2, y2] = face.box;
      const box = document.createElement(onPick ? "button" : "div");
      box.className = `face-box ${face.kind || ""}`.trim();
      box.dataset.index = String(index);
      if (face.trackId !== undefined) box.dataset.track = String(face.trackId);
      if (face.color) box.style.setProperty("--box-color", face.color);
      box.style.left = percent(Math.max(0, x1), snapshot.width);
      box.style.top = percent(Math.max(0, y1), snapshot.height);
      box.style.width = percent(Math.min(x2, snapshot.width) - Math.max(0, x1), snapshot.width);
      box.style.height = percent(Math.min(y2, snapshot.height) - Math.max(0, y1), snapshot.height);
      if (onPick) {
        box.type = "button";
        box.title = "Identify this face";
        box.setAttribute("aria-label", `Face ${index + 1}`);
        box.addEventListener("click", () => onPick(index));
      }
      if (face.label) {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.textContent = face.label;
        box.append(tag);
      }
      return box;
    }),
  );
  stage.classList.add("has-frame");
}

export function markSelected(stage, index) {
  for (const box of stage.querySelectorAll(".face-box")) {
    box.classList.toggle("selected", box.dataset.index === String(index));
  }
}

/**
 * The face region of ``snapshot`` with a margin around the box, as a JPEG Blob: an image holding
 * exactly this one face, which is what enrolment needs.
 */
export async function cropFace(snapshot, box, margin = 0.45) {
  const image = await createImageBitmap(snapshot.blob);
  const [x1, y1, x2, y2] = box;
  const padX = (x2 - x1) * margin;
  const padY = (y2 - y1) * margin;
  const left = Math.max(0, Math.floor(x1 - padX));
  const top = Math.max(0, Math.floor(y1 - padY));
  const right = Math.min(image.width, Math.ceil(x2 + padX));
  const bottom = Math.min(image.height, Math.ceil(y2 + padY));
  const canvas = document.createElement("canvas");
  canvas.width = right - left;
  canvas.height = bottom - top;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff"; // JPEG has no alpha: transparent PNG pixels become white, not black
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(image, left, top, canvas.width, canvas.height, 0, 0, canvas.width, canvas.height);
  image.close();
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
}
