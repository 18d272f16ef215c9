// Cubebase staff app: small progressive enhancements (no inline scripts: the CSP
// allows scripts from this site only). Every page works without this file.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function csrfToken() {
    var headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRFToken"]; } catch (e) { return ""; }
  }

  function showMessage(text) {
    var box = document.getElementById("board-message");
    if (!box) { window.alert(text); return; }
    box.textContent = text;
    box.hidden = !text;
  }

  function updateCounts(board) {
    board.querySelectorAll(".lane").forEach(function (lane) {
      var count = lane.querySelector("h2 .count");
      if (count && !/more/.test(count.textContent)) {
        count.textContent = String(lane.querySelectorAll(".card").length);
      }
    });
  }

  // Kanban: drag a card to another lane; the move is an update through the records
  // service, and a refused move puts the card back and shows the reason.
  function moveCard(card, lane, board) {
    var from = card.parentElement;
    var next = card.nextSibling;
    var value = lane.getAttribute("data-value");
    lane.querySelector(".cards").appendChild(card);
    var form = card.querySelector("form.move");
    var data = new FormData(form);
    data.set("value", value);
    data.set("version", card.getAttribute("data-version"));
    showMessage("");
    return fetch(card.getAttribute("data-move-url"), {
      method: "POST",
      body: data,
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().catch(function () { return { ok: false, message: "The move failed (" + resp.status + ")" }; });
    }).then(function (body) {
      if (body.ok) {
        card.setAttribute("data-version", body.version);
        form.querySelector("input[name=version]").value = body.version;
        var select = form.querySelector("select[name=value]");
        if (select) { select.value = value; }
      } else {
        from.insertBefore(card, next);
        showMessage(body.message || "The move was refused");
      }
      updateCounts(board);
    }).catch(function () {
      from.insertBefore(card, next);
      showMessage("The move failed: the server could not be reached");
    });
  }

  function setUpBoard(board) {
    var dragged = null;
    board.addEventListener("dragstart", function (ev) {
      var card = ev.target.closest && ev.target.closest(".card");
      if (!card) { return; }
      dragged = card;
      card.classList.add("dragging");
      ev.dataTransfer.effectAllowed = "move";
      ev.dataTransfer.setData("text/plain", card.id);
    });
    board.addEventListener("dragend", function () {
      if (dragged) { dragged.classList.remove("dragging"); }
      board.querySelectorAll(".drop-target").forEach(function (l) { l.classList.remove("drop-target"); });
    });
    board.addEventListener("dragover", function (ev) {
      var lane = ev.target.closest && ev.target.closest(".lane");
      if (lane && dragged) { ev.preventDefault(); lane.classList.add("drop-target"); }
    });
    board.addEventListener("dragleave", function (ev) {
      var lane = ev.target.closest && ev.target.closest(".lane");
      if (lane && !lane.contains(ev.relatedTarget)) { lane.classList.remove("drop-target"); }
    });
    board.addEventListener("drop", function (ev) {
      var lane = ev.target.closest && ev.target.closest(".lane");
      if (!lane || !dragged) { return; }
      ev.preventDefault();
      lane.classList.remove("drop-target");
      var card = dragged;
      dragged = null;
      if (card.parentElement.closest(".lane") === lane) { return; }
      moveCard(card, lane, board);
    });
    // without dragging (keyboard users): choosing in a card's list moves it at once
    board.addEventListener("change", function (ev) {
      if (!ev.target.matches("form.move select")) { return; }
      var card = ev.target.closest(".card");
      var value = ev.target.value;
      var lane = Array.prototype.find.call(board.querySelectorAll(".lane"), function (l) {
        return l.getAttribute("data-value") === value;
      });
      if (card && lane) { moveCard(card, lane, board); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var board = document.getElementById("board");
    if (board) { setUpBoard(board); }
  });
})();
