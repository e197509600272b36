// The pipeline board (templates/admin/engage/console/board.html): drag a card to another stage, or
// choose the stage from the card's menu; the server moves the lead (events, sequence rules) and the
// card and the counts follow. No framework, no CDN.
(function () {
  "use strict";
  const board = document.getElementById("board");
  if (!board || board.dataset.canChange !== "1") return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const status = document.getElementById("board-status");
  let dragged = null;

  function column(stageId) { return board.querySelector('.board-column[data-stage-id="' + stageId + '"]'); }
  function bump(section, delta) {
    const badge = section.querySelector(".stage-count");
    const count = Number(badge.dataset.count) + delta;
    badge.dataset.count = String(count);
    badge.textContent = String(count);
  }

  async function move(card, stageId) {
    const from = card.closest(".board-column");
    const to = column(stageId);
    if (!to || from === to) return;
    const form = new FormData();
    form.append("stage", stageId);
    const response = await fetch(board.dataset.actUrl.replace("/0/", "/" + card.dataset.leadId + "/"), {
      method: "POST", body: form, credentials: "same-origin", headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    });
    const body = await response.json();
    if (!response.ok) {
      status.textContent = (body.error && body.error.message) || response.statusText;
      card.querySelector(".card-move").value = from.dataset.stageId;
      return;
    }
    to.querySelector(".board-cards").prepend(card);
    card.querySelector(".card-move").value = String(stageId);
    bump(from, -1);
    bump(to, 1);
    status.textContent = body.lead.name + " → " + body.lead.stage;
  }

  board.querySelectorAll(".board-card").forEach((card) => {
    card.addEventListener("dragstart", (event) => {
      dragged = card;
      event.dataTransfer.setData("text/plain", card.dataset.leadId);
      event.dataTransfer.effectAllowed = "move";
    });
    card.querySelector(".card-move").addEventListener("change", (event) => move(card, event.target.value));
  });
  board.querySelectorAll(".board-column").forEach((section) => {
    section.addEventListener("dragover", (event) => { event.preventDefault(); section.classList.add("is-target"); });
    section.addEventListener("dragleave", () => section.classList.remove("is-target"));
    section.addEventListener("drop", (event) => {
      event.preventDefault();
      section.classList.remove("is-target");
      const card = dragged || document.getElementById("card-" + event.dataTransfer.getData("text/plain"));
      dragged = null;
      if (card) move(card, section.dataset.stageId);
    });
  });
})();
