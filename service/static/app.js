// spikedet web page: choose, drop or paste an image; POST it to /v1/detect; draw the boxes on a canvas and
// show the energy report. Plain JavaScript, no libraries, nothing loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const page = {
  limits: null,
  file: null,
  bitmap: null,
  busy: false,
  again: false,
  ready: false,
};

function setStatus(text, state) {
  const el = $("status");
  el.textContent = text;
  el.dataset.state = state;
}

function headers() {
  const h = {};
  const key = $("key").value.trim();
  if (page.limits && page.limits.api_key_required && key) h[page.limits.api_key_header] = key;
  return h;
}

function bytes(n) {
  if (n >= 1024 * 1024) return (n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0) + " MiB";
  if (n >= 1024) return (n / 1024).toFixed(0) + " KiB";
  return n + " bytes";
}

function mJ(x) {
  if (x === null || x === undefined) return "n/a";
  return x >= 100 ? x.toFixed(0) + " mJ" : x >= 1 ? x.toFixed(2) + " mJ" : x.toFixed(3) + " mJ";
}

function big(x) {
  if (x === null || x === undefined) return "n/a";
  if (x >= 1e9) return (x / 1e9).toFixed(2) + " G";
  if (x >= 1e6) return (x / 1e6).toFixed(1) + " M";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + " k";
  return String(Math.round(x));
}

function color(classId) {
  return `hsl(${(classId * 47) % 360}, 85%, 45%)`;
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch (e) { /* not JSON */ }
  return `HTTP ${response.status}`;
}

// -- start-up: limits, readiness, model ------------------------------------------------------------

async function loadLimits() {
  const r = await fetch("/v1/limits");
  page.limits = await r.json();
  const L = page.limits;
  $("limits").textContent = ` · up to ${bytes(L.max_upload_bytes)} and ${(L.max_pixels / 1e6).toFixed(0)} megapixels`;
  $("conf").value = L.conf.default;
  $("iou").value = L.iou.default;
  const sizes = new Set([160, 224, 320, 416, 480, 640, 800, 960, 1280, L.imgsz.default]);
  const select = $("imgsz");
  [...sizes].filter((s) => s >= L.imgsz.min && s <= L.imgsz.max && s % 32 === 0).sort((a, b) => a - b)
    .forEach((s) => {
      const o = document.createElement("option");
      o.value = s;
      o.textContent = s + " px";
      if (s === L.imgsz.default) o.selected = true;
      select.appendChild(o);
    });
  $("key-row").hidden = !L.api_key_required;
  showControls();
}

async function waitReady() {
  for (;;) {
    try {
      const r = await fetch("/readyz");
      if (r.ok) break;
      const text = await errorText(r);
      if (!/loading/.test(text)) {
        setStatus(text, "error");
        return;
      }
    } catch (e) { /* server restarting */ }
    await new Promise((res) => setTimeout(res, 700));
  }
  page.ready = true;
  await loadModel();
  if (page.file) detect(); else setStatus("Ready: choose, drop or paste an image.", "ready");
}

async function loadModel() {
  const r = await fetch("/v1/model", { headers: headers() });
  if (!r.ok) {
    $("model").textContent = "model: " + (await errorText(r));
    return;
  }
  const m = await r.json();
  const n = m.neuron || {};
  const neurons = (n.types || []).join(", ") || "no spiking neurons";
  const arch = m.architecture || "model";
  const scale = m.scale && !arch.endsWith(m.scale) ? "-" + m.scale : ""; // yolov5n, not yolov5n-n
  $("model").textContent = `${arch}${scale} (${m.weights || "?"}) · `
    + `${neurons}${n.T ? ", T=" + n.T : ""} · ${(m.parameters / 1e6).toFixed(2)} M parameters · ${m.classes} classes`;
}

function showControls() {
  $("conf-out").value = Number($("conf").value).toFixed(2);
  $("iou-out").value = Number($("iou").value).toFixed(2);
}

// -- choosing an image -----------------------------------------------------------------------------

async function choose(file) {
  if (!file) return;
  page.file = file;
  page.bitmap = null;
  try {
    page.bitmap = await createImageBitmap(file); // EXIF orientation applied, as the server does
  } catch (e) {
    page.bitmap = null; // the browser cannot show it; the server still says what is wrong with it
  }
  draw(null);
  if (page.ready) detect(); else setStatus("Waiting for the model…", "loading");
}

// -- detection -------------------------------------------------------------------------------------

