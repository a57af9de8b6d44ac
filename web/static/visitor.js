// The visitor page: photograph a painting, send it to POST /api/predict, show the matches and
// their details. Views are switched by the URL hash so the phone's back button works:
//   #/                         camera and file picker
//   #/results                  the paintings that match the last photo
//   #/painting/ID              one painting, with "more from this museum"
//   #/painting/ID/from-museum  one painting opened from that list, so the list is not repeated
// Server text is always inserted with textContent, never as HTML.
"use strict";

const RESULTS_KEY = "pain.results";
const MESSAGES = {
  noMatch: "No painting of the collection matches this photo. Stand in front of the painting, fit it inside the frame and try again.",
  busy: "The server is busy right now. Wait a few seconds and try again.",
  offline: "The server could not be reached. Check the connection and try again.",
  noCamera: "The camera is not available here. Use “Choose a photo” instead.",
};

const $ = (id) => document.getElementById(id);
let stream = null;
let results = loadResults();

function loadResults() {
  try {
    return JSON.parse(sessionStorage.getItem(RESULTS_KEY) || "[]");
  } catch (error) {
    return [];
  }
}

function saveResults(list) {
  results = list;
  try {
    sessionStorage.setItem(RESULTS_KEY, JSON.stringify(list));
  } catch (error) {
    // Private browsing may refuse storage; the results then last until the page reloads.
  }
}

function showView(id) {
  for (const view of document.querySelectorAll(".view")) {
    view.hidden = view.id !== id;
  }
  window.scrollTo(0, 0);
}

function setMessage(element, text, isError) {
  element.textContent = text;
  element.classList.toggle("error", Boolean(isError));
}

// --- camera ---------------------------------------------------------------------------

async function startCamera() {
  const note = $("camera-note");
  if (stream) return;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    note.textContent = MESSAGES.noCamera;
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1920 }, height: { ideal: 1440 } },
      audio: false,
    });
    const video = $("camera");
    video.srcObject = stream;
    await video.play();
    note.textContent = "";
    $("capture").disabled = false;
  } catch (error) {
    stream = null;
    note.textContent = MESSAGES.noCamera;
  }
}

function stopCamera() {
  if (!stream) return;
  for (const track of stream.getTracks()) track.stop();
  stream = null;
  $("capture").disabled = true;
}

function captureFrame() {
  const video = $("camera");
  if (!video.videoWidth) return Promise.resolve(null);
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
}

// --- prediction -----------------------------------------------------------------------

function setBusy(busy, text) {
  $("progress").hidden = !busy;
  $("capture").disabled = busy || !stream;
  $("file").disabled = busy;
  if (text) $("progress-text").textContent = text;
}

function predict(blob, filename) {
  const message = $("message");
  setMessage(message, "");
  const bar = $("progress-bar");
  bar.removeAttribute("value");
  setBusy(true, "Sending the photo…");

  const form = new FormData();
  form.append("payload", blob, filename);
  const request = new XMLHttpRequest();
  request.open("POST", "/api/predict");
  request.responseType = "json";
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) {
      bar.max = event.total;
      bar.value = event.loaded;
    }
  };
  request.upload.onload = () => {
    bar.removeAttribute("value");
    $("progress-text").textContent = "Recognising the painting…";
  };
  request.onerror = () => {
    setBusy(false);
    setMessage(message, MESSAGES.offline, true);
  };
  request.onload = () => {
    setBusy(false);
    const body = request.response;
    if (request.status === 200 && Array.isArray(body)) {
      if (body.length === 0) {
        setMessage(message, MESSAGES.noMatch, true);
        return;
      }
      saveResults(body);
      location.hash = "#/results";
    } else if (request.status === 503) {
      setMessage(message, MESSAGES.busy, true);
    } else {
      const detail = body && body.error ? body.error : `the server responded with status ${request.status}`;
      setMessage(message, `The photo could not be used: ${detail}`, true);
    }
  };
  request.send(form);
}

// --- rendering ------------------------------------------------------------------------

