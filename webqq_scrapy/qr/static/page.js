"use strict";
(function () {
  const list = document.getElementById("accounts");
  const note = document.getElementById("note");
  // Each QR's expiry on this page's own clock (performance.now()), from state.json's
  // seconds_left: the browser's time of day may be wrong.
  const expiries = new Map();
  let failures = 0;
  let ended = false;
  function progress(entry) {
    const parts = [];
    const expiry = expiries.get(entry.id);
    if (entry.image && expiry !== undefined) {
      const left = Math.max(0, Math.round((expiry - performance.now()) / 1000));
      parts.push(left > 0 ? "QR expires in " + left + " s" : "QR expired, a new one is coming");
    }
    if (entry.max_refreshes !== null && entry.max_refreshes !== undefined) {
      parts.push("refresh " + (entry.refresh || 0) + "/" + entry.max_refreshes);
    }
    return parts.join(" \u00b7 ");
  }
  function card(entry) {
    let node = document.getElementById("account-" + entry.id);
    if (!node) {
      node = document.createElement("section");
      node.id = "account-" + entry.id;
      const title = document.createElement("h2");
      title.textContent = entry.account;
      const state = document.createElement("p");
      state.className = "state";
      node.append(title, state);
      list.append(node);
    }
    if (!node.querySelector(".progress")) {
      const line = document.createElement("p");
      line.className = "progress";
      node.querySelector(".state").after(line);
    }
    node.className = "account state-" + entry.state;
    node.querySelector(".state").textContent = entry.text;
    node.entry = entry;
    if (entry.seconds_left === null || entry.seconds_left === undefined) {
      expiries.delete(entry.id);
    } else {
      expiries.set(entry.id, performance.now() + entry.seconds_left * 1000);
    }
    node.querySelector(".progress").textContent = progress(entry);
    let img = node.querySelector("img");
    if (!entry.image) {
      if (img) img.remove();
      return;
    }
    if (!img) {
      img = document.createElement("img");
      node.append(img);
    }
    if (img.getAttribute("src") !== entry.image) {
      img.setAttribute("src", entry.image);
      img.alt = "QR code for " + entry.account + " (QR #" + entry.generation + ")";
    }
  }
  function tick() {
    list.querySelectorAll(".account").forEach(function (node) {
      if (node.entry) node.querySelector(".progress").textContent = progress(node.entry);
    });
    if (!ended) setTimeout(tick, 1000);
  }
  function stop(text) {
    // No QR on this page can be scanned any more: never leave a dead one showing.
    ended = true;
    list.querySelectorAll("img").forEach(function (img) { img.remove(); });
    expiries.clear();
    list.querySelectorAll(".progress").forEach(function (line) { line.textContent = ""; });
    note.textContent = text;
  }
  async function poll() {
    try {
      const answer = await fetch("state.json", {cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const data = await answer.json();
      data.accounts.forEach(card);
      document.getElementById("empty").hidden = data.accounts.length > 0;
      failures = 0;
      if (data.ended) {
        stop("The crawl has ended; this page shows how each login ended and no longer updates.");
        return;
      }
      note.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
    } catch (error) {
      failures += 1;
      if (failures >= 3) {
        stop("The crawl has ended or this page is unreachable; it no longer updates.");
        return;
      }
      note.textContent = "This page is unreachable; trying again.";
    }
    setTimeout(poll, __POLL_MS__);
  }
  if (document.body.dataset.ended === "true") {
    stop(note.textContent);
  } else {
    setTimeout(poll, __POLL_MS__);
    tick();
  }
})();