async function detect() {
  if (!page.file) return;
  if (page.busy) {
    page.again = true; // run once more with the latest settings when this one is done
    return;
  }
  page.busy = true;
  setStatus(`Detecting objects in ${page.file.name || "the image"}…`, "busy");
  const query = new URLSearchParams({ conf: $("conf").value, iou: $("iou").value, imgsz: $("imgsz").value });
  const form = new FormData();
  form.append("image", page.file, page.file.name || "image");
  try {
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      const r = await fetch("/v1/detect?" + query, { method: "POST", body: form, headers: headers() });
      if (r.status === 503 && attempt < 5 && r.headers.get("Retry-After")) {
        setStatus("The server is busy; retrying…", "busy");
        await new Promise((res) => setTimeout(res, 1000 * Number(r.headers.get("Retry-After") || 1)));
        continue;
      }
      if (!r.ok) {
        const text = await errorText(r);
        draw(null);
        hideResults();
        setStatus(`Error ${r.status}: ${text}`, "error");
        break;
      }
      const result = await r.json();
      const ms = performance.now() - started;
      render(result, ms);
      const n = result.detections.length;
      setStatus(`Done: ${n} object${n === 1 ? "" : "s"} found in ${Math.round(ms)} ms.`, "done");
      break;
    }
  } catch (e) {
    setStatus("Could not reach the server: " + e.message, "error");
  } finally {
    page.busy = false;
    if (page.again) {
      page.again = false;
      detect();
    }
  }
}

function hideResults() {
  $("energy").hidden = true;
  $("results").hidden = true;
}

// -- drawing ---------------------------------------------------------------------------------------

function draw(result) {
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const bmp = page.bitmap;
  const w = bmp ? bmp.width : result ? result.image.width : 0;
  const h = bmp ? bmp.height : result ? result.image.height : 0;
  $("stage").hidden = !(w && h);
  if (!(w && h)) return;
  canvas.width = w;
  canvas.height = h;
  if (bmp) ctx.drawImage(bmp, 0, 0);
  else {
    ctx.fillStyle = "#e6e9ef";
    ctx.fillRect(0, 0, w, h);
  }
  $("caption").textContent = `${page.file ? page.file.name + " · " : ""}${w} × ${h} px`;
  if (!result) return;
  const sx = w / result.image.width;
  const sy = h / result.image.height;
  const line = Math.max(2, Math.round(Math.max(w, h) / 400));
  const size = Math.max(12, Math.round(Math.max(w, h) / 55));
  ctx.font = `600 ${size}px system-ui, sans-serif`;
  ctx.textBaseline = "top";
  for (const d of result.detections) {
    const c = color(d.class_id);
    const x1 = d.box.x1 * sx, y1 = d.box.y1 * sy, x2 = d.box.x2 * sx, y2 = d.box.y2 * sy;
    ctx.lineWidth = line;
    ctx.strokeStyle = c;
    ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    const label = `${d.name} ${d.confidence.toFixed(2)}`;
    const tw = ctx.measureText(label).width + size * 0.6;
    const th = size * 1.35;
    const ty = y1 - th >= 0 ? y1 - th : y1; // above the box, or inside it at the top edge
    const tx = Math.max(0, Math.min(x1 - line / 2, w - tw)); // kept inside the image
    ctx.fillStyle = c;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, tx + size * 0.3, ty + size * 0.18);
  }
}

// "2.60× less" or "14.1× more": a ratio always says which way it goes.
function ratio(efficiency) {
  if (efficiency === null || efficiency === undefined) return "n/a";
  return efficiency >= 1 ? efficiency.toFixed(2) + "× less" : (1 / efficiency).toFixed(2) + "× more";
}

// One row per energy model, each with the baseline it is measured against, and a plain explanation.
function renderModels(e) {
  const models = e.energy_models || {};
  const names = Object.keys(models);
  $("models").hidden = names.length === 0;
  const rows = $("model-rows");
  rows.replaceChildren();
  for (const name of names) {
    const m = models[name];
    const tr = document.createElement("tr");
    const label = document.createElement("td");
    label.textContent = m.description || name;
    label.title = `baseline: ${m.baseline}\n` + (m.assumptions || []).join("\n");
    const snn = document.createElement("td");
    snn.textContent = mJ(m.snn_mJ);
    const ann = document.createElement("td");
    ann.textContent = mJ(m.ann_mJ);
    const verdict = document.createElement("td");
    verdict.textContent = ratio(m.efficiency);
    verdict.className = m.efficiency !== null && m.efficiency < 1 ? "worse" : "better";
    tr.append(label, snn, ann, verdict);
    rows.append(tr);
  }
  let text = "";
  if (e.spikes_per_element !== undefined) {
    const silent = Math.round(100 * (e.activation_sparsity || 0));
    text = `Each input of the spiking layers sends ${e.spikes_per_element.toFixed(2)} spikes on average ` +
      `(${silent}% send none). Each spike is an addition (AC), so the SNN does ${big(e.acs)} additions`;
    text += e.effective_macs ? ` and ${big(e.effective_macs)} multiply-adds (its first layer, on the image).` : ".";
    if (e.spikes_per_element > 1) {
      text += " That is more operations than the ANN's multiply-adds: the savings of the compute-only estimates come " +
        "from an addition costing less than a multiply-add.";
    }
    if (models.memory && models.memory.efficiency !== null && models.memory.efficiency < 1) {
      text += " Counting memory traffic (each addition reads and writes a membrane potential) reverses the verdict.";
    }
  }
  $("explain").textContent = text;
}

// -- downloads: the annotated canvas as PNG, the service's answer as JSON ---------------------------------

function baseName() {
  return (page.file && page.file.name ? page.file.name.replace(/\.[^.]*$/, "") : "image") || "image";
}

