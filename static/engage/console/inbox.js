// The inbox (templates/admin/engage/console/inbox.html): lists conversations and one thread from the
// lead admin's JSON endpoints, polls both every few seconds, and posts take over / hand back / reply /
// assign. No framework, no CDN.
(function () {
  "use strict";
  const POLL_MS = 5000;
  const root = document.getElementById("inbox");
  if (!root) return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  const state = { view: "all", channel: "", cursor: null, leadId: null, pending: [] };
  const $ = (id) => document.getElementById(id);
  const text = (tag, className, value) => {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (value !== undefined) node.textContent = value;
    return node;
  };

  function rowsUrl(cursor) {
    const params = new URLSearchParams({ view: state.view });
    if (state.channel) params.set("channel", state.channel);
    if (cursor) params.set("cursor", cursor);
    return root.dataset.rowsUrl + "?" + params.toString();
  }

  async function getJson(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    const body = await response.json();
    if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
    return body;
  }

  function rowNode(row) {
    const item = text("li");
    item.dataset.leadId = row.id;
    if (row.id === state.leadId) item.classList.add("is-open");
    const link = text("a");
    link.href = "#lead-" + row.id;
    const top = text("div", "row-top");
    top.append(text("span", "", row.name), text("span", "row-age", row.age));
    const last = text("div", "row-last", (row.last_message.direction === "inbound" ? "" : "↩ ") + row.last_message.body);
    const tags = text("div", "row-tags");
    if (row.needs_human) tags.append(text("span", "badge is-human", root.dataset.labelHuman || "needs a human"), " ");
    if (row.is_unread) tags.append(text("span", "badge is-unread", "new"), " ");
    tags.append(text("span", "", [row.channel, row.stage, row.owner || "—", row.ai_state].join(" · ")));
    link.append(top, last, tags);
    link.addEventListener("click", (event) => { event.preventDefault(); openThread(row.id); });
    item.append(link);
    return item;
  }

  async function loadRows(append) {
    const body = await getJson(rowsUrl(append ? state.cursor : null));
    const list = $("inbox-rows");
    if (!append) list.replaceChildren();
    body.rows.forEach((row) => list.append(rowNode(row)));
    state.cursor = body.next_cursor;
    $("inbox-more").hidden = !body.next_cursor;
    $("inbox-empty").hidden = list.children.length > 0;
  }

  function messageNode(message, pending) {
    const item = text("li", message.direction + (pending ? " is-pending" : ""));
    item.id = "message-" + message.id;
    item.append(text("div", "body", message.body || ("[" + message.media_type + "]")));
    let meta = message.sender + " · " + message.at + " · " + message.channel;
    if (message.status) meta += " · " + message.status;
    if (message.error) meta += " (" + message.error + ")";
    const metaNode = text("div", "meta", meta);
    if (message.status) metaNode.dataset.status = message.status_code;
    item.append(metaNode);
    return item;
  }

  function renderThread(body) {
    const lead = body.lead;
    $("thread-placeholder").hidden = true;
    $("thread").hidden = false;
    root.classList.add("has-thread");
    $("thread-name").textContent = lead.name;
    $("thread-state").textContent = lead.ai_state;
    $("thread-meta").textContent = [lead.company, lead.channel, lead.stage].join(" · ");
    $("thread-lead-link").href = lead.url;
    if ($("take-over")) {
      $("take-over").hidden = lead.is_ai_paused && !!lead.owner_id;
      $("hand-back").hidden = !lead.is_ai_paused;
      $("thread-owner").value = lead.owner_id ? String(lead.owner_id) : "";
    }
    const list = $("thread-messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren();
    const sentJobs = new Set(body.messages.map((message) => message.job_id).filter(Boolean));
    state.pending = state.pending.filter((message) => !sentJobs.has(message.job_id));
    body.messages.forEach((message) => list.append(messageNode(message, false)));
    state.pending.forEach((message) => list.append(messageNode(message, true)));
    if (atBottom || list.dataset.leadId !== String(lead.id)) list.scrollTop = list.scrollHeight;
    list.dataset.leadId = String(lead.id);
  }

  async function openThread(leadId) {
    if (state.leadId !== leadId) state.pending = [];
    state.leadId = leadId;
    document.querySelectorAll("#inbox-rows li").forEach((item) => {
      item.classList.toggle("is-open", item.dataset.leadId === String(leadId));
    });
    history.replaceState(null, "", "#lead-" + leadId);
    renderThread(await getJson(root.dataset.threadUrl.replace("/0/", "/" + leadId + "/")));
  }

  async function act(operation, fields) {
    const form = new FormData();
    Object.entries(fields || {}).forEach(([key, value]) => form.append(key, value));
    const url = root.dataset.actUrl.replace("/0/", "/" + state.leadId + "/").replace("/OP/", "/" + operation + "/");
    const response = await fetch(url, {
      method: "POST", body: form, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
    });
    const body = await response.json();
    const error = $("thread-error");
    if (!response.ok) {
      error.textContent = (body.error && body.error.message) || response.statusText;
      error.hidden = false;
      return null;
    }
    error.hidden = true;
    return body;
  }

  function wire() {
    document.querySelectorAll(".inbox-view").forEach((button) => {
      button.addEventListener("click", () => {
        document.querySelectorAll(".inbox-view").forEach((other) => {
          other.classList.toggle("is-active", other === button);
          other.setAttribute("aria-pressed", other === button ? "true" : "false");
        });
        state.view = button.dataset.view;
        loadRows(false);
      });
    });
    $("inbox-channel").addEventListener("change", (event) => { state.channel = event.target.value; loadRows(false); });
    $("inbox-more").addEventListener("click", () => loadRows(true));
    if ($("take-over")) {
      $("take-over").addEventListener("click", async () => { if (await act("take_over")) openThread(state.leadId); });
      $("hand-back").addEventListener("click", async () => { if (await act("hand_back")) openThread(state.leadId); });
      $("thread-owner").addEventListener("change", async (event) => {
        if (await act("assign", { owner: event.target.value })) openThread(state.leadId);
      });
      $("thread-reply").addEventListener("submit", async (event) => {
        event.preventDefault();
        const box = $("reply-body");
        const body = await act("reply", { body: box.value });
        if (!body) return;
        box.value = "";
        state.pending.push(body.pending);
        openThread(state.leadId);
      });
    }
    const back = text("button", "console-button thread-back", "←");
    back.type = "button";
    back.setAttribute("aria-label", "Back to the conversations");
    back.addEventListener("click", () => { root.classList.remove("has-thread"); });
    $("thread-name").before(back);
  }

  wire();
  const viewInHash = location.hash.match(/^#view=(\w+)$/);
  if (viewInHash) {
    const button = document.querySelector('.inbox-view[data-view="' + viewInHash[1] + '"]');
    if (button) {
      state.view = viewInHash[1];
      document.querySelectorAll(".inbox-view").forEach((other) => {
        other.classList.toggle("is-active", other === button);
        other.setAttribute("aria-pressed", other === button ? "true" : "false");
      });
    }
  }
  loadRows(false).then(() => {
    const match = location.hash.match(/^#lead-(\d+)$/);
    if (match) openThread(Number(match[1]));
  });
  setInterval(() => {
    if (document.hidden) return;
    if (!state.cursor || document.querySelectorAll("#inbox-rows li").length <= 25) loadRows(false).catch(() => {});
    if (state.leadId) getJson(root.dataset.threadUrl.replace("/0/", "/" + state.leadId + "/")).then(renderThread).catch(() => {});
  }, POLL_MS);
})();
