// The SALOVA web page: upload, follow indexing (server-sent events), ask, draw the score timeline.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { id: null, segments: [], duration: 0 };
const MIN_BAR = 12; // percent height of the lowest-scoring segment's bar, so every segment stays clickable

function apiHeaders(extra = {}) {
  const key = $("api-key").value.trim();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: apiHeaders(options.headers || {}) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
  return body;
}

function clock(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(r).padStart(2, "0")}`;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function setProgress(fraction) {
  $("progress-bar").style.width = `${Math.round(100 * Math.max(0, Math.min(1, fraction || 0)))}%`;
}

function seek(seconds) {
  const player = $("player");
  player.currentTime = seconds;
  $("cursor").style.left = state.duration ? `${(100 * seconds) / state.duration}%` : "0";
}

function drawTimeline(timeline) {
  const box = $("timeline");
  box.querySelectorAll(".segment").forEach((node) => node.remove());
  if (!timeline.length) return;
  const scores = timeline.map((s) => (s.score === undefined ? 0 : s.score));
  const low = Math.min(...scores), high = Math.max(...scores);
  const duration = state.duration || timeline[timeline.length - 1].end;
  for (const seg of timeline) {
    const bar = document.createElement("div");
    const share = high > low && seg.score !== undefined ? (seg.score - low) / (high - low) : 0;
    bar.className = "segment" + (seg.used ? " used" : "");
    bar.style.left = `${(100 * seg.start) / duration}%`;
    bar.style.width = `${(100 * (seg.end - seg.start)) / duration}%`;
    bar.style.height = `${MIN_BAR + (100 - MIN_BAR) * share}%`;
    bar.dataset.index = seg.index;
    bar.dataset.start = seg.start;
    bar.dataset.end = seg.end;
    const score = seg.score === undefined ? "" : `, score ${seg.score.toFixed(3)}`;
    bar.title = `segment ${seg.index}: ${clock(seg.start)}–${clock(seg.end)}${score}${seg.used ? " (used)" : ""}`;
    bar.addEventListener("click", () => seek(seg.start));
    box.appendChild(bar);
  }
}

async function showVideo(id, localFile) {
  state.id = id;
  $("ask").disabled = true;
  $("answer-box").hidden = true;
  const player = $("player");
  if (localFile) {
    player.src = URL.createObjectURL(localFile);
  } else if (!$("api-key").value.trim()) {
    player.src = `/v1/videos/${id}/file`;
  } else {
    const response = await fetch(`/v1/videos/${id}/file`, { headers: apiHeaders() });
    player.src = URL.createObjectURL(await response.blob());
  }
  await follow(id);
}

async function follow(id) {
  // fetch() rather than EventSource, so that the API key header can be sent.
  const response = await fetch(`/v1/videos/${id}/events`, { headers: apiHeaders() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    setStatus(body.error ? body.error.message : `HTTP ${response.status}`, true);
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data && (await onProgress(JSON.parse(data)))) return;
    }
  }
}

async function onProgress(job) {
  if (job.id !== state.id) return true;
  if (job.status === "failed") {
    setStatus(`Indexing failed: ${job.error}`, true);
    return true;
  }
  if (job.status === "ready") {
    const video = await api(`/v1/videos/${job.id}`);
    state.segments = video.segments;
    state.duration = video.duration;
    setProgress(1);
    setStatus(`Ready: ${video.filename}, ${video.segments.length} segments, ${clock(video.duration)}.`);
    drawTimeline(video.segments);
    $("ask").disabled = false;
    await loadVideos();
    $("videos").value = job.id;
    return true;
  }
  setProgress(job.progress);
  const share = job.progress === null ? "" : ` ${Math.round(100 * job.progress)}%`;
  setStatus(`Indexing (${job.stage || job.status})${share}, ${job.segments} segments so far…`);
  return false;
}

async function loadVideos() {
  const select = $("videos");
  const list = await api("/v1/videos").catch(() => ({ data: [] }));
  select.length = 1;
  for (const video of list.data) {
    const option = new Option(`${video.filename} (${video.status})`, video.id);
    select.add(option);
  }
}

$("upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  $("upload").disabled = true;
  setProgress(0);
  setStatus(`Uploading ${file.name}…`);
  const request = new XMLHttpRequest();
  request.open("POST", `/v1/videos?filename=${encodeURIComponent(file.name)}`);
  for (const [name, value] of Object.entries(apiHeaders({ "Content-Type": file.type || "application/octet-stream" }))) {
    request.setRequestHeader(name, value);
  }
  request.upload.onprogress = (e) => e.lengthComputable && setProgress(e.loaded / e.total);
  request.onload = async () => {
    $("upload").disabled = false;
    const body = JSON.parse(request.responseText || "{}");
    if (request.status !== 202) {
      setStatus(body.error ? body.error.message : `HTTP ${request.status}`, true);
      return;
    }
    setProgress(0);
    setStatus("Uploaded; indexing…");
    await loadVideos();
    $("videos").value = body.id;
    await showVideo(body.id, file);
  };
  request.onerror = () => {
    $("upload").disabled = false;
    setStatus("The upload failed (network error).", true);
  };
  request.send(file);
});

$("videos").addEventListener("change", () => {
  const id = $("videos").value;
  if (id) showVideo(id, null).catch((e) => setStatus(e.message, true));
});

$("ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question || !state.id) return;
  $("ask").disabled = true;
  $("answer").textContent = "Thinking…";
  $("answer-box").hidden = false;
  try {
    const topK = parseInt($("top-k").value, 10) || undefined;
    const result = await api(`/v1/videos/${state.id}/ask`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question, top_k: topK }),
    });
    $("answer").textContent = result.answer || "(empty answer)";
    $("answer-pipeline").textContent = result.pipeline;
    const t = result.timings;
    $("timings").textContent = `routed in ${t.route.toFixed(2)} s, generated in ${t.generate.toFixed(2)} s`;
    drawTimeline(result.timeline);
    const used = $("used");
    used.replaceChildren();
    for (const seg of result.segments) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${clock(seg.start)}–${clock(seg.end)}`;
      button.addEventListener("click", () => seek(seg.start));
      item.append(button, ` score ${seg.score.toFixed(3)}`);
      used.appendChild(item);
    }
  } catch (error) {
    $("answer").textContent = `Error: ${error.message}`;
  } finally {
    $("ask").disabled = false;
  }
});

$("player").addEventListener("timeupdate", () => {
  const player = $("player");
  const duration = state.duration || player.duration;
  if (duration) $("cursor").style.left = `${(100 * player.currentTime) / duration}%`;
});

api("/v1/health")
  .then((health) => { $("pipeline").textContent = health.pipeline; })
  .catch(() => { $("pipeline").textContent = "API key needed"; });
loadVideos();