function offerDownloads(result) {
  const json = new Blob([JSON.stringify(result, null, 2)], { type: "application/json" });
  const link = $("download-json");
  if (link.href) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(json);
  link.download = baseName() + "-detections.json";
  $("canvas").toBlob((png) => {
    const a = $("download-image");
    if (a.href) URL.revokeObjectURL(a.href);
    if (png) a.href = URL.createObjectURL(png);
    a.download = baseName() + "-detections.png";
  }, "image/png");
}

async function trySample() {
  setStatus("Loading the sample image…", "busy");
  try {
    const r = await fetch("/v1/samples/bus.jpg");
    if (!r.ok) throw new Error(await errorText(r));
    const blob = await r.blob();
    await choose(new File([blob], "bus.jpg", { type: blob.type || "image/jpeg" }));
  } catch (e) {
    setStatus("Could not load the sample image: " + e.message, "error");
  }
}

function render(result, ms) {
  draw(result);
  offerDownloads(result);
  const e = result.energy;
  const top = Math.max(e.snn_mJ || 0, e.ann_mJ || 0) || 1;
  $("snn").textContent = mJ(e.snn_mJ);
  $("ann").textContent = mJ(e.ann_mJ);
  $("bar-snn").style.width = (100 * (e.snn_mJ || 0) / top).toFixed(1) + "%";
  $("bar-ann").style.width = (100 * (e.ann_mJ || 0) / top).toFixed(1) + "%";
  $("efficiency").textContent = ratio(e.efficiency);
  $("efficiency-text").textContent = (e.efficiency !== null && e.efficiency !== undefined && e.efficiency < 1 ? "more" : "less") +
    " energy than the same network run as a float32 ANN, by the field's usual compute-only estimate";
  renderModels(e);
  $("ann-merged").textContent = mJ(e.ann_merged_mJ);
  $("ops").textContent = `${big(e.macs)} / ${big(e.acs)}`;
  $("spikes").textContent = big(e.spikes);
  $("spe").textContent = e.spikes_per_element === undefined ? "n/a" : e.spikes_per_element.toFixed(2);
  const k = e.constants || {};
  $("constants").textContent = `MAC ${k.e_mac_pj} pJ, AC ${k.e_ac_pj} pJ (${k.process || "?"})`;
  $("caveat").textContent = e.caveat || "";
  $("energy").hidden = false;

  const rows = $("rows");
  rows.replaceChildren();
  const sorted = [...result.detections].sort((a, b) => b.confidence - a.confidence);
  for (const d of sorted) {
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = color(d.class_id);
    name.append(sw, d.name);
    const conf = document.createElement("td");
    conf.textContent = d.confidence.toFixed(2);
    const box = document.createElement("td");
    box.textContent = [d.box.x1, d.box.y1, d.box.x2, d.box.y2].map((v) => Math.round(v)).join(", ");
    tr.append(name, conf, box);
    rows.appendChild(tr);
  }
  if (!sorted.length) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 3;
    td.textContent = "nothing above the confidence threshold";
    tr.appendChild(td);
    rows.appendChild(tr);
  }
  $("count").textContent = `(${sorted.length})`;
  const t = result.timing_ms || {};
  $("timing").textContent = `model ${t.total} ms (pre ${t.preprocess}, inference ${t.inference}, post ${t.postprocess}) · `
    + `round trip ${Math.round(ms)} ms · ${result.image.width} × ${result.image.height} px at ${$("imgsz").value} px`;
  $("results").hidden = false;
}

// -- wiring ----------------------------------------------------------------------------------------

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (ev) => choose(ev.target.files[0]));
  drop.addEventListener("click", (ev) => {
    if (ev.target === drop || ev.target.classList.contains("drop-main")) $("file").click();
  });
  drop.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      $("file").click();
    }
  });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (ev) => {
    ev.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "dragend"].forEach((t) => drop.addEventListener(t, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (ev) => {
    ev.preventDefault();
    drop.classList.remove("over");
    const file = ev.dataTransfer && ev.dataTransfer.files[0];
    if (file) choose(file);
  });
  // a file dropped anywhere else must not make the browser navigate away from the page
  window.addEventListener("dragover", (ev) => ev.preventDefault());
  window.addEventListener("drop", (ev) => ev.preventDefault());
  document.addEventListener("paste", (ev) => {
    const item = [...(ev.clipboardData ? ev.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (item) choose(item.getAsFile());
  });
  let timer = null;
  const rerun = () => {
    showControls();
    clearTimeout(timer);
    timer = setTimeout(() => { if (page.ready) detect(); }, 250);
  };
  ["conf", "iou"].forEach((id) => $(id).addEventListener("input", rerun));
  $("imgsz").addEventListener("change", rerun);
  $("key").addEventListener("change", () => { if (page.ready) { loadModel(); detect(); } });
  $("controls").addEventListener("submit", (ev) => ev.preventDefault());
  $("sample").addEventListener("click", trySample);
}

wire();
loadLimits().then(waitReady).catch((e) => setStatus("Could not reach the server: " + e.message, "error"));
