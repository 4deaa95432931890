/* Polyseek web UI: plain JavaScript, no build step, no external assets. */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = "polyseek.token";
  const TYPE_LABEL = { pdf: "PDF", image: "Image", text: "Text", record: "Record", video: "Video", audio: "Audio" };
  const state = {
    text: "", type: "", path: "", after: "", before: "",
    image: null, imageName: "", imageSize: null, crop: null,
    like: null, hits: [], selected: -1, seq: 0, controller: null, status: null, detail: -1,
  };

  // ---------- HTTP ----------
  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }
  function authHeaders() { const t = token(); return t ? { Authorization: "Bearer " + t } : {}; }
  function assetUrl(id, tail) { return "/assets/" + id.split("/").map(encodeURIComponent).join("/") + (tail || ""); }

  class ApiError extends Error {
    constructor(status, message, type) { super(message); this.status = status; this.type = type; }
  }

  async function api(path, opts) {
    opts = opts || {};
    const headers = Object.assign({}, authHeaders(), opts.headers || {});
    let res;
    try {
      res = await fetch(path, Object.assign({}, opts, { headers }));
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, "Cannot reach the Polyseek server. Is `polyseek serve` still running?", "NetworkError");
    }
    if (res.status === 401) { askToken(!!token()); throw new ApiError(401, "This server needs a token.", "AuthError"); }
    const ctype = res.headers.get("content-type") || "";
    if (!res.ok) {
      let msg = res.status + " " + res.statusText, type = "HTTPError";
      if (ctype.includes("json")) {
        const body = await res.json().catch(() => null);
        if (body && body.error) { msg = body.error.message; type = body.error.type; }
      }
      throw new ApiError(res.status, msg, type);
    }
    return ctype.includes("json") ? res.json() : res;
  }

  // Images go through fetch when a token is set (an <img src> cannot send the Authorization header).
  const blobCache = new Map();
  function setImg(img, url) {
    return new Promise((resolve) => {
      img.onload = () => resolve(true);
      img.onerror = () => resolve(false);
      if (!token()) { img.src = url; return; }
      if (blobCache.has(url)) { img.src = blobCache.get(url); return; }
      fetch(url, { headers: authHeaders() }).then((r) => r.ok ? r.blob() : Promise.reject(r.status))
        .then((b) => {
          const u = URL.createObjectURL(b);
          blobCache.set(url, u);
          if (blobCache.size > 300) { const [k, v] = blobCache.entries().next().value; URL.revokeObjectURL(v); blobCache.delete(k); }
          img.src = u;
        }).catch(() => resolve(false));
    });
  }

  // ---------- helpers ----------
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  // Snippet with <mark>ed spans; spans count code points (Python str offsets), the text is never parsed as HTML.
  function highlighted(snippet, spans) {
    const frag = document.createDocumentFragment();
    const chars = Array.from(snippet || "");
    let last = 0;
    for (const [s, e] of (spans || []).slice().sort((a, b) => a[0] - b[0])) {
      if (s < last || e <= s) continue;
      frag.append(chars.slice(last, s).join(""));
      frag.append(el("mark", null, chars.slice(s, e).join("")));
      last = e;
    }
    frag.append(chars.slice(last).join(""));
    return frag;
  }
  function mmss(t) {
    t = Math.max(0, Math.floor(t || 0));
    const h = Math.floor(t / 3600), m = Math.floor(t / 60) % 60, s = t % 60;
    return (h ? h + ":" : "") + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
  }
  function timeLabel(hit) { const t = hit.unit && hit.unit.time; return t ? mmss(t[0]) + "–" + mmss(t[1]) : ""; }
  // Media elements cannot send the Authorization header: with a token the file is fetched whole as a blob,
  // without one the browser streams it with Range requests (the API answers 206).
  function setMediaSrc(m, url) {
    if (!token()) { m.src = url; return Promise.resolve(true); }
    return fetch(url, { headers: authHeaders() }).then((r) => r.ok ? r.blob() : Promise.reject(r.status))
      .then((b) => { m.src = URL.createObjectURL(b); return true; }).catch(() => false);
  }
  function basename(p) { return (p || "").split(/[\\/]/).pop(); }
  function ext(p) { const m = /\.([A-Za-z0-9]{1,6})$/.exec(p || ""); return m ? m[1].toUpperCase() : "TXT"; }
  function fmtBytes(n) { if (!n && n !== 0) return ""; const u = ["B", "KB", "MB", "GB"]; let i = 0; while (n >= 1024 && i < 3) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
  function fmtDate(s) { if (!s) return ""; const d = new Date(s); return isNaN(d) ? s : d.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }); }
  let toastTimer = null;
  function toast(msg) { const t = $("toast"); t.textContent = msg; t.hidden = false; clearTimeout(toastTimer); toastTimer = setTimeout(() => { t.hidden = true; }, 3500); }

  // A box over an image, in percent of the frame it lives in ([w, h] of the bbox's coordinate space).
  function addBox(frameEl, bbox, frame) {
    if (!bbox || !frame || !frame[0] || !frame[1]) return null;
    const [x, y, w, h] = bbox;
    if (w >= frame[0] * 0.97 && h >= frame[1] * 0.97) return null; // the whole page or image: nothing to point at
    const b = el("div", "box");
    b.style.left = (100 * x / frame[0]) + "%";
    b.style.top = (100 * y / frame[1]) + "%";
    b.style.width = Math.max(0.8, 100 * w / frame[0]) + "%";
    b.style.height = Math.max(0.8, 100 * h / frame[1]) + "%";
    frameEl.append(b);
    return b;
  }
  function hitBox(hit) {
    // The matched region first: an instance match (extra.match.box) or the crop that found the hit
    // (extra.crops[].match), both in the unit's frame; else the unit's own box (a PDF block, a region tile).
    const ex = hit.extra || {};
    const crop = (ex.crops || []).find((c) => Array.isArray(c.match) && c.match.length === 4);
    const b = (ex.match && ex.match.box) || (crop && crop.match) || hit.unit.bbox;
    return Array.isArray(b) && b.length === 4 ? b : null;
  }
  // Signals in words: what made this a result, for a person (raw scores stay in the tooltip).
  function whyWords(hit) {
    const s = hit.signals || {}, ex = hit.extra || {}, out = [];
    for (const k of Object.keys(s)) {
      if (k === "bm25") out.push("keyword");
      else if (k === "dense") out.push("meaning");
      else if (k === "visual") out.push("looks alike");
      else if (k === "instance") {
        const n = ex.match && ex.match.inliers;
        out.push(n ? "same object, " + n + " matched points" : "same object");
      } else out.push(k);
    }
    return out;
  }
  function pageImageUrl(hit, width) { return assetUrl(hit.asset.id, "/file?page=" + (hit.unit.page || 1) + "&width=" + width); }

  // ---------- search ----------
  function filtersObj() {
    const f = {};
    if (state.type) f.type = [state.type];
    if (state.path) f.path = state.path;
    if (state.after) f.after = state.after;
    if (state.before) f.before = state.before;
    return f;
  }
  function filtersActive() { return !!(state.type || state.path || state.after || state.before); }

  let debounceTimer = null;
  function scheduleSearch(delay) { clearTimeout(debounceTimer); debounceTimer = setTimeout(runSearch, delay == null ? 180 : delay); }

  async function runSearch() {
    const seq = ++state.seq;
    if (state.controller) state.controller.abort();
    const hasQuery = state.text.trim() || state.image || state.like;
    $("f-reset").hidden = !filtersActive();
    if (!hasQuery) { state.hits = []; renderSuggestions([]); renderHome(); return; }
    const controller = new AbortController();
    state.controller = controller;
    $("statusline").replaceChildren(el("span", "spinner"), "Searching…");
    let opts;
    if (state.image) {
      const fd = new FormData();
      fd.append("image", state.image, state.imageName || "query.png");
      if (state.crop) fd.append("crop", state.crop.map((v) => Math.round(v)).join(","));
      if (state.text.trim()) fd.append("text", state.text.trim());
      fd.append("k", "24");
      const f = filtersObj();
      for (const k of ["path", "after", "before"]) if (f[k]) fd.append(k, f[k]);
      if (f.type) fd.append("type", f.type[0]);
      opts = { method: "POST", body: fd, signal: controller.signal };
    } else {
      const body = { k: 24, filters: filtersObj() };
      // A text query shows what stands out (dynamic cutoff) and offers refinements; "more like this" lists k.
      if (state.like) body.like = state.like.id; else { body.text = state.text.trim(); body.cutoff = "auto"; body.suggest = true; }
      opts = { method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "application/json" }, signal: controller.signal };
    }
    try {
      const res = await api("/search", opts);
      if (seq !== state.seq) return;
      state.hits = res.hits;
      state.selected = -1;
      hideBanner();
      renderResults(res);
      if (res.warnings && res.warnings.length) showNote(res.warnings);
      if (state.image) imageHelp();
    } catch (e) {
      if (e.name === "AbortError" || seq !== state.seq) return;
      state.hits = [];
      renderSuggestions([]);
      $("results").replaceChildren();
      $("emptystate").hidden = true;
      $("statusline").textContent = "";
      hideBanner();
      showError(e);
    }
  }

  function imageHelp() {
    const help = $("qi-help");
    if (state.status && !state.status.image_search) {
      help.className = "qi-help warn";
      help.textContent = "This index cannot search by image (it has no visual signal), so these results match your words only.";
    } else {
      help.className = "qi-help";
      help.textContent = state.crop ? "Searching the selected region. Drag again to change it." : "Drag on the image to search just that region.";
    }
  }

  function showError(e) {
    let title = "Search failed", hint = "";
    if (e.status === 400 && state.image && /visual|image/i.test(e.message)) {
      // The engine's own message says what to configure; show it next to the image, once.
      const help = $("qi-help");
      help.className = "qi-help warn";
      help.textContent = e.message;
      $("statusline").textContent = "No image results. Type words in the search box to search alongside the image.";
      return;
    } else if (e.status === 400 || e.status === 422) { title = "The search could not run"; hint = "Check the filters (dates as YYYY-MM-DD, path as a glob like */reports/*)."; }
    else if (e.status === 413) { title = "The image is too large"; hint = "Use a smaller image."; }
    else if (e.status === 401) { title = "A token is needed"; hint = "Enter the server's token to continue."; }
    else if (e.status === 404) { title = "Not found"; }
    else if (e.status >= 500) { title = "The server hit an error"; hint = "The server log has the details; try again."; }
    const b = $("banner");
    b.className = "banner";
    const box = el("div");
    box.append(el("strong", null, title), el("div", null, e.message));
    if (hint) box.append(el("div", null, hint));
    b.replaceChildren(box);
    b.hidden = false;
  }
  function hideBanner() { $("banner").hidden = true; }
  function showNote(lines) {
    const b = $("banner");
    b.className = "banner info";
    const box = el("div");
    box.append(el("strong", null, "About these results"));
    for (const t of lines) box.append(el("div", null, t));
    b.replaceChildren(box);
    b.hidden = false;
  }

  // ---------- rendering ----------
  function thumbFor(hit, forAsset) {
    const t = el("div", "thumb " + hit.asset.type);
    const frame = el("div", "frame");
    const type = hit.asset.type;
    const badges = el("div", "badges");
    badges.append(el("span", "badge " + type, TYPE_LABEL[type] || type));
    if (hit.unit && hit.unit.page) badges.append(el("span", "badge page", "p. " + hit.unit.page));
    if (hit.unit && hit.unit.time) badges.append(el("span", "badge page time", timeLabel(hit)));
    if (type === "video") {
      const img = el("img");
      img.alt = basename(hit.asset.path) + " at " + timeLabel(hit);
      img.loading = "lazy";
      frame.append(img);
      t.append(frame);
      const keyed = hit.unit && (hit.unit.kind === "frame" || hit.unit.kind === "segment");
      const url = assetUrl(hit.asset.id, "/thumbnail" + (keyed ? "?unit=" + encodeURIComponent(hit.unit.id) : ""));
      setImg(img, url).then((ok) => { if (!ok) frame.replaceWith(docTile(hit.asset.path, type)); });
    } else if (type === "pdf" || type === "image") {
      const img = el("img");
      img.alt = basename(hit.asset.path);
      img.loading = "lazy";
      img.decoding = "async";
      frame.append(img);
      t.append(frame);
      const url = type === "pdf" ? pageImageUrl(hit, 360) : assetUrl(hit.asset.id, "/thumbnail");
      setImg(img, url).then((ok) => {
        if (!ok) { frame.replaceWith(docTile(hit.asset.path)); return; }
        if (!forAsset && hit.unit) addBox(frame, hitBox(hit), hit.frame);
      });
    } else {
      t.append(docTile(hit.asset.path, type));
    }
    t.append(badges);
    return t;
  }
  function docTile(path, type) {
    const d = el("div", "doc-tile");
    for (let i = 0; i < 9; i++) d.append(el("i"));
    d.append(el("span", "ext", type === "record" ? "REC" : ext(path)));
    return d;
  }

  function card(hit, i) {
    const c = el("button", "card");
    c.type = "button";
    c.dataset.index = i;
    c.append(thumbFor(hit));
    const body = el("div", "body");
    body.append(el("div", "title", hit.title || basename(hit.asset.path) || hit.asset.id));
    const p = el("div", "path"); p.append(el("bdi", null, hit.asset.path)); p.title = hit.asset.path; body.append(p);
    if (hit.snippet) { const s = el("div", "snippet"); s.append(highlighted(hit.snippet, hit.highlights)); body.append(s); }
    const why = whyWords(hit);
    if (why.length) {
      const w = el("div", "why");
      w.title = Object.entries(hit.signals).map(([k, v]) => k + " " + v.toFixed(3)).join(" · ");
      for (const t of why) w.append(el("span", "sig", t));
      body.append(w);
    }
    c.append(body);
    c.addEventListener("click", () => { select(i); openDetail(i); });
    return c;
  }

  function renderResults(res) {
    const grid = $("results");
    const n = res.hits.length;
    $("emptystate").hidden = true;
    $("emptystate").replaceChildren();
    grid.replaceChildren(...res.hits.map(card));
    const what = state.like ? "similar to " : state.image ? (state.crop ? "for the image region" : "for the image") : "";
    const sl = $("statusline");
    sl.replaceChildren();
    if (n) {
      sl.append(el("b", null, n + (n === 1 ? " result" : " results")), " " + (what || ""));
      if (state.like) sl.append(el("b", null, " " + state.like.title));
      sl.append(" · " + Math.round(res.took_ms) + " ms");
      if (state.like) { const b = el("button", "linkbtn", "Back to search"); b.addEventListener("click", clearLike); sl.append("  ", b); }
    }
    renderSuggestions(res.suggestions || []);
    if (!n) renderNoResults();
    updateSelection();
  }

  // "Maybe you are looking for": one chip per cluster of the results (CroQS); a click searches it.
  function renderSuggestions(list) {
    const box = $("suggestions");
    box.replaceChildren();
    box.hidden = !list.length;
    if (!list.length) return;
    box.append(el("span", "sugg-label", "Narrow to:"));
    for (const s of list) {
      const b = el("button", "chip", s.query);
      b.title = s.size + (s.size === 1 ? " result" : " results") + " in this group";
      b.addEventListener("click", () => { $("q").value = s.query; state.text = s.query; runSearch(); });
      box.append(b);
    }
  }

  function renderNoResults() {
    const e = $("emptystate");
    const q = state.text.trim();
    e.replaceChildren(artIcon());
    e.append(el("h2", null, q ? "No matches for “" + q + "”" : "No matches"));
    e.append(el("p", null, filtersActive() ? "Filters are narrowing this search. Reset them, or try other words." :
      "Try fewer or different words, or search by an image. New files show up here once they are indexed."));
    const tips = el("div", "tips");
    if (filtersActive()) { const b = el("button", null, "Reset filters"); b.addEventListener("click", resetFilters); tips.append(b); }
    if (state.like) { const b = el("button", null, "Back to search"); b.addEventListener("click", clearLike); tips.append(b); }
    e.append(tips);
    e.hidden = false;
    $("statusline").textContent = "";
  }

  function artIcon() {
    const a = el("div", "art");
    a.innerHTML = '<svg viewBox="0 0 24 24" aria-hidden="true"><circle cx="10.5" cy="10.5" r="6.5" fill="none" stroke="currentColor" stroke-width="2"/><path d="M15.5 15.5L21 21" stroke="currentColor" stroke-width="2" stroke-linecap="round"/></svg>';
    return a;
  }

  async function renderHome() {
    $("results").replaceChildren();
    $("statusline").textContent = "";
    hideBanner();
    const e = $("emptystate");
    e.replaceChildren(artIcon());
    const st = state.status;
    if (st && st.assets === 0) {
      e.append(el("h2", null, "This index is empty"));
      const p = el("p"); p.append("Add files with ", el("b", null, "Add files"), " above, or index a folder: ", el("code", null, "polyseek index ~/Documents --index " + st.path));
      e.append(p);
      e.hidden = false;
      return;
    }
    e.append(el("h2", null, "Search everything in your index"));
    e.append(el("p", null, "Type to search text in documents, PDF pages and images. Drop, paste or pick an image to find similar ones, and drag on it to search a region."));
    const tips = el("div", "tips");
    tips.id = "suggestions";
    let suggested = [];
    try { suggested = (await api("/suggestions?n=4")).suggestions; } catch (err) { /* no suggestions then */ }
    if (state.text || state.image || state.like) return;
    for (const t of suggested) {
      const b = el("button", null, t);
      b.addEventListener("click", () => { $("q").value = t; state.text = t; runSearch(); });
      tips.append(b);
    }
    e.append(tips);
    e.hidden = false;
    try {
      const res = await api("/assets?limit=8");
      if (!res.assets.length || state.text || state.image || state.like) return;
      e.append(el("div", "section-title", "Recently indexed"));
      state.hits = res.assets.map((a, i) => ({ rank: i + 1, asset: { id: a.id, path: a.path, type: a.type }, unit: { id: "", kind: "", page: null, bbox: null }, snippet: "", highlights: [], signals: {}, frame: null }));
      const grid = el("section", "grid");
      grid.id = "recent";
      grid.style.alignSelf = "stretch";
      grid.append(...state.hits.map(card));
      e.append(grid);
      state.selected = -1;
    } catch (err) { /* the home page still works without the list */ }
  }

  // ---------- selection + keyboard ----------
  function cards() { return Array.from(document.querySelectorAll("#results .card, #emptystate:not([hidden]) .card")); }
  function select(i) { state.selected = i; updateSelection(true); }
  function updateSelection(scroll) {
    cards().forEach((c, i) => c.classList.toggle("selected", i === state.selected));
    const c = cards()[state.selected];
    if (c && scroll) c.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }
  function columns() {
    const cs = cards();
    if (cs.length < 2) return 1;
    const top = cs[0].getBoundingClientRect().top;
    let n = 0;
    for (const c of cs) { if (Math.abs(c.getBoundingClientRect().top - top) < 2) n++; else break; }
    return Math.max(1, n);
  }

  document.addEventListener("keydown", (ev) => {
    const inField = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLTextAreaElement;
    if (!$("tokenbox").hidden) return;
    if (!$("detail").hidden) {
      if (ev.key === "Escape") { closeDetail(); ev.preventDefault(); }
      else if (ev.key === "ArrowRight" && state.detail < state.hits.length - 1) { openDetail(state.detail + 1); ev.preventDefault(); }
      else if (ev.key === "ArrowLeft" && state.detail > 0) { openDetail(state.detail - 1); ev.preventDefault(); }
      return;
    }
    if (ev.key === "/" && !inField) { $("q").focus(); $("q").select(); ev.preventDefault(); return; }
    if (ev.key === "Escape") {
      if (inField && ev.target.value) return; // let the field clear itself
      if (state.like) clearLike(); else if (state.image) removeImage(); else if (inField) ev.target.blur();
      return;
    }
    const n = state.hits.length;
    if (!n) return;
    const fromSearch = ev.target === $("q");
    if (inField && !fromSearch) return;
    let i = state.selected;
    if (ev.key === "ArrowDown") i = i < 0 ? 0 : i + columns();
    else if (ev.key === "ArrowUp") i = i - columns();
    else if (ev.key === "ArrowRight" && !fromSearch) i = i + 1;
    else if (ev.key === "ArrowLeft" && !fromSearch) i = i - 1;
    else if (ev.key === "Enter" && state.selected >= 0 && (!fromSearch || document.querySelector(".card.selected"))) { ev.preventDefault(); openDetail(state.selected); return; }
    else return;
    ev.preventDefault();
    if (ev.key === "ArrowUp" && i < 0 && fromSearch) return;
    if (ev.key === "ArrowUp" && i < 0) { $("q").focus(); return; }
    i = Math.max(0, Math.min(n - 1, i));
    if (fromSearch) $("q").blur();
    select(i);
  });

  // ---------- ask ----------
  // POST /ask as server-sent events: steps and tokens as they come, then the answer whose [n] open the cited
  // unit's page with its box drawn (citations become the result cards, so the detail view works as for hits).
  const askState = { controller: null, session: "ui-" + Math.random().toString(36).slice(2, 10) };
  function citeHit(c) {
    return { asset: { id: c.asset, path: c.path || "", type: c.type || (c.page != null ? "pdf" : "text") },
             unit: { id: c.unit, kind: c.kind, page: c.page, bbox: c.bbox }, snippet: c.snippet || "", highlights: [],
             signals: {}, frame: c.frame, title: "[" + c.n + "] " + basename(c.path || c.asset) };
  }
  function renderAnswer(ans) {
    const box = $("answer-text");
    box.replaceChildren();
    box.classList.toggle("abstained", !!ans.abstained);
    const order = ans.citations.map((c) => c.n);
    const parts = ans.answer.split(/(\[\d+\])/);
    for (const part of parts) {
      const m = /^\[(\d+)\]$/.exec(part);
      const i = m ? order.indexOf(Number(m[1])) : -1;
      if (i >= 0) {
        const a = el("a", "cite", part);
        a.href = "#"; a.dataset.n = m[1];
        a.addEventListener("click", (ev) => { ev.preventDefault(); openDetail(i); });
        box.append(a);
      } else box.append(part);
    }
    const list = $("answer-cites");
    list.replaceChildren();
    ans.citations.forEach((c, i) => {
      const li = el("li");
      const a = el("a", "cite-link", "[" + c.n + "] " + c.asset + (c.page != null ? ", page " + c.page : "") + " · " + c.kind);
      a.href = "#";
      a.addEventListener("click", (ev) => { ev.preventDefault(); openDetail(i); });
      li.append(a, el("span", "cite-snippet", c.snippet || ""));
      list.append(li);
    });
    state.hits = ans.citations.map(citeHit);
    state.selected = -1;
    $("results").replaceChildren(...state.hits.map(card));
    $("emptystate").hidden = true;
    const u = ans.usage || {};
    $("answer-summary").textContent = ans.steps.length + " steps · " + ans.mode + " · " + (ans.seconds || 0).toFixed(1) + " s" + (u.calls ? " · " + u.total_tokens + " tokens" : "");
    $("statusline").textContent = ans.abstained ? "No answer found in the indexed documents." : ans.citations.length + " cited evidence unit(s)";
  }
  async function runAsk() {
    const q = $("ask-q").value.trim();
    if (!q) return;
    if (askState.controller) askState.controller.abort();
    const controller = new AbortController();
    askState.controller = controller;
    $("answer").hidden = false;
    $("answer-text").replaceChildren(el("span", "spinner"));
    $("answer-text").classList.remove("abstained");
    $("answer-cites").replaceChildren();
    $("answer-steps").replaceChildren();
    $("answer-summary").textContent = "Steps";
    $("statusline").textContent = "Asking…";
    let streamed = "";
    try {
      const res = await api("/ask", { method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify({ question: q, deep: $("ask-deep").checked, session: askState.session, stream: true }) });
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let kind = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) kind = line.slice(6).trim();
            else if (line.startsWith("data:")) data += line.slice(5).trim();
          }
          if (!data) continue;
          const obj = JSON.parse(data);
          if (kind === "step") $("answer-steps").append(el("li", null, obj.name + (obj.ms != null ? " · " + Math.round(obj.ms) + " ms" : "")));
          else if (kind === "token" && !obj.planner && obj.text) { streamed += obj.text; $("answer-text").textContent = streamed; }
          else if (kind === "answer") renderAnswer(obj);
          else if (kind === "error") throw new ApiError(obj.status || 500, obj.error, obj.type);
        }
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      $("answer-text").replaceChildren(el("span", "ask-error", e.message));
      $("statusline").textContent = "";
    }
  }
  $("askbar").addEventListener("submit", (ev) => { ev.preventDefault(); runAsk(); });

  // ---------- detail view ----------
  let lastFocus = null;
  async function openDetail(i) {
    const hit = state.hits[i];
    if (!hit) return;
    state.detail = i;
    select(i);
    if ($("detail").hidden) lastFocus = document.activeElement;
    $("detail").hidden = false;
    const media = $("d-media");
    media.className = "detail-media " + hit.asset.type;
    media.replaceChildren(el("div", "spinner"));
    $("d-badge").className = "badge " + hit.asset.type;
    $("d-badge").textContent = TYPE_LABEL[hit.asset.type] || hit.asset.type;
    $("d-title").textContent = basename(hit.asset.path);
    $("d-path").textContent = hit.asset.path;
    const sn = $("d-snippet");
    sn.replaceChildren();
    if (hit.snippet) sn.append(highlighted(hit.snippet, hit.highlights));
    $("d-meta").replaceChildren();
    $("d-open").href = "#";
    $("d-close").focus();
    try {
      const asset = await api(assetUrl(hit.asset.id));
      if (state.detail !== i) return;
      $("d-title").textContent = asset.title || basename(asset.path);
      fillMeta(asset, hit);
      $("d-open").onclick = (ev) => { ev.preventDefault(); openFile(asset); };
      $("d-like").onclick = () => moreLike(asset);
      if (asset.type === "pdf") await showPdf(media, hit, asset, hit.unit.page || 1);
      else if (asset.type === "image") await showImage(media, hit, asset);
      else if (asset.type === "video" || asset.type === "audio") await showMedia(media, hit, asset);
      else await showPassages(media, hit, asset);
    } catch (e) {
      if (state.detail !== i) return;
      media.replaceChildren(el("div", "banner", e.message));
    }
  }

  function fillMeta(a, hit) {
    const dl = $("d-meta");
    const rows = [["Type", TYPE_LABEL[a.type] || a.type], ["Size", fmtBytes(a.size)], ["Created", fmtDate(a.created)], ["Indexed", fmtDate(a.indexed_at)]];
    const m = a.meta || {};
    if (m.pages) rows.push(["Pages", m.pages]);
    if (m.width && m.height) rows.push(["Dimensions", m.width + " × " + m.height + " px"]);
    if (m.duration) rows.push(["Duration", mmss(m.duration)]);
    if (m.language) rows.push(["Language", m.language]);
    if (m.author) rows.push(["Author", m.author]);
    if (m.make || m.model) rows.push(["Camera", [m.make, m.model].filter(Boolean).join(" ")]);
    if (hit.unit && hit.unit.kind) rows.push(["Matched", hit.unit.kind === "page" ? "page " + hit.unit.page : hit.unit.kind + (hit.unit.page ? " on page " + hit.unit.page : "") + (hit.unit.time ? " at " + timeLabel(hit) : "")]);
    const sig = Object.entries(hit.signals || {});
    if (sig.length) rows.push(["Matched by", whyWords(hit).join(" · ")]);
    // The raw per-signal scores, for the curious (what they mean is the "Matched by" row): counts stay whole numbers.
    if (sig.length) rows.push(["Raw scores", sig.map(([k, v]) => k + " " + (Number.isInteger(v) ? v : v.toFixed(3))).join(" · ")]);
    rows.push(["ID", a.id]);
    for (const [k, v] of rows) { if (v === "" || v == null) continue; dl.append(el("dt", null, k), el("dd", null, String(v))); }
  }

  async function showPdf(media, hit, asset, page) {
    const pages = (asset.meta && asset.meta.pages) || 1;
    const frame = el("div", "frame");
    const img = el("img");
    img.alt = "Page " + page;
    frame.append(img);
    media.replaceChildren(frame);
    const ok = await setImg(img, assetUrl(asset.id, "/file?page=" + page + "&width=1100"));
    if (!ok) { media.replaceChildren(el("div", "banner", "This page could not be rendered.")); return; }
    if (page === (hit.unit.page || 1)) addBox(frame, hitBox(hit), hit.frame || await pageFrame(asset, page));
    if (pages > 1) {
      const bar = el("div", "pagebar");
      const prev = el("button", null, "‹ Prev"), next = el("button", null, "Next ›");
      prev.disabled = page <= 1; next.disabled = page >= pages;
      prev.onclick = () => showPdf(media, hit, asset, page - 1);
      next.onclick = () => showPdf(media, hit, asset, page + 1);
      bar.append(prev, el("span", null, "Page " + page + " of " + pages), next);
      media.append(bar);
    }
  }
  async function pageFrame(asset, page) {
    const res = await api(assetUrl(asset.id, "/units"));
    const u = res.units.find((x) => x.kind === "page" && x.page === page);
    return u && u.bbox ? [u.bbox[2], u.bbox[3]] : null;
  }

  async function showImage(media, hit, asset) {
    const frame = el("div", "frame");
    const img = el("img");
    img.alt = basename(asset.path);
    frame.append(img);
    media.replaceChildren(frame);
    const ok = await setImg(img, assetUrl(asset.id, "/file"));
    if (!ok) { media.replaceChildren(el("div", "banner", "The image file could not be loaded (moved or outside the indexed folders).")); return; }
    const fr = hit.frame || (asset.meta.width ? [asset.meta.width, asset.meta.height] : null);
    const box = hitBox(hit);
    if (box) { const b = addBox(frame, box, fr); if (b && hit.extra && (hit.extra.match || hit.extra.crops)) b.classList.add("matchbox"); }
    // Text found in the image (OCR) that matches the query words.
    const words = (state.text || "").toLowerCase().split(/\W+/).filter((w) => w.length > 1);
    if (words.length && fr) {
      try {
        const res = await api(assetUrl(asset.id, "/units"));
        for (const u of res.units) {
          for (const line of (u.meta && u.meta.ocr) || []) {
            const t = (line.text || "").toLowerCase();
            if (words.some((w) => t.includes(w))) addBox(frame, line.bbox, fr);
          }
        }
      } catch (e) { /* boxes are a bonus */ }
    }
  }

  // A player that starts at the hit's time, and the transcript with the matched segment marked; a click on a
  // transcript line plays from there.
  async function showMedia(media, hit, asset) {
    const player = el(asset.type === "video" ? "video" : "audio", "player");
    player.controls = true;
    player.preload = "metadata";
    const t0 = hit.unit && hit.unit.time ? hit.unit.time[0] : 0;
    player.addEventListener("loadedmetadata", () => { player.currentTime = t0; }, { once: true });
    const wrap = el("div", "media-wrap");
    wrap.append(player);
    media.replaceChildren(wrap);
    const ok = await setMediaSrc(player, assetUrl(asset.id, "/file") + (t0 ? "#t=" + t0.toFixed(2) : ""));
    if (!ok) { media.replaceChildren(el("div", "banner", "The media file could not be loaded (moved or outside the indexed folders).")); return; }
    const res = await api(assetUrl(asset.id, "/units"));
    const lines = res.units.filter((u) => u.kind === "speech");
    if (!lines.length) return;
    const box = el("div", "transcript");
    const words = (state.text || "").toLowerCase().split(/\W+/).filter((w) => w.length > 1);
    let target = null;
    for (const u of lines) {
      const row = el("button", "tline");
      row.type = "button";
      row.dataset.t0 = u.t0;
      row.append(el("span", "tt", mmss(u.t0)));
      const txt = el("span", "tx");
      for (const w of (u.meta && u.meta.words) || [[u.text, u.t0, u.t1]]) {
        const bare = String(w[0]).toLowerCase().replace(/[^\p{L}\p{N}]/gu, "");
        txt.append(words.includes(bare) ? el("mark", null, w[0]) : document.createTextNode(w[0]), document.createTextNode(" "));
      }
      row.append(txt);
      if (hit.unit && u.t0 < hit.unit.time?.[1] && u.t1 > hit.unit.time?.[0]) { row.classList.add("matched"); target = target || row; }
      row.onclick = () => { player.currentTime = u.t0; player.play().catch(() => {}); };
      box.append(row);
    }
    wrap.append(box);
    if (target) target.scrollIntoView({ block: "nearest" });
  }

  async function showPassages(media, hit, asset) {
    const res = await api(assetUrl(asset.id, "/units"));
    const box = el("div", "passages");
    let target = null;
    for (const u of res.units) {
      const p = el("div", "passage");
      if (u.id === hit.unit.id) {
        p.classList.add("matched");
        target = p;
        const text = u.text || "";
        const idx = hit.snippet ? text.indexOf(hit.snippet.replace(/^…|…$/g, "")) : -1;
        p.textContent = text;
        if (idx < 0 && hit.snippet) { /* keep plain text */ }
      } else p.textContent = u.text || "";
      box.append(p);
    }
    if (!res.units.length) box.append(el("p", null, "No text was extracted from this file."));
    media.replaceChildren(box);
    if (target) target.scrollIntoView({ block: "center" });
  }

  function closeDetail() {
    $("detail").hidden = true;
    state.detail = -1;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }

  async function openFile(asset) {
    try {
      const res = await api(assetUrl(asset.id, "/file"));
      const url = URL.createObjectURL(await res.blob());
      window.open(url, "_blank", "noopener");
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (e) { toast(e.message); }
  }

  function moreLike(asset) {
    closeDetail();
    state.like = { id: asset.id, title: asset.title || basename(asset.path) };
    clearImageState();
    runSearch();
  }
  function clearLike() { state.like = null; runSearch(); }

  // ---------- query image ----------
  function clearImageState() {
    state.image = null; state.crop = null; state.imageName = "";
    $("queryimage").hidden = true;
    $("qi-crop").hidden = true;
  }
  function removeImage() {
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    clearImageState();
    runSearch();
  }
  function setQueryImage(file) {
    if (!file || !/^image\//.test(file.type)) { toast("That is not an image. Use PNG, JPEG or WebP."); return; }
    const max = state.status && state.status.server ? state.status.server.max_upload_bytes : 0;
    if (max && file.size > max) { toast("The image is larger than the server's limit of " + fmtBytes(max) + "."); return; }
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    state.like = null;
    state.image = file;
    state.imageName = file.name || "pasted.png";
    state.crop = null;
    state.imageUrl = URL.createObjectURL(file);
    const img = $("qi-img");
    img.onload = () => {
      state.imageSize = [img.naturalWidth, img.naturalHeight];
      $("qi-meta").textContent = state.imageName + " · " + img.naturalWidth + " × " + img.naturalHeight + " px";
    };
    img.src = state.imageUrl;
    $("queryimage").hidden = false;
    $("qi-crop").hidden = true;
    $("qi-clear-crop").hidden = true;
    const help = $("qi-help");
    help.className = "qi-help";
    help.textContent = state.status && !state.status.image_search
      ? "This index has no visual signal yet, so images are searched only if you add text; the server says how to enable it."
      : "Drag on the image to search just that region.";
    runSearch();
  }

  // Crop drawing: pointer drag on the query image; stored in pixels of the image as decoded (EXIF applied).
  (function cropper() {
    const stage = $("qi-stage"), box = $("qi-crop");
    let start = null;
    function pos(ev) {
      const r = $("qi-img").getBoundingClientRect();
      return [Math.min(Math.max(ev.clientX - r.left, 0), r.width), Math.min(Math.max(ev.clientY - r.top, 0), r.height), r.width, r.height];
    }
    function draw(a, b) {
      const [x0, y0, w, h] = a, [x1, y1] = b;
      box.style.left = (100 * Math.min(x0, x1) / w) + "%";
      box.style.top = (100 * Math.min(y0, y1) / h) + "%";
      box.style.width = (100 * Math.abs(x1 - x0) / w) + "%";
      box.style.height = (100 * Math.abs(y1 - y0) / h) + "%";
      box.hidden = false;
    }
    stage.addEventListener("pointerdown", (ev) => { if (ev.button !== 0) return; start = pos(ev); stage.setPointerCapture(ev.pointerId); ev.preventDefault(); });
    stage.addEventListener("pointermove", (ev) => { if (start) draw(start, pos(ev)); });
    stage.addEventListener("pointerup", (ev) => {
      if (!start) return;
      const end = pos(ev), [x0, y0, w, h] = start;
      start = null;
      const img = $("qi-img"), sx = img.naturalWidth / w, sy = img.naturalHeight / h;
      const x = Math.min(x0, end[0]) * sx, y = Math.min(y0, end[1]) * sy;
      const cw = Math.abs(end[0] - x0) * sx, ch = Math.abs(end[1] - y0) * sy;
      if (cw < 8 || ch < 8) { box.hidden = true; if (state.crop) { state.crop = null; $("qi-clear-crop").hidden = true; runSearch(); } return; }
      state.crop = [x, y, Math.min(cw, img.naturalWidth - x), Math.min(ch, img.naturalHeight - y)];
      stage.dataset.crop = state.crop.map(Math.round).join(",");
      $("qi-clear-crop").hidden = false;
      runSearch();
    });
    $("qi-clear-crop").addEventListener("click", () => { state.crop = null; box.hidden = true; $("qi-clear-crop").hidden = true; delete stage.dataset.crop; runSearch(); });
    $("qi-remove").addEventListener("click", removeImage);
  })();

  $("pick-image").addEventListener("click", () => $("image-input").click());
  $("image-input").addEventListener("change", (ev) => { if (ev.target.files[0]) setQueryImage(ev.target.files[0]); ev.target.value = ""; });
  document.addEventListener("paste", (ev) => {
    const item = Array.from(ev.clipboardData ? ev.clipboardData.items : []).find((it) => it.type.startsWith("image/"));
    if (item) { ev.preventDefault(); setQueryImage(item.getAsFile()); }
  });
  let dragDepth = 0;
  const hasFiles = (ev) => ev.dataTransfer && Array.from(ev.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragenter", (ev) => { if (!hasFiles(ev)) return; dragDepth++; $("dropveil").hidden = false; });
  document.addEventListener("dragleave", () => { dragDepth = Math.max(0, dragDepth - 1); if (!dragDepth) $("dropveil").hidden = true; });
  document.addEventListener("dragover", (ev) => { if (hasFiles(ev)) ev.preventDefault(); });
  document.addEventListener("drop", (ev) => {
    if (!hasFiles(ev)) return;
    ev.preventDefault(); dragDepth = 0; $("dropveil").hidden = true;
    const f = Array.from(ev.dataTransfer.files).find((x) => x.type.startsWith("image/"));
    if (f) setQueryImage(f); else toast("Drop an image (PNG, JPEG, WebP) to search with it.");
  });

  // ---------- filters ----------
  document.querySelectorAll(".chip").forEach((c) => c.addEventListener("click", () => {
    document.querySelectorAll(".chip").forEach((x) => x.classList.toggle("active", x === c));
    state.type = c.dataset.type;
    scheduleSearch(0);
  }));
  $("f-path").addEventListener("input", (ev) => { state.path = ev.target.value.trim(); scheduleSearch(300); });
  $("f-after").addEventListener("change", (ev) => { state.after = ev.target.value; scheduleSearch(0); });
  $("f-before").addEventListener("change", (ev) => { state.before = ev.target.value; scheduleSearch(0); });
  function resetFilters() {
    state.type = state.path = state.after = state.before = "";
    $("f-path").value = $("f-after").value = $("f-before").value = "";
    document.querySelectorAll(".chip").forEach((x) => x.classList.toggle("active", x.dataset.type === ""));
    runSearch();
  }
  $("f-reset").addEventListener("click", resetFilters);

  // ---------- search box ----------
  $("q").addEventListener("input", (ev) => { state.text = ev.target.value; state.like = null; scheduleSearch(); });
  $("searchbar").addEventListener("submit", (ev) => { ev.preventDefault(); state.text = $("q").value; scheduleSearch(0); });

  // ---------- detail buttons ----------
  $("d-close").addEventListener("click", closeDetail);
  $("detail").addEventListener("click", (ev) => { if (ev.target === $("detail")) closeDetail(); });

  // ---------- adding files ----------
  $("add-files").addEventListener("change", async (ev) => {
    const files = Array.from(ev.target.files);
    ev.target.value = "";
    if (!files.length) return;
    const fd = new FormData();
    for (const f of files) fd.append("files", f, f.name);
    toast("Indexing " + files.length + " file(s)…");
    try {
      const r = await api("/index", { method: "POST", body: fd });
      const failed = r.failed.length ? ", " + r.failed.length + " failed: " + r.failed.map((x) => basename(x.path) + " (" + x.reason + ")").join("; ") : "";
      toast("Indexed " + r.indexed + ", unchanged " + r.skipped + failed);
      await loadStatus();
      runSearch();
    } catch (e) { toast(e.message); }
  });

  // ---------- token + status ----------
  function askToken(wrong) {
    $("tokenbox").hidden = false;
    $("t-error").hidden = !wrong;
    $("token").focus();
  }
  $("tokenform").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("tokenbox").hidden = true;
    start();
  });

  async function loadStatus() {
    const st = await api("/status");
    state.status = st;
    const types = Object.entries(st.assets_by_type || {}).map(([k, v]) => v + " " + (TYPE_LABEL[k] || k).toLowerCase() + (v === 1 ? "" : "s"));
    const info = $("index-info");
    info.replaceChildren(st.assets + " files indexed" + (types.length ? " · " + types.join(", ") : ""));
    if (st.failed && st.failed.length) {
      const b = el("button", "linkbtn failed-btn", st.failed.length + " failed");
      b.id = "failed-btn";
      b.title = "Show which files failed and why";
      b.addEventListener("click", showFailures);
      info.append(" · ", b);
    }
    if (st.skipped && st.skipped.length) info.append(" · " + st.skipped.length + " skipped (unsupported type)");
    info.title = st.path;
    return st;
  }

  function showFailures() {
    const st = state.status || {};
    let panel = $("failures");
    if (!panel) {
      panel = el("div", "modal");
      panel.id = "failures";
      panel.setAttribute("role", "dialog");
      panel.setAttribute("aria-modal", "true");
      panel.addEventListener("click", (ev) => { if (ev.target === panel) panel.hidden = true; });
      document.body.append(panel);
    }
    const sheet = el("div", "sheet failures-sheet");
    const head = el("div", "failures-head");
    head.append(el("h2", null, (st.failed || []).length + " file(s) could not be indexed"));
    const close = el("button", "linkbtn", "Close");
    close.addEventListener("click", () => { panel.hidden = true; });
    head.append(close);
    sheet.append(head, el("p", "muted", "They are retried on the next index run. Forget one to stop listing it (it is not deleted from disk)."));
    const list = el("ul", "failures-list");
    for (const f of st.failed || []) {
      const li = el("li");
      const text = el("div");
      text.append(el("div", "fpath", f.path), el("div", "freason", f.reason));
      const forget = el("button", null, "Forget");
      forget.addEventListener("click", async () => {
        forget.disabled = true;
        try {
          await api("/index/remove", { method: "POST", body: JSON.stringify({ items: [f.path] }), headers: { "Content-Type": "application/json" } });
          await loadStatus();
          showFailures();
          if (!(state.status.failed || []).length) panel.hidden = true;
        } catch (e) { forget.disabled = false; toast(e.message); }
      });
      li.append(text, forget);
      list.append(li);
    }
    sheet.append(list);
    panel.replaceChildren(sheet);
    panel.hidden = false;
  }

  async function start() {
    try {
      await loadStatus();
    } catch (e) {
      if (e.status === 401) return;
      showError(e);
      return;
    }
    runSearch();
  }

  start();
})();