function card(painting, href) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = href;
  const image = document.createElement("img");
  image.src = painting.image_url;
  image.alt = "";
  image.loading = "lazy";
  const text = document.createElement("span");
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = painting.name;
  const meta = document.createElement("span");
  meta.className = "meta";
  meta.textContent = [painting.artist, painting.year].filter(Boolean).join(", ");
  text.append(title, meta);
  link.append(image, text);
  item.append(link);
  return item;
}

function renderResults() {
  const list = $("results");
  list.replaceChildren(...results.map((p) => card(p, `#/painting/${encodeURIComponent(p.id)}`)));
  showView("results-view");
}

async function fetchJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(body && body.error ? body.error : `the server responded with status ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function renderPainting(id, fromMuseumList) {
  showView("painting-view");
  stopSpeaking();
  const message = $("painting-message");
  setMessage(message, "Loading…");
  $("more").hidden = true;
  let painting;
  try {
    painting = await fetchJson(`/api/paintings/${encodeURIComponent(id)}`);
  } catch (error) {
    setMessage(message, error.status === 404 ? "This painting is no longer in the collection." : error.message, true);
    return;
  }
  setMessage(message, "");
  $("painting-image").src = painting.image_url;
  $("painting-image").alt = painting.name;
  $("painting-title").textContent = painting.name;
  $("painting-artist").textContent = painting.artist || "unknown";
  $("painting-year").textContent = painting.year || "unknown";
  $("painting-medium").textContent = painting.medium || "unknown";
  $("painting-museum").textContent = (await museumName(painting.museum)) || painting.museum;
  $("painting-description").textContent = painting.description;
  $("speak").hidden = !("speechSynthesis" in window) || !painting.description;
  $("speak").dataset.text = painting.description;

  if (fromMuseumList) return;
  try {
    const others = (await fetchJson(`/api/list-museum/${encodeURIComponent(painting.museum)}`)).filter(
      (p) => p.id !== painting.id,
    );
    $("more-list").replaceChildren(
      ...others.map((p) => card(p, `#/painting/${encodeURIComponent(p.id)}/from-museum`)),
    );
    $("more").hidden = others.length === 0;
  } catch (error) {
    $("more").hidden = true;
  }
}

let museumNames = null;

async function museumName(id) {
  if (museumNames === null) {
    try {
      museumNames = new Map((await fetchJson("/api/museums")).map((m) => [m.id, m.name]));
    } catch (error) {
      return null; // the id is shown instead
    }
  }
  return museumNames.get(id);
}

// --- speech ---------------------------------------------------------------------------

function stopSpeaking() {
  if ("speechSynthesis" in window) window.speechSynthesis.cancel();
  $("speak").textContent = "Read description aloud";
}

function toggleSpeech() {
  const synth = window.speechSynthesis;
  if (synth.speaking) {
    stopSpeaking();
    return;
  }
  const utterance = new SpeechSynthesisUtterance($("speak").dataset.text || "");
  utterance.lang = document.documentElement.lang || "en";
  utterance.onend = () => ($("speak").textContent = "Read description aloud");
  $("speak").textContent = "Stop reading";
  synth.speak(utterance);
}

// --- routing --------------------------------------------------------------------------

function route() {
  const hash = location.hash || "#/";
  const painting = hash.match(/^#\/painting\/([^/]+)(\/from-museum)?$/);
  if (painting) {
    stopCamera();
    renderPainting(decodeURIComponent(painting[1]), Boolean(painting[2]));
  } else if (hash === "#/results" && results.length) {
    stopCamera();
    stopSpeaking();
    renderResults();
  } else {
    stopSpeaking();
    showView("capture-view");
    startCamera();
  }
}

function init() {
  $("capture").addEventListener("click", async () => {
    const blob = await captureFrame();
    if (blob) predict(blob, "camera.jpg");
  });
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) predict(file, file.name);
  });
  for (const button of document.querySelectorAll("[data-go]")) {
    button.addEventListener("click", () => (location.hash = button.dataset.go));
  }
  $("painting-back").addEventListener("click", () => {
    if (history.length > 1) history.back();
    else location.hash = results.length ? "#/results" : "#/";
  });
  $("speak").addEventListener("click", toggleSpeech);
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", init);
