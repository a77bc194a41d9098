// Draws the mer-tag report from the JSON in #report-data. Every string from the results file reaches the
// page through textContent, setAttribute on inert attributes, or <title> text: never as markup.
(function () {
  "use strict";

  const data = JSON.parse(document.getElementById("report-data").textContent);
  const S = data.summary;
  const T = data.table;
  const COLORS = data.colors;
  const NAMES = S.classes.map((c) => c.name);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const numberFormat = new Intl.NumberFormat("en");
  const ROW_H = 26;

  // ---- helpers ----------------------------------------------------------------------------------

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function tooltip(node, text) {
    node.append(svg("title", {}, text));
    return node;
  }

  // Text with command-line options ("--timeline") as <code> that never breaks: a line break after the first
  // hyphen of a narrow screen would turn "--timeline" into "-" and "-timeline". Text nodes only, never markup.
  function withOptions(text) {
    return text.split(/(--[a-z][a-z-]*)/).filter(Boolean)
      .map((part) => (part.startsWith("--") ? h("code", { class: "option", text: part }) : document.createTextNode(part)));
  }

  const num = (n) => numberFormat.format(n);
  // "1 track", "2 tracks": every count the page writes in words goes through here.
  const plural = (n, noun, nouns) => `${num(n)} ${n === 1 ? noun : nouns || noun + "s"}`;
  const pct = (part, whole) => (whole ? ((100 * part) / whole).toFixed(1) : "0.0") + "%";
  const color = (cluster) => COLORS[cluster - 1] || "#888";

  function clock(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "";
    const s = Math.round(seconds);
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return hh ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  }

  // Search ignores case and accents ("uber" finds "\u00dcber", "BEYONCE" finds "Beyonc\u00e9"): NFD splits an
  // accented letter into its base letter and combining marks, which are dropped. Letters that do not
  // decompose fold by hand. NFD works letter by letter, so each distinct letter is folded once and
  // remembered (2.5x faster than normalising whole strings); pure-ASCII text, most tags, is only lower-cased.
  const LETTER_FOLDS = { "\u00df": "ss", "\u00e6": "ae", "\u0153": "oe", "\u00f8": "o", "\u0111": "d", "\u00f0": "d",
    "\u0142": "l", "\u00fe": "th", "\u0131": "i", "\u03c2": "\u03c3" };
  const NON_ASCII = /[^\x00-\x7f]/;
  const NON_ASCII_LETTERS = /[^\x00-\x7f]/gu;
  const foldedLetters = new Map();
  function foldLetter(letter) {
    let folded = foldedLetters.get(letter);
    if (folded === undefined) {
      folded = letter.normalize("NFD").replace(/\p{M}+/gu, "");
      folded = LETTER_FOLDS[folded] || folded;
      foldedLetters.set(letter, folded);
    }
    return folded;
  }
  function fold(text) {
    const lower = text.toLowerCase();
    return NON_ASCII.test(lower) ? lower.replace(NON_ASCII_LETTERS, foldLetter) : lower;
  }

  // A file name percent-encoded exactly as summary.file_url (Python's quote) encodes a path segment; the
  // folder's URL comes ready-made from the data. encodeURIComponent alone would leave !'()* as they are.
  const encodeSegment = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

  // A track's title as a link that opens (plays) its file; plain text when the path was relative.
  function fileLink(url, text, path) {
    if (!url || !url.startsWith("file:")) return h("span", { class: "name", title: path || "", text });
    return h("a", { class: "name file-link", href: url, target: "_blank", rel: "noopener", title: "Open " + path, text });
  }

  function shorten(text, maxChars) {
    return text.length > maxChars ? text.slice(0, Math.max(1, maxChars - 1)) + "\u2026" : text;
  }

  // A round axis step (1, 2 or 5 times a power of ten) giving about `ticks` gridlines up to `max`.
  function niceStep(max, ticks) {
    const raw = max / ticks;
    const power = 10 ** Math.floor(Math.log10(raw));
    return [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw);
  }

  const fixed2 = (value) => (value === null || value === undefined ? "\u2013" : value.toFixed(2));

  function newChart(container, width, height) {
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    container.replaceChildren(root);
    return root;
  }

  function activateOnKey(node, action) {
    node.setAttribute("tabindex", "0");
    node.setAttribute("role", "button");
    node.addEventListener("click", action);
    node.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        action();
      }
    });
  }

  // ---- header, legend, cards --------------------------------------------------------------------

  function drawHeader() {
    document.getElementById("title").textContent = data.title;
    const parts = [];
    if (S.library_root) parts.push("Library " + S.library_root);
    if (S.models.length) parts.push("model " + S.models.join(", "));
    parts.push("generated " + data.generated);
    document.getElementById("meta").textContent = parts.join("  \u00b7  ");
    const legend = document.getElementById("legend");
    NAMES.forEach((name, i) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = color(i + 1);
      legend.append(h("li", {}, swatch, name));
    });
  }

  function drawCards() {
    const t = S.totals;
    const hours = t.duration_s ? (t.duration_s / 3600).toFixed(1) + " h" : "\u2013";
    const cards = [
      ["Tracks", num(t.tracks), "audio files scanned"],
      ["Predicted", num(t.predicted), pct(t.predicted, t.tracks) + " of tracks"],
      ["Failed", num(t.errors), pct(t.errors, t.tracks) + " of tracks", t.errors > 0],
      ["With lyrics", num(t.with_lyrics), pct(t.with_lyrics, t.predicted) + " of predicted"],
      ["With MIDI", num(t.with_midi), pct(t.with_midi, t.predicted) + " of predicted"],
      ["Mean confidence", fixed2(t.mean_confidence), "median " + fixed2(S.confidence.median)],
      ["Playing time", hours, t.with_notes ? `${num(t.with_notes)} with notes` : "of predicted tracks"],
    ];
    const box = document.getElementById("cards");
    for (const [label, value, sub, bad] of cards) {
      box.append(h("div", { class: bad ? "card bad" : "card" },
        h("div", { class: "label", text: label }), h("div", { class: "value", text: value }), h("div", { class: "sub", text: sub })));
    }
  }

  // ---- charts -----------------------------------------------------------------------------------

  function drawDistribution() {
    const box = document.getElementById("chart-distribution");
    const width = Math.max(260, box.clientWidth);
    const labelW = 96;
    const valueW = 110;
    const barW = width - labelW - valueW;
    const root = newChart(box, width, NAMES.length * (ROW_H + 8));
    const max = Math.max(1, ...S.distribution.map((d) => d.count));
    S.distribution.forEach((d, i) => {
      const y = i * (ROW_H + 8);
      const g = svg("g", { class: "clickable", "aria-label": `${NAMES[i]}: ${plural(d.count, "track")}` });
      g.append(
        svg("text", { x: labelW - 8, y: y + ROW_H / 2 + 4, "text-anchor": "end", class: "label" }, shorten(NAMES[i], 14)),
        svg("rect", { x: labelW, y, width: barW, height: ROW_H, rx: 4, class: "track" }),
        svg("rect", { x: labelW, y, width: Math.max(d.count ? 2 : 0, (barW * d.count) / max), height: ROW_H, rx: 4, fill: color(d.cluster), class: "bar" }),
        svg("text", { x: labelW + barW + 8, y: y + ROW_H / 2 + 4 }, `${num(d.count)}  ${pct(d.count, S.totals.predicted)}`),
      );
      const conf = d.mean_confidence === null ? "" : `, mean confidence ${d.mean_confidence.toFixed(2)}`;
      tooltip(g, `${NAMES[i]}: ${plural(d.count, "track")} (${pct(d.count, S.totals.predicted)})${conf}`);
      activateOnKey(g, () => table.showMood(d.cluster));
      root.append(g);
    });
  }

  function drawConfidence() {
    const box = document.getElementById("chart-confidence");
    const width = Math.max(260, box.clientWidth);
    const height = 224;
    const m = { left: 58, right: 8, top: 8, bottom: 44 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const bins = S.confidence.counts;
    const tallest = Math.max(1, ...bins.map((row) => row.reduce((a, b) => a + b, 0)));
    const step = Math.max(1, niceStep(tallest, 4)); // the bars count whole tracks: no tick at half a track
    const max = Math.ceil(tallest / step) * step;
    const root = newChart(box, width, height);
    for (let value = 0; value <= max; value += step) {
      const y = m.top + plotH - (plotH * value) / max;
      root.append(svg("line", { x1: m.left, x2: width - m.right, y1: y, y2: y, class: "grid-line" }));
      root.append(svg("text", { x: m.left - 6, y: y + 4, "text-anchor": "end", class: "muted" }, num(value)));
    }
    const colW = plotW / bins.length;
    bins.forEach((row, b) => {
      let top = m.top + plotH;
      row.forEach((n, c) => {
        if (!n) return;
        const hgt = (plotH * n) / max;
        top -= hgt;
        const lo = (b * S.confidence.bin_width).toFixed(2);
        const hi = ((b + 1) * S.confidence.bin_width).toFixed(2);
        root.append(tooltip(svg("rect", { x: m.left + b * colW + 1, y: top, width: Math.max(1, colW - 2), height: hgt, fill: color(c + 1) }),
          `${NAMES[c]}, confidence ${lo}\u2013${hi}: ${plural(n, "track")}`));
      });
    });
    for (let tick = 0; tick <= 5; tick++) {
      const x = m.left + (plotW * tick) / 5;
      root.append(svg("text", { x, y: m.top + plotH + 16, "text-anchor": "middle", class: "muted" }, (tick / 5).toFixed(1)));
    }
    const xTitle = { x: m.left + plotW / 2, y: height - 4, "text-anchor": "middle", class: "axis-title" };
    root.append(svg("text", xTitle, "confidence in the predicted mood"));
    const yTitle = { x: 12, y: m.top + plotH / 2, "text-anchor": "middle", class: "axis-title" };
    root.append(svg("text", { ...yTitle, transform: `rotate(-90 ${yTitle.x} ${yTitle.y})` }, "tracks"));
    if (S.confidence.median !== null) {
      const x = m.left + plotW * S.confidence.median;
      root.append(tooltip(svg("line", { x1: x, x2: x, y1: m.top, y2: m.top + plotH, class: "median" }), `median ${fixed2(S.confidence.median)}`));
    }
    document.getElementById("confidence-hint").textContent =
      `Probability of the predicted mood, stacked by mood. Dashed line: median ${fixed2(S.confidence.median)}.`;
  }

  function drawCoverage() {
    const box = document.getElementById("chart-coverage");
    const t = S.totals;
    const rows = [
      ["Lyrics from sidecar", t.lyrics_sidecar],
      ["Lyrics embedded", t.lyrics_embedded],
      ["No lyrics", t.predicted - t.with_lyrics],
      ["MIDI", t.with_midi],
      ["Timeline", t.with_timeline],
    ];
    const width = Math.max(260, box.clientWidth);
    const labelW = 130;
    const valueW = 110;
    const barW = width - labelW - valueW;
    const root = newChart(box, width, rows.length * (ROW_H + 8));
    rows.forEach(([label, n], i) => {
      const y = i * (ROW_H + 8);
      const share = t.predicted ? n / t.predicted : 0;
      root.append(
        svg("text", { x: labelW - 8, y: y + ROW_H / 2 + 4, "text-anchor": "end" }, label),
        svg("rect", { x: labelW, y, width: barW, height: ROW_H, rx: 4, class: "track" }),
        tooltip(svg("rect", { x: labelW, y, width: barW * share, height: ROW_H, rx: 4, class: "accent" }), `${label}: ${num(n)}`),
        svg("text", { x: labelW + barW + 8, y: y + ROW_H / 2 + 4 }, `${num(n)}  ${pct(n, t.predicted)}`),
      );
    });
  }

  const GROUPINGS = [
    { key: "by_artist", label: "artist", shown: 15 },
    { key: "by_album", label: "album", shown: 15 },
    { key: "by_folder", label: "folder", shown: 15 },
  ];
  let grouping = GROUPINGS[0];

  function drawGroupTabs() {
    const tabs = document.getElementById("group-tabs");
    for (const g of GROUPINGS) {
      const button = h("button", { type: "button", role: "tab", "aria-selected": String(g === grouping), text: g.label[0].toUpperCase() + g.label.slice(1) });
      button.addEventListener("click", () => {
        grouping = g;
        tabs.querySelectorAll("button").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
        drawGroups();
      });
      tabs.append(button);
    }
  }

  function drawGroups() {
    const box = document.getElementById("chart-groups");
    const group = S[grouping.key];
    const rows = group.rows.slice(0, grouping.shown);
    document.getElementById("group-label").textContent = grouping.label;
    const which = rows.length < group.groups
      ? `the ${num(rows.length)} ${grouping.label}s with most tracks (of ${num(group.groups)})`
      : rows.length === 1 ? `the one ${grouping.label}` : `all ${num(rows.length)} ${grouping.label}s`;
    document.getElementById("group-hint").textContent = rows.length
      ? `Share of each mood in ${which}. Click one to list its tracks.`
      : "No predicted tracks.";
    const width = Math.max(280, box.clientWidth);
    const labelW = Math.min(260, Math.round(width * 0.32));
    const valueW = 56;
    const barW = width - labelW - valueW;
    const root = newChart(box, width, Math.max(1, rows.length * (ROW_H + 6)));
    rows.forEach((row, i) => {
      const y = i * (ROW_H + 6);
      const name = row.detail ? `${row.name} \u2013 ${row.detail}` : row.name;
      const g = svg("g", { class: "clickable", "aria-label": `${name}: ${plural(row.total, "track")}` });
      g.append(svg("text", { x: labelW - 8, y: y + ROW_H / 2 + 4, "text-anchor": "end", class: "label" }, shorten(name, Math.floor(labelW / 7))));
      let x = labelW;
      row.counts.forEach((n, c) => {
        if (!n) return;
        const w = (barW * n) / row.total;
        g.append(tooltip(svg("rect", { x, y, width: w, height: ROW_H, fill: color(c + 1), class: "bar" }),
          `${name}\n${NAMES[c]}: ${num(n)} of ${num(row.total)} (${pct(n, row.total)})`));
        x += w;
      });
      g.append(svg("text", { x: labelW + barW + 8, y: y + ROW_H / 2 + 4, class: "muted" }, num(row.total)));
      activateOnKey(g, () => table.showQuery(row.name));
      root.append(g);
    });
  }

  // ---- valence-arousal plane --------------------------------------------------------------------

  // Where each quadrant's name goes: Q1 top right, Q2 top left, Q3 bottom left, Q4 bottom right.
  const QUADRANT_CORNERS = [[1, 1], [0, 1], [0, 0], [1, 0]];
  const LINE_H = 15; // a line of 12px chart text
  const PLANE_HIT = 8; // how near (in plot units) the pointer must come to a dot to name it
  let planeWidth = 0;
  let planeDots = null; // the tracks with valence and arousal, in drawing order

  // Every track with both numbers, shuffled (a fixed seed, so the picture is the same each time): dots
  // drawn mood by mood, or in scan order, would let one mood or folder paint over the rest.
  function dotOrder() {
    const dots = [];
    for (let i = 0; i < T.count; i++) if (T.valence[i] >= 0 && T.arousal[i] >= 0) dots.push(i);
    let seed = 1;
    for (let j = dots.length - 1; j > 0; j--) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const k = seed % (j + 1);
      [dots[j], dots[k]] = [dots[k], dots[j]];
    }
    return dots;
  }

  // Smaller and fainter dots as the library grows, so a crowd reads as density rather than one blot.
  function dotStyle(n) {
    if (n <= 500) return { r: 3.5, opacity: 0.85 };
    if (n <= 3000) return { r: 2.6, opacity: 0.7 };
    if (n <= 10000) return { r: 2, opacity: 0.55 };
    return { r: 1.5, opacity: 0.45 };
  }

  function drawPlane() {
    const va = S.valence_arousal;
    if (!va || !va.on_plane || !T.valence) return; // no valence-arousal in these results: the panel stays hidden
    document.getElementById("plane-panel").hidden = false; // before measuring: a hidden box is 0 wide
    const box = document.getElementById("plane");
    const width = Math.min(640, Math.max(300, box.clientWidth));
    if (width === planeWidth) return; // 20,000 dots are not redrawn for a resize that changed nothing
    planeWidth = width;
    planeDots ||= dotOrder();
    // The quadrants are named outside the frame, by their corners (confident tracks crowd the corners);
    // on a narrow screen two names side by side would touch, so each takes two lines.
    const nameLines = width < 480 ? 2 : 1;
    const block = (nameLines + 1) * LINE_H; // the name and its count
    const m = { left: 50, right: 14, top: block + 10, bottom: 44 + block + 4 };
    const side = width - m.left - m.right;
    const height = side + m.top + m.bottom;
    const x = (thousandths) => m.left + (side * thousandths) / 1000;
    const y = (thousandths) => m.top + side - (side * thousandths) / 1000;
    const root = newChart(box, width, height);
    root.setAttribute("aria-label", `${plural(planeDots.length, "track")} by valence and arousal`);
    root.append(svg("rect", { x: m.left, y: m.top, width: side, height: side, class: "plane-frame" }));
    for (let tick = 0; tick <= 4; tick++) {
      const at = tick * 250;
      const mid = tick === 2 ? " plane-mid" : "";
      root.append(
        svg("line", { x1: x(at), x2: x(at), y1: m.top, y2: m.top + side, class: "grid-line" + mid }),
        svg("line", { x1: m.left, x2: m.left + side, y1: y(at), y2: y(at), class: "grid-line" + mid }),
        svg("text", { x: x(at), y: m.top + side + 16, "text-anchor": "middle", class: "muted" }, (at / 1000).toFixed(2)),
        svg("text", { x: m.left - 6, y: y(at) + 4, "text-anchor": "end", class: "muted" }, (at / 1000).toFixed(2)),
      );
    }
    const { r, opacity } = dotStyle(planeDots.length);
    const dots = svg("g", { class: "plane-dots", "fill-opacity": opacity });
    const fragment = document.createDocumentFragment();
    for (const i of planeDots) { // createElementNS by hand: this loop runs once per track
      const dot = document.createElementNS(SVG_NS, "circle");
      dot.setAttribute("cx", x(T.valence[i]).toFixed(1));
      dot.setAttribute("cy", y(T.arousal[i]).toFixed(1));
      dot.setAttribute("r", r);
      dot.setAttribute("fill", color(T.cluster[i]));
      fragment.append(dot);
    }
    dots.append(fragment);
    root.append(dots);
    va.quadrants.forEach((q, index) => {
      const [right, top] = QUADRANT_CORNERS[index];
      const anchor = { x: right ? m.left + side : m.left, "text-anchor": right ? "end" : "start" };
      const name = `Q${q.quadrant} ${q.name}`;
      const lines = nameLines === 2 && name.includes(", ") ? [name.slice(0, name.indexOf(", ") + 1), name.slice(name.indexOf(", ") + 2)] : [name];
      const firstY = top ? 12 : height - block + 8;
      lines.forEach((line, l) => root.append(svg("text", { ...anchor, y: firstY + l * LINE_H, class: "quadrant-label" }, line)));
      root.append(svg("text", { ...anchor, y: firstY + lines.length * LINE_H, class: "muted" }, `${plural(q.count, "track")}  ${pct(q.count, va.tracks)}`));
    });
    const xTitle = { x: m.left + side / 2, y: m.top + side + 34, "text-anchor": "middle", class: "axis-title" };
    root.append(svg("text", xTitle, "valence: negative \u2192 positive"));
    const yTitle = { x: 12, y: m.top + side / 2, "text-anchor": "middle", class: "axis-title" };
    root.append(svg("text", { ...yTitle, transform: `rotate(-90 ${yTitle.x} ${yTitle.y})` }, "arousal: calm \u2192 energetic"));
    planePointer(box, root, planeDots.map((i) => [x(T.valence[i]), y(T.arousal[i]), i]));
  }

  // The page's own tooltip: the dot nearest the pointer, found in a grid of cells PLANE_HIT wide, so a
  // move looks at a few dots rather than every track; and a click finds the track in the table.
  function planePointer(box, root, points) {
    const cells = new Map();
    const cellOf = (px, py) => Math.floor(px / PLANE_HIT) * 4096 + Math.floor(py / PLANE_HIT);
    for (const point of points) {
      const key = cellOf(point[0], point[1]);
      if (!cells.has(key)) cells.set(key, []);
      cells.get(key).push(point);
    }
    const tip = h("div", { class: "plane-tip", hidden: "" });
    const ring = h("div", { class: "plane-ring", hidden: "" });
    box.append(ring, tip);

    function nearest(event) {
      const at = new DOMPoint(event.clientX, event.clientY).matrixTransform(root.getScreenCTM().inverse());
      let best = null;
      let bestDistance = PLANE_HIT * PLANE_HIT;
      for (let dx = -1; dx <= 1; dx++) {
        for (let dy = -1; dy <= 1; dy++) {
          for (const point of cells.get(cellOf(at.x, at.y) + dx * 4096 + dy) || []) {
            const distance = (point[0] - at.x) ** 2 + (point[1] - at.y) ** 2;
            if (distance <= bestDistance) { best = point; bestDistance = distance; } // ties: the dot drawn on top
          }
        }
      }
      return best;
    }

    function show(point) {
      const i = point[2];
      const on = new DOMPoint(point[0], point[1]).matrixTransform(root.getScreenCTM());
      const frame = box.getBoundingClientRect();
      const left = on.x - frame.left;
      const top = on.y - frame.top;
      const track = table.describe(i);
      tip.replaceChildren(
        h("div", { class: "name", text: track.title }),
        track.artist ? h("div", { text: track.artist }) : null,
        h("div", { class: "muted", text: `${NAMES[T.cluster[i] - 1]} \u00b7 valence ${(T.valence[i] / 1000).toFixed(2)} \u00b7 arousal ${(T.arousal[i] / 1000).toFixed(2)}` }),
      );
      tip.dataset.track = String(i);
      tip.hidden = ring.hidden = false;
      ring.style.left = left + "px";
      ring.style.top = top + "px";
      // Beside the dot, on the side with more room, so the tip never leaves the panel.
      tip.style.left = (left < frame.width / 2 ? left + 12 : left - 12 - tip.offsetWidth) + "px";
      tip.style.top = (top < frame.height / 2 ? top + 12 : top - 12 - tip.offsetHeight) + "px";
    }

    function hide() {
      tip.hidden = ring.hidden = true;
      delete tip.dataset.track;
    }

    root.addEventListener("pointermove", (event) => {
      const point = nearest(event);
      if (point) show(point); else hide(); // no cursor change: every dot would inherit it, 20,000 restyles a move
    });
    root.addEventListener("pointerleave", hide);
    root.addEventListener("click", (event) => {
      const point = nearest(event);
      if (point) table.showQuery(table.describe(point[2]).path);
    });
  }

  function drawPlaneSide() {
    const va = S.valence_arousal;
    if (!planeDots) return; // no plane drawn
    const n = planeDots.length;
    const missing = T.count - n; // predicted, but without valence and arousal from its model
    const without = missing ? ` ${plural(missing, "predicted track")} had no valence\u2013arousal from its model and ${missing === 1 ? "is" : "are"} not shown.` : "";
    document.getElementById("plane-hint").textContent =
      `Each dot is one of ${plural(n, "track")}: left to right, how likely it is positive (valence); bottom to top, how likely it is energetic (arousal); coloured by its mood. Point at a dot for its title, click it to find it in the table.${without}`;
    const rows = va.quadrants.map((q) => h("tr", {},
      h("td", { text: `Q${q.quadrant} ${q.name}` }), h("td", { class: "num", text: num(q.count) }), h("td", { class: "num", text: pct(q.count, va.tracks) })));
    document.querySelector("#quadrants tbody").append(...rows);
    document.getElementById("plane-means").textContent =
      `Mean valence ${fixed2(va.mean_valence)}, mean arousal ${fixed2(va.mean_arousal)} (0 to 1).`;
    const perMood = NAMES.map(() => 0);
    for (const i of planeDots) perMood[T.cluster[i] - 1] += 1;
    const legend = document.getElementById("plane-legend");
    NAMES.forEach((name, c) => {
      const swatch = h("span", { class: "swatch" });
      swatch.style.background = color(c + 1);
      legend.append(h("li", {}, swatch, `${name} `, h("span", { class: "muted", text: num(perMood[c]) })));
    });
  }

  // ---- timelines --------------------------------------------------------------------------------

  function timelineRow(track) {
    const end = Math.max(track.duration_s || 0, ...track.segments.map((s) => s.end_s));
    const strip = svg("svg", { viewBox: `0 0 ${end} 1`, preserveAspectRatio: "none", role: "img" });
    for (const seg of track.segments) {
      const conf = seg.confidence === null ? "" : ` (${Math.round(seg.confidence * 100)}%)`;
      strip.append(tooltip(svg("rect", { x: seg.start_s, y: 0, width: seg.end_s - seg.start_s, height: 1, fill: color(seg.cluster) }),
        `${clock(seg.start_s)}\u2013${clock(seg.end_s)} ${NAMES[seg.cluster - 1] || "class " + seg.cluster}${conf}`));
    }
    const by = [track.artist, track.album].filter(Boolean).join(" \u2013 ");
    return h("div", { class: "timeline-row" },
      h("div", { class: "timeline-label" }, fileLink(track.url, track.title, track.path), h("div", { class: "by", text: by || track.path })),
      h("div", {}, h("div", { class: "timeline-strip" }, strip),
        h("div", { class: "timeline-axis" }, h("span", { text: "0:00" }), h("span", { text: clock(end) })))
    );
  }

  function drawTimelines() {
    const tl = S.timelines;
    const box = document.getElementById("timelines");
    const hint = document.getElementById("timeline-hint");
    if (!tl.tracks.length) {
      hint.replaceChildren(...withOptions(`No track of ${clock(tl.long_track_s)} or longer has a timeline. Scan with --timeline to see moods change within long tracks.`));
      return;
    }
    const shown = tl.tracks.length;
    const which = shown < tl.long_tracks ? `the ${shown === 1 ? "" : num(shown) + " "}longest of ${plural(tl.long_tracks, "track")}`
      : shown === 1 ? "the one track" : `all ${plural(shown, "track")}`;
    hint.replaceChildren(...withOptions(`Mood of each chunk, for ${which} of ${clock(tl.long_track_s)} or longer scanned with --timeline.`));
    const rows = tl.tracks.map(timelineRow);
    const firstShown = 8;
    box.append(...rows.slice(0, firstShown));
    if (rows.length > firstShown) {
      const more = h("button", { type: "button", text: `Show ${rows.length - firstShown} more` });
      const wrap = h("div", { class: "more" }, more);
      more.addEventListener("click", () => { wrap.replaceWith(...rows.slice(firstShown)); });
      box.append(wrap);
    }
  }

  // ---- top tracks -------------------------------------------------------------------------------

  function drawTopTracks() {
    const grid = document.getElementById("top-tracks");
    for (const mood of S.top_tracks) {
      const head = h("h3", {}, h("span", { text: mood.name }), h("span", { text: num(S.distribution[mood.cluster - 1].count) }));
      head.style.background = color(mood.cluster);
      const list = h("ol");
      for (const track of mood.tracks) {
        const by = [track.artist, track.album].filter(Boolean).join(" \u2013 ");
        list.append(h("li", {},
          h("div", { class: "row" }, fileLink(track.url, track.title, track.path),
            h("span", { class: "conf", text: Math.round(track.confidence * 100) + "%" })),
          by ? h("div", { class: "by", text: by }) : null));
      }
      const body = mood.tracks.length ? list : h("p", { class: "empty", text: "No tracks." });
      grid.append(h("div", { class: "top-card" }, head, body));
    }
  }

  // ---- track table ------------------------------------------------------------------------------

  const table = (function () {
    const n = T.count;
    const titleOf = (i) => T.title[i] || T.file[i];
    const valueOf = (column, i) => (T[column][i] < 0 ? "" : T[column + "_values"][T[column][i]]);
    const pathOf = (i) => { const folder = valueOf("folder", i); return folder === "." ? T.file[i] : folder + "/" + T.file[i]; };
    const urlOf = (i) => {
      const folder = T.folder[i] < 0 ? null : T.folder_urls[T.folder[i]];
      return folder === null ? null : T.url_prefix + folder + encodeSegment(T.file[i]);
    };
    let haystack = null; // folded (lower-case, accent-free) searchable text per row, built on the first search

    // Names sort naturally ("Artist 2" before "Artist 10"): each distinct value gets a rank once, and
    // rows then sort by number, which stays fast at 100k rows.
    const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
    function naturalRanks(values) {
      const order = values.map((_, i) => i).sort((a, b) => collator.compare(values[a], values[b]) || a - b);
      const ranks = new Array(values.length);
      order.forEach((value, rank) => { ranks[value] = rank; });
      return ranks;
    }
    const RANKS = { artist: naturalRanks(T.artist_values), album: naturalRanks(T.album_values), folder: naturalRanks(T.folder_values) };
    const MISSING_LAST = Infinity; // an unknown artist or album sorts after every name
    const byName = (column) => (i) => (T[column][i] < 0 ? MISSING_LAST : RANKS[column][T[column][i]]);
    let titleRanks = null; // built on the first sort by title
    const byTitle = (i) => (titleRanks ||= naturalRanks(Array.from({ length: n }, (_, j) => titleOf(j))))[i];

    const COLUMNS = [
      { key: "title", label: "Title", sort: byTitle },
      { key: "artist", label: "Artist", sort: byName("artist") },
      { key: "album", label: "Album", sort: byName("album") },
      { key: "mood", label: "Mood", sort: (i) => T.cluster[i] },
      { key: "confidence", label: "Confidence", sort: (i) => T.confidence[i], numeric: true, descending: true },
      { key: "duration", label: "Length", sort: (i) => T.duration[i], numeric: true },
      { key: "flags", label: "Lyrics / MIDI", sort: (i) => T.flags[i] },
      { key: "path", label: "Path", sort: byName("folder") },
    ];
    const state = { query: "", mood: 0, sort: COLUMNS[1], direction: 1, page: 0, pageSize: 50 };
    let view = [];

    const filterBox = document.getElementById("filter");
    const moodBox = document.getElementById("mood-filter");
    const sizeBox = document.getElementById("page-size");
    const body = document.querySelector("#tracks tbody");
    const headRow = document.getElementById("tracks-head");

    function buildHaystack() {
      // Artists, albums and folders repeat: each distinct value is folded once.
      const folded = { artist: T.artist_values.map(fold), album: T.album_values.map(fold), folder: T.folder_values.map(fold) };
      const foldedOf = (column, i) => (T[column][i] < 0 ? "" : folded[column][T[column][i]]);
      haystack = new Array(n);
      for (let i = 0; i < n; i++) {
        const folder = valueOf("folder", i) === "." ? "" : foldedOf("folder", i) + "/";
        // File name, then title: one fold per row, with the folder and file name still one string. join()
        // makes one flat string, which the searches then scan faster than a chain of concatenations.
        haystack[i] = [foldedOf("artist", i), foldedOf("album", i), folder + fold(T.file[i] + "\n" + titleOf(i))].join("\n");
      }
    }

    function filterRows() {
      const terms = fold(state.query).split(/\s+/).filter(Boolean);
      if (terms.length && !haystack) buildHaystack();
      const rows = [];
      for (let i = 0; i < n; i++) {
        if (state.mood && T.cluster[i] !== state.mood) continue;
        if (terms.length && !terms.every((t) => haystack[i].includes(t))) continue;
        rows.push(i);
      }
      return rows;
    }

    function sortRows(rows) {
      const key = state.sort.sort;
      const dir = state.direction;
      rows.sort((a, b) => {
        const ka = key(a);
        const kb = key(b);
        if (ka < kb) return -dir;
        if (ka > kb) return dir;
        return a - b; // scan order breaks ties, which keeps an album's tracks together
      });
      return rows;
    }

    function refresh(keepPage) {
      view = sortRows(filterRows());
      if (!keepPage) state.page = 0;
      render();
      body.dataset.query = state.query; // what the rows shown were filtered by (the browser test waits for it)
    }

    function flagText(flags) {
      const lyrics = flags & 1 ? "sidecar" : flags & 2 ? "embedded" : "";
      return [lyrics, flags & 4 ? "MIDI" : ""].filter(Boolean).join(" + ");
    }

    function cells(i) {
      const dot = h("span", { class: "swatch" });
      dot.style.background = color(T.cluster[i]);
      const conf = T.confidence[i];
      const bar = h("span", { class: "confbar" }, h("span"));
      bar.firstChild.style.width = Math.max(0, conf / 10) + "%";
      const path = pathOf(i);
      return [
        h("td", { class: "title" }, fileLink(urlOf(i), titleOf(i), path)),
        h("td", { title: valueOf("artist", i), text: valueOf("artist", i) }),
        h("td", { title: valueOf("album", i), text: valueOf("album", i) }),
        h("td", {}, h("span", { class: "mood" }, dot, NAMES[T.cluster[i] - 1])),
        h("td", { class: "num" }, bar, conf < 0 ? "" : (conf / 1000).toFixed(2)),
        h("td", { class: "num", text: clock(T.duration[i]) }),
        h("td", { text: flagText(T.flags[i]) }),
        h("td", { class: "path", title: path, text: path }),
      ];
    }

    function render() {
      const pages = Math.max(1, Math.ceil(view.length / state.pageSize));
      state.page = Math.min(state.page, pages - 1);
      const start = state.page * state.pageSize;
      const shown = view.slice(start, start + state.pageSize);
      body.replaceChildren(...shown.map((i) => h("tr", {}, ...cells(i))));
      const filtered = view.length === n ? "" : ` (filtered from ${num(n)})`;
      const showing = view.length === 1 ? "Showing 1 track"
        : `Showing ${num(start + 1)}\u2013${num(start + shown.length)} of ${plural(view.length, "track")}`;
      document.getElementById("table-status").textContent = view.length ? showing + filtered : `No tracks match${filtered}`;
      document.getElementById("page-number").textContent = `Page ${num(state.page + 1)} of ${num(pages)}`;
      document.getElementById("page-first").disabled = document.getElementById("page-prev").disabled = state.page === 0;
      document.getElementById("page-next").disabled = document.getElementById("page-last").disabled = state.page >= pages - 1;
      headRow.querySelectorAll("th").forEach((th, c) => {
        th.setAttribute("aria-sort", COLUMNS[c] === state.sort ? (state.direction > 0 ? "ascending" : "descending") : "none");
      });
    }

    function drawHead() {
      COLUMNS.forEach((column) => {
        const button = h("button", { type: "button", text: column.label });
        button.addEventListener("click", () => {
          state.direction = state.sort === column ? -state.direction : column.descending ? -1 : 1;
          state.sort = column;
          refresh(false);
        });
        headRow.append(h("th", { scope: "col" }, button));
      });
    }

    function goTo(page) {
      state.page = page;
      render();
    }

    function wire() {
      moodBox.append(h("option", { value: "0", text: "All moods" }), ...NAMES.map((name, i) => h("option", { value: String(i + 1), text: name })));
      let typing = null;
      filterBox.addEventListener("input", () => {
        clearTimeout(typing); // wait for a pause in typing: each pass scans every row
        typing = setTimeout(() => { state.query = filterBox.value; refresh(false); }, n > 20000 ? 200 : 60);
      });
      moodBox.addEventListener("change", () => { state.mood = Number(moodBox.value); refresh(false); });
      sizeBox.addEventListener("change", () => { state.pageSize = Number(sizeBox.value); refresh(false); });
      document.getElementById("page-first").addEventListener("click", () => goTo(0));
      document.getElementById("page-prev").addEventListener("click", () => goTo(state.page - 1));
      document.getElementById("page-next").addEventListener("click", () => goTo(state.page + 1));
      document.getElementById("page-last").addEventListener("click", () => goTo(Math.ceil(view.length / state.pageSize) - 1));
    }

    function reveal() {
      refresh(false);
      document.getElementById("tracks-panel").scrollIntoView({ behavior: "smooth", block: "start" });
    }

    return {
      describe(i) { return { title: titleOf(i), artist: valueOf("artist", i), path: pathOf(i) }; },
      init() { drawHead(); wire(); refresh(false); },
      showMood(cluster) { state.mood = cluster; moodBox.value = String(cluster); reveal(); },
      showQuery(text) { state.query = text; filterBox.value = text; state.mood = 0; moodBox.value = "0"; reveal(); },
    };
  })();

  // ---- failures ---------------------------------------------------------------------------------

  function drawFailures() {
    const errors = S.errors;
    const hint = document.getElementById("failures-hint");
    if (!errors.count) {
      hint.textContent = "None: every file was read and scored.";
      document.querySelector("#failures-panel .table-wrap").hidden = true;
      return;
    }
    const listed = errors.failures.length < errors.count ? ` The first ${num(errors.failures.length)} are listed; the results file has them all.` : "";
    hint.textContent = `${plural(errors.count, "file")} could not be scored.${listed}`;
    const reasons = document.getElementById("failure-reasons");
    for (const reason of errors.reasons) reasons.append(h("span", { class: "reason", text: `${reason.error} \u00d7 ${num(reason.count)}` }));
    document.querySelector("#failures tbody").append(...errors.failures.map((f) => h("tr", {}, h("td", { text: f.path }), h("td", { text: f.error || "" }))));
  }

  // ---- start ------------------------------------------------------------------------------------

  function drawCharts() {
    drawDistribution();
    drawConfidence();
    drawCoverage();
    drawGroups();
    drawPlane();
  }

  drawHeader();
  drawCards();
  drawGroupTabs();
  drawCharts();
  drawPlaneSide();
  drawTimelines();
  drawTopTracks();
  table.init();
  drawFailures();
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(drawCharts, 150); });
  document.documentElement.dataset.ready = "true"; // the browser test waits for this
})();
