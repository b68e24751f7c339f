"use strict";
(function () {
  const list = document.getElementById("accounts");
  const note = document.getElementById("note");
  let failures = 0;
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
    node.className = "account state-" + entry.state;
    node.querySelector(".state").textContent = entry.text;
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
  async function poll() {
    try {
      const answer = await fetch("state.json", {cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      const data = await answer.json();
      data.accounts.forEach(card);
      document.getElementById("empty").hidden = data.accounts.length > 0;
      note.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      failures = 0;
    } catch (error) {
      failures += 1;
      note.textContent = "The crawl has ended or this page is unreachable.";
      if (failures >= 3) return;
    }
    setTimeout(poll, __POLL_MS__);
  }
  setTimeout(poll, __POLL_MS__);
})();
