// Wiring of the page: the API key form, the two views, the camera list and the classroom buttons.

import { api, apiKey, describeError, saveApiKey } from "./api.js";
import { AttendancePanel } from "./attendance.js";
import { CamerasPage } from "./cameras.js";
import { FacePanel } from "./face.js";
import { LiveView } from "./live.js";
import { PeoplePage } from "./people.js";
import { SessionPanel } from "./sessions.js";

const $ = (selector) => document.querySelector(selector);

function showBanner(err) {
  const banner = $("#api-error");
  banner.hidden = !err;
  banner.textContent = err ? describeError(err) : "";
}

async function loadCameras(select) {
  const previous = select.value;
  const { items } = await api("/v1/cameras");
  select.replaceChildren(
    ...items.map((camera) => {
      const option = document.createElement("option");
      option.value = camera.name;
      option.textContent = camera.name;
      return option;
    }),
  );
  if (items.some((camera) => camera.name === previous)) select.value = previous;
  select.disabled = items.length === 0;
  $("#live-toggle").disabled = items.length === 0;
  $("#no-cameras").hidden = items.length > 0;
}

function main() {
  const people = new PeoplePage($("#view-people"));
  const cameraSelect = $("#camera-select");
  const camerasPage = new CamerasPage($("#view-cameras"), () => loadCameras(cameraSelect).catch(showBanner));
  const attendance = new AttendancePanel($("#attendance-panel"));
  const facePanel = new FacePanel($("#face-panel"), () => people.refresh());
  const attendanceButton = $("#attendance-button");
  const sessionPanel = new SessionPanel($("#session-panel"), () => people.refresh());
  $("#session-button").addEventListener("click", () => sessionPanel.open());
  const live = new LiveView(
    {
      stage: $("#stage"),
      state: $("#live-state"),
      latency: $("#latency"),
      faceCount: $("#face-count"),
      updated: $("#updated"),
      error: $("#live-error"),
      empty: $("#stage-empty"),
    },
    (snapshot, face, index) => facePanel.open(snapshot, face, index),
    (snapshot) => {
      attendanceButton.disabled = !snapshot;
    },
  );
  const liveToggle = $("#live-toggle");

  function setLive(on) {
    liveToggle.textContent = on ? "Pause live view" : "Start live view";
    liveToggle.classList.toggle("secondary", on);
    liveToggle.dataset.on = on ? "1" : "";
  }

  liveToggle.addEventListener("click", () => {
    if (liveToggle.dataset.on) {
      live.stop();
      setLive(false);
    } else {
      setLive(true);
      live.start(cameraSelect.value);
    }
  });
  cameraSelect.addEventListener("change", () => {
    if (liveToggle.dataset.on) live.start(cameraSelect.value);
  });
  $("#photo-input").addEventListener("change", (event) => {
    const [file] = event.target.files;
    event.target.value = "";
    if (!file) return;
    setLive(false);
    live.showUpload(file);
  });
  attendanceButton.addEventListener("click", () => {
    if (live.snapshot) attendance.take(live.snapshot);
  });

  for (const tab of document.querySelectorAll("[data-view]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("[data-view]")) {
        const active = other === tab;
        other.classList.toggle("active", active);
        other.setAttribute("aria-selected", String(active));
        $(`#view-${other.dataset.view}`).hidden = !active;
      }
      if (tab.dataset.view === "people") people.refresh();
      if (tab.dataset.view === "cameras") camerasPage.refresh();
    });
  }

  const keyInput = $("#api-key");
  const keyState = $("#key-state");
  function showKeyState(state, text) {
    keyState.dataset.state = state;
    keyState.textContent = text;
  }
  // What the last connect() found (none, ok, refused, error): the page's tests wait for it.
  function connected(outcome) {
    document.body.dataset.connection = outcome;
  }
  async function connect({ forgotten = false } = {}) {
    if (!apiKey() && !forgotten) {
      // A first visit: nothing is wrong yet, so ask for a key instead of showing the API's 401.
      showKeyState("missing", "no key: paste an API key to start");
      showBanner(null);
      connected("none");
      return;
    }
    showKeyState(apiKey() ? "checking" : "missing", apiKey() ? "checking the key…" : "no key");
    try {
      await loadCameras(cameraSelect);
      showBanner(null);
      if (apiKey()) showKeyState("saved", "key saved in this browser");
      connected("ok");
    } catch (err) {
      showBanner(err);
      if (err.status === 401 && apiKey()) {
        // A wrong key is not kept: the next visit starts from the key form, not from an error.
        saveApiKey("");
        showKeyState("refused", `key refused (${err.code}): not saved`);
        connected("refused");
      } else {
        if (apiKey()) showKeyState("saved", "key saved in this browser");
        connected("error");
      }
    }
    if (!$("#view-people").hidden) people.refresh();
    if (!$("#view-cameras").hidden) camerasPage.refresh();
  }
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveApiKey(keyInput.value.trim());
    keyInput.value = "";
    connect();
  });
  $("#key-forget").addEventListener("click", () => {
    saveApiKey("");
    connect({ forgotten: true });
  });
  connect();
}

main();
