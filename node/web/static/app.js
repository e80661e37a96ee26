// p2pex live view: reads /api/*, listens on /ws, redraws. No dependencies, no build step.
// Everything from the chain is put in the page as text (textContent), never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const state = { slot: null, product: "electricity", trades: [], refreshTimer: null };

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const short = (hex) => (hex ? hex.slice(0, 10) + "…" : "");

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { status: response.status });
  return body;
}

// -- status and slots -------------------------------------------------------------------------

async function loadStatus() {
  const status = await getJSON("/api/status");
  document.getElementById("chain").textContent = status.chain_id;
  document.getElementById("role").textContent = status.role;
  document.getElementById("height").textContent = String(status.height);
  document.getElementById("head").textContent = short(status.head);
  const select = document.getElementById("slot");
  const slots = status.slots.filter(([p]) => p === state.product).map(([, s]) => s);
  const have = Array.from(select.options).map((o) => Number(o.value));
  if (slots.join() !== have.join()) {
    select.replaceChildren(...slots.map((s) => el("option", { value: String(s), text: String(s) })));
  }
  if (state.slot === null || !slots.includes(state.slot)) {
    state.slot = slots.length ? slots[slots.length - 1] : null;
  }
  if (state.slot !== null) select.value = String(state.slot);
  return status;
}

// -- order book -------------------------------------------------------------------------------

async function loadBook() {
  const body = document.querySelector("#book tbody");
  if (state.slot === null) { body.replaceChildren(); return; }
  const book = await getJSON(`/api/book?product=${state.product}&slot=${state.slot}&levels=10`);
  document.getElementById("book-state").textContent = `slot ${state.slot}${book.closed ? " (gate closed)" : ""}`;
  const rows = [];
  for (let i = 0; i < Math.max(book.bids.length, book.asks.length); i++) {
    const bid = book.bids[i] || ["", ""], ask = book.asks[i] || ["", ""];
    rows.push(el("tr", {},
      el("td", { class: "bid", text: String(bid[1]) }), el("td", { class: "bid", text: String(bid[0]) }),
      el("td", { class: "ask", text: String(ask[0]) }), el("td", { class: "ask", text: String(ask[1]) })));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", text: "no resting orders" })));
  body.replaceChildren(...rows);
}

// -- trades -----------------------------------------------------------------------------------

function tradeRow(trade, fresh) {
  const out = el("td", {});
  const button = el("button", { text: "check", onclick: () => proveInto(out, `tx=${trade.tx_id}`, button) });
  out.append(button);
  return el("tr", { class: fresh ? "trade fresh" : "trade", "data-price": String(trade.price), "data-height": String(trade.height) },
    el("td", { text: String(trade.height) }), el("td", { class: "price", text: String(trade.price) }),
    el("td", { text: String(trade.quantity) }), el("td", { class: "hash", text: short(trade.maker_account) }),
    el("td", { class: "hash", text: short(trade.taker_account) }), out);
}

async function loadTrades() {
  const body = document.querySelector("#trades tbody");
  if (state.slot === null) { body.replaceChildren(); return; }
  const { trades } = await getJSON(`/api/trades?product=${state.product}&slot=${state.slot}&limit=50`);
  body.replaceChildren(...trades.reverse().map((t) => tradeRow(t, false)));
}

function addTrade(trade) {
  if (trade.product !== state.product) return;
  if (state.slot === null) { state.slot = trade.slot; scheduleRefresh(); return; }
  if (trade.slot !== state.slot) return;
  const body = document.querySelector("#trades tbody");
  body.prepend(tradeRow(trade, true));
  while (body.children.length > 50) body.lastChild.remove();
}

// -- blocks and proofs ------------------------------------------------------------------------

const fromHex = (hex) => Uint8Array.from(hex.match(/../g) || [], (b) => parseInt(b, 16));
const toHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { joined.set(part, at); at += part.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

// RFC 9162 2.1.3.2, as ledger.merkle.root_from_inclusion_proof: leaf 0x00, node 0x01.
async function rootFromProof(index, size, leafHash, path) {
  let fn = index, sn = size - 1, node = leafHash;
  for (const sibling of path) {
    if (fn & 1 || fn === sn) {
      node = await sha256(Uint8Array.of(1), sibling, node);
      while (!(fn & 1) && fn) { fn >>= 1; sn >>= 1; }
    } else {
      node = await sha256(Uint8Array.of(1), node, sibling);
    }
    fn >>= 1; sn >>= 1;
  }
  return sn === 0 ? node : null;  // a path of the wrong length leads nowhere
}

// The gateway checked the proof with ledger; redo the hashing here from the leaf's bytes.
async function recheckInBrowser(proof) {
  if (!window.crypto || !crypto.subtle) return "not redone in this browser (WebCrypto needs https or localhost)";
  const leafHash = await sha256(Uint8Array.of(0), fromHex(proof.leaf));
  const root = await rootFromProof(proof.index, proof.size, leafHash, proof.path.map(fromHex));
  return root !== null && toHex(root) === proof.root ? "browser ✓" : "browser ✗: the path does not give the root";
}

async function proveInto(target, query, button) {
  if (button) button.disabled = true;
  const line = el("div", { class: "proof", text: "checking…" });
  target.querySelector(".proof")?.remove();
  target.append(line);
  try {
    const proof = await getJSON(`/api/proof?${query}`);
    const browser = proof.verified ? await recheckInBrowser(proof) : "";
    const ok = proof.verified && !browser.startsWith("browser ✗");
    line.className = "proof " + (ok ? "ok" : "bad");
    line.textContent = proof.verified
      ? `✓ in block ${proof.height}: leaf ${short(proof.leaf_hash)} + ${proof.path.length} hashes → ${proof.tree} root ${short(proof.root)} (gateway ✓, ${browser})`
      : `✗ ${proof.reason}`;
    line.title = JSON.stringify(proof, null, 1);
  } catch (error) {
    line.className = "proof bad";
    line.textContent = `✗ ${error.message}`;
  } finally {
    if (button) button.disabled = false;
  }
}

function blockItem(block) {
  const item = el("li", { "data-height": String(block.height) });
  const when = new Date(Number(BigInt(block.time_ns) / 1000000n)).toLocaleTimeString();
  item.append(el("div", { text: `#${block.height} ${short(block.hash)} at ${when}: ${block.transactions.length} transactions, ${block.results.length} results` }));
  const items = el("div", { class: "items" });
  for (const tx of block.transactions.slice(0, 12)) {
    items.append(el("button", { text: `tx ${tx.index} ${tx.kind}`, title: `prove transaction ${tx.tx_id}`,
      onclick: (e) => proveInto(item, `tx=${tx.tx_id}`, e.target) }));
  }
  for (const result of block.results.slice(0, 12)) {
    items.append(el("button", { class: "prove-result", text: `result ${result.index} ${result.kind}`,
      onclick: (e) => proveInto(item, `height=${block.height}&index=${result.index}`, e.target) }));
  }
  item.append(items);
  return item;
}

async function loadBlocks() {
  const { blocks } = await getJSON("/api/blocks?limit=20");
  document.getElementById("blocks").replaceChildren(...blocks.map(blockItem));
}

function addBlock(block) {
  const list = document.getElementById("blocks");
  if (list.querySelector(`li[data-height="${block.height}"]`)) return;
  list.prepend(blockItem(block));
  while (list.children.length > 20) list.lastChild.remove();
  document.getElementById("height").textContent = String(block.height + 1);
  document.getElementById("head").textContent = short(block.hash);
}

// -- the feeder -------------------------------------------------------------------------------

function priceColour(price, low, high) {
  const t = high > low ? (price - low) / (high - low) : 0.5;
  return `hsl(${Math.round(220 - 200 * t)}, 70%, 55%)`;
}

function drawFeeder(view) {
  const holder = document.getElementById("feeder");
  const buses = new Map(view.buses.map((b) => [b.name, b]));
  const xs = view.buses.map((b) => b.x), ys = view.buses.map((b) => b.y);
  const dx = 130, dy = 64, pad = 34;
  const width = (Math.max(0, ...xs) + 1) * dx + 2 * pad, height = (Math.max(0, ...ys) + 1) * dy + pad;
  const at = (b) => [pad + b.x * dx + 10, pad + b.y * dy];
  const svg = el("svg:svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "feeder" });
  const maxFlow = Math.max(1e-9, ...view.lines.map((l) => Math.abs(l.flow_kw || 0)));
  for (const line of view.lines) {
    const a = buses.get(line.from), b = buses.get(line.to);
    if (!a || !b) continue;
    const [x1, y1] = at(a), [x2, y2] = at(b);
    const hasFlow = typeof line.flow_kw === "number";
    const cls = "line" + (line.congested ? " congested" : "");
    const widthPx = hasFlow ? 1.5 + 6 * Math.abs(line.flow_kw) / maxFlow : 2;
    svg.append(el("svg:line", { class: cls, x1, y1, x2, y2, "stroke-width": widthPx.toFixed(1), "data-line": line.name }));
    if (hasFlow) {
      const cap = line.capacity_kw === null ? "∞" : line.capacity_kw.toFixed(0);
      const label = el("svg:text", { class: "flow" + (line.congested ? " congested" : ""), x: (x1 + x2) / 2 - 20, y: (y1 + y2) / 2 - 4 });
      label.textContent = `${line.name} ${line.flow_kw.toFixed(1)}/${cap} kW`;
      svg.append(label);
    }
  }
  const prices = view.buses.flatMap((b) => (b.prices || []).map((p) => p.price));
  const low = Math.min(...prices), high = Math.max(...prices);
  for (const bus of view.buses) {
    const [x, y] = at(bus);
    const busPrices = (bus.prices || []).map((p) => p.price);
    const mean = busPrices.length ? busPrices.reduce((s, p) => s + p, 0) / busPrices.length : null;
    const fill = mean === null ? "#d1d5db" : priceColour(mean, low, high);
    const shape = bus.name === view.root
      ? el("svg:rect", { class: "bus", x: x - 8, y: y - 8, width: 16, height: 16, fill })
      : el("svg:circle", { class: "bus", cx: x, cy: y, r: 7, fill });
    const tip = el("svg:title");
    tip.textContent = `${bus.name}` + (bus.injection_kw !== undefined ? `: net injection ${bus.injection_kw.toFixed(2)} kW` : "") +
      (bus.prices || []).map((p) => `\n${p.peer}: ${p.price.toFixed(0)} ticks/kWh`).join("");
    shape.append(tip);
    svg.append(shape);
    const name = el("svg:text", { x: x - 8, y: y + 18 });
    name.textContent = bus.name + (mean === null ? "" : ` ${mean.toFixed(0)}`);
    svg.append(name);
  }
  holder.replaceChildren(svg);
}

async function loadClearing() {
  const stateLine = document.getElementById("clearing-state");
  const legend = document.getElementById("clearing-legend");
  let view = null;
  if (state.slot !== null) {
    try {
      view = await getJSON(`/api/clearing?product=${state.product}&slot=${state.slot}`);
    } catch (error) {
      if (error.status !== 404) throw error;
    }
  }
  if (view) {
    const congested = view.lines.filter((l) => l.congested).map((l) => l.name);
    stateLine.textContent = `slot ${view.slot}, block ${view.height}, model ${view.model}`;
    legend.textContent = `Line width: |flow|; red: congested (${congested.join(", ") || "none"}); ` +
      `bus colour and number: mean price ${view.price_unit} (blue low, red high); losses ${view.losses_kw.toFixed(3)} kW.`;
    drawFeeder(view);
    return;
  }
  try {
    const network = await getJSON("/api/network");
    stateLine.textContent = state.slot === null ? "no slot yet" : `slot ${state.slot} not cleared yet`;
    legend.textContent = "The published feeder; flows and prices appear once the slot's clearing is published.";
    drawFeeder(network);
  } catch (error) {
    if (error.status !== 404) throw error;
    stateLine.textContent = "no network published";
    document.getElementById("feeder").replaceChildren();
  }
}

// -- live updates -----------------------------------------------------------------------------

async function refresh() {
  state.refreshTimer = null;
  try {
    const before = state.slot;
    await loadStatus();
    const jobs = [loadBook(), loadClearing()];
    if (state.slot !== before) jobs.push(loadTrades());
    await Promise.all(jobs);
  } catch (error) {
    console.error(error);
  }
}

function scheduleRefresh() {
  if (state.refreshTimer === null) state.refreshTimer = setTimeout(refresh, 150);
}

function connect() {
  const live = document.getElementById("live");
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  ws.onclose = () => {
    live.textContent = "reconnecting…"; live.className = "live off";
    setTimeout(() => { connect(); refresh(); }, 2000);
  };
  ws.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "block") { addBlock(event.block); scheduleRefresh(); }
    else if (event.type === "trade") { addTrade(event.trade); scheduleRefresh(); }
  };
}

async function start() {
  document.getElementById("slot").addEventListener("change", (e) => {
    state.slot = Number(e.target.value);
    Promise.all([loadBook(), loadTrades(), loadClearing()]).catch(console.error);
  });
  connect();
  try {
    await loadStatus();
    await Promise.all([loadBook(), loadTrades(), loadBlocks(), loadClearing()]);
  } catch (error) {
    console.error(error);
  }
}

start();
