// app.js — storyd's web client: the sessions list, the chat, and the
// dossier beside it. It is also the reference client of the streaming
// protocol (docs/protocol.md):
//
//   - every event of a session has a seq; the page keeps the last one it
//     rendered (state.session.lastSeq, also in sessionStorage) and drops
//     any event at or below it, so an event delivered twice never shows
//     twice;
//   - opening a session (and reloading the page) renders the stored
//     history, then follows the session with after_seq set to where the
//     history ends: the reply in flight comes back from its start, the
//     rest live;
//   - a dropped connection resubscribes with after_seq = lastSeq, so the
//     reply goes on where it stopped;
//   - a reset event reloads the history (what was missed is gone), then
//     the page keeps following.

import { API, Identity, tokenSubject, uuid4 } from "./api.js";
import { Connection } from "./conn.js";
import { DossierPanel } from "./dossier.js";
import { $, h, relativeTime } from "./dom.js";

const SESSION_KEY = "storyd.session"; // sessionStorage: this tab's session
const LAST_SESSION_KEY = "storyd.lastSession"; // localStorage: the last one used

const params = new URLSearchParams(location.search);
const preferred = params.get("transport") === "sse" ? "sse" : "auto";

const identity = new Identity();
const api = new API(identity);
const root = $("app");
const ui = {
  conn: $("conn"),
  connLabel: $("conn-label"),
  identityButton: $("identity-button"),
  sessions: $("sessions"),
  sessionsToggle: $("sessions-toggle"),
  sessionList: $("session-list"),
  sessionsEmpty: $("sessions-empty"),
  newSession: $("new-session"),
  title: $("chat-title"),
  chatMeta: $("chat-meta"),
  notice: $("notice"),
  noticeText: $("notice-text"),
  scroll: $("messages-scroll"),
  emptyChat: $("empty-chat"),
  messages: $("messages"),
  composer: $("composer"),
  input: $("composer-input"),
  send: $("send"),
  stop: $("stop"),
  dialog: $("signin-dialog"),
  signinForm: $("signin-form"),
  signinToken: $("signin-token"),
  signinMigrate: $("signin-migrate"),
  signinError: $("signin-error"),
  signout: $("signout"),
};

const state = {
  // session: {id, projectId, lastSeq} of the story on screen; null for a
  // new story not yet sent.
  session: null,
  // While the history loads, events wait in buffer.
  loading: false,
  buffer: [],
  // turn: the assistant reply being streamed {li, text, textEl}.
  turn: null,
  // Sent messages waiting for their ack, by client_message_id.
  outgoing: new Map(),
  // The client_message_id of the chat that opens a new session.
  opening: "",
  // Chats typed before the opening chat's ack: they need its session id,
  // so they wait here and go out in onAck (in order).
  queued: [],
  // The timer of a reload (after a reset) to try again.
  reloadTimer: 0,
  // Replies asked for and not done yet.
  waiting: 0,
  sessions: [],
};

const dossier = new DossierPanel({ api, notify: showNotice });

const conn = new Connection({
  identity,
  api,
  preferred,
  onEvent: handleEvent,
  onState: showConnection,
  resumePoint: () => (state.session && !state.loading ? { sessionId: state.session.id, afterSeq: state.session.lastSeq } : null),
});

// --- persistence of the tab's session -----------------------------------

function persist() {
  const s = state.session;
  try {
    if (s) {
      const v = JSON.stringify({ id: s.id, projectId: s.projectId || "", lastSeq: s.lastSeq, userId: identity.userId });
      sessionStorage.setItem(SESSION_KEY, v);
      localStorage.setItem(LAST_SESSION_KEY, v);
    } else {
      sessionStorage.removeItem(SESSION_KEY);
      localStorage.removeItem(LAST_SESSION_KEY);
    }
  } catch {
    // storage disabled: the page still works, it just forgets on reload
  }
  root.dataset.sessionId = s ? s.id : "";
  root.dataset.projectId = s && s.projectId ? s.projectId : "";
  root.dataset.lastSeq = s ? String(s.lastSeq) : "0";
  root.dataset.userId = identity.userId;
}

function remembered() {
  for (const store of [sessionStorage, localStorage]) {
    try {
      const v = JSON.parse(store.getItem(store === sessionStorage ? SESSION_KEY : LAST_SESSION_KEY) || "null");
      if (v && v.id && v.userId === identity.userId) {
        return v;
      }
    } catch {
      // ignore a damaged entry
    }
  }
  return null;
}

// --- the connection indicator -------------------------------------------

function showConnection({ state: s, transport, fallback }) {
  const name = transport === "sse" ? "SSE" : "WebSocket";
  const labels = {
    connecting: `Connecting… (${name})`,
    connected: `Connected · ${name}`,
    reconnecting: `Reconnecting… (${name})`,
    offline: "Offline — retrying",
    "signed-out": "Signed out",
  };
  ui.conn.dataset.state = s;
  ui.conn.dataset.transport = transport;
  ui.connLabel.textContent = labels[s] || s;
  ui.conn.title = fallback ? `Using SSE: ${fallback}` : `Transport: ${name}`;
}

// --- notices -------------------------------------------------------------

function showNotice(text) {
  ui.noticeText.textContent = text;
  ui.notice.hidden = !text;
}

$("notice-close").addEventListener("click", () => showNotice(""));

// --- the conversation ---------------------------------------------------

function nearBottom() {
  const el = ui.scroll;
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function scrollDown(force) {
  if (force || nearBottom()) {
    ui.scroll.scrollTop = ui.scroll.scrollHeight;
  }
}

function updateEmpty() {
  ui.emptyChat.hidden = ui.messages.childElementCount > 0;
}

const STATUS_LABELS = {
  cancelled: "Stopped",
  partial: "Cut short",
  failed: "No reply",
};

function userItem(text, props = {}) {
  return h(
    "li",
    { class: "msg user", dataset: props },
    h("span", { class: "visually-hidden", text: "You: " }),
    h("div", { class: "bubble", text }),
  );
}

function assistantItem(text, status) {
  const textEl = h("div", { class: "text" });
  if (text) {
    textEl.append(text);
  }
  const li = h(
    "li",
    { class: "msg assistant", dataset: { status } },
    h("span", { class: "speaker", text: "Interviewer" }),
    h("div", { class: "bubble" }, textEl, h("p", { class: "msg-foot", text: STATUS_LABELS[status] || "" })),
  );
  return { li, textEl };
}

function renderMessage(m) {
  if (m.role === "user") {
    ui.messages.append(userItem(m.content, { seq: m.seq, status: "stored" }));
  } else {
    const { li } = assistantItem(m.content, m.status);
    li.dataset.seq = m.seq;
    const err = m.metadata && m.metadata.error;
    if (err && err.message) {
      li.querySelector(".msg-foot").textContent = `${STATUS_LABELS[m.status] || ""}: ${err.message}`;
    }
    ui.messages.append(li);
  }
}

// resumeAfter is where following a session picks up after its history:
// before the first message still waiting for its reply (that reply, in
// flight or queued, then streams from its start), or else after the last
// event of the last message.
function resumeAfter(msgs) {
  const answered = new Set(msgs.filter((m) => m.role === "assistant").map((m) => m.turn_id));
  const open = msgs.find((m) => m.role === "user" && !answered.has(m.turn_id || m.message_id));
  if (open) {
    return open.seq;
  }
  return msgs.reduce((n, m) => Math.max(n, m.end_seq || m.seq || 0), 0);
}

function renderHistory(msgs, upTo) {
  ui.messages.replaceChildren();
  state.turn = null;
  for (const m of msgs) {
    if (m.seq <= upTo) {
      renderMessage(m);
    }
  }
  updateEmpty();
  scrollDown(true);
}

function ensureTurn() {
  if (!state.turn) {
    const { li, textEl } = assistantItem("", "streaming");
    ui.messages.append(li);
    state.turn = { li, textEl, text: "" };
    ui.messages.setAttribute("aria-busy", "true");
    updateEmpty();
  }
  return state.turn;
}

function setBusy() {
  const busy = state.waiting > 0 || state.turn !== null;
  ui.stop.hidden = !busy;
  root.dataset.busy = busy ? "true" : "false";
}

function endTurn() {
  if (state.turn) {
    state.turn.li.dataset.status = state.turn.li.dataset.status === "streaming" ? "complete" : state.turn.li.dataset.status;
  }
  state.turn = null;
  state.waiting = Math.max(0, state.waiting - 1);
  ui.messages.removeAttribute("aria-busy");
  setBusy();
}

// handleEvent takes every event of either transport.
function handleEvent(ev) {
  switch (ev.type) {
    case "pong":
      return;
    case "dossier":
      if (state.session && ev.project_id === state.session.projectId) {
        dossier.changed(ev);
      }
      return;
    case "ack":
      onAck(ev);
      return;
    case "error":
      if (!ev.seq) {
        onFrameError(ev);
        return;
      }
      break;
    default:
  }
  if (!state.session || ev.session_id !== state.session.id) {
    return; // another session's (e.g. one just switched away from)
  }
  if (ev.type === "reset") {
    reload(ev.seq);
    return;
  }
  if (state.loading) {
    state.buffer.push(ev);
    return;
  }
  apply(ev);
}

// apply renders one session event, once.
function apply(ev) {
  const s = state.session;
  if (!ev.seq || ev.seq <= s.lastSeq) {
    return; // seen already
  }
  s.lastSeq = ev.seq;
  persist();
  switch (ev.type) {
    case "message": {
      const m = ev.message || {};
      const mine = m.client_message_id && state.outgoing.get(m.client_message_id);
      if (mine) {
        mine.dataset.status = "stored";
        mine.dataset.seq = ev.seq;
        state.outgoing.delete(m.client_message_id);
      } else if (m.role === "user") {
        // sent from another tab or device
        ui.messages.append(userItem(m.content, { seq: ev.seq, status: "stored" }));
        state.waiting++;
        setBusy();
      }
      break;
    }
    case "text": {
      const t = ensureTurn();
      t.text += ev.content;
      t.textEl.append(ev.content);
      setBusy();
      break;
    }
    case "error": {
      const t = ensureTurn();
      t.li.querySelector(".msg-foot").textContent = (ev.error && ev.error.message) || "The reply failed.";
      break;
    }
    case "metadata": {
      const md = ev.metadata || {};
      const t = ensureTurn();
      t.li.dataset.status = md.status || "complete";
      if (md.message_id) {
        t.li.dataset.messageId = md.message_id;
      }
      const foot = t.li.querySelector(".msg-foot");
      if (STATUS_LABELS[md.status] && !foot.textContent) {
        foot.textContent = STATUS_LABELS[md.status];
      }
      if (md.project_id && !s.projectId) {
        s.projectId = md.project_id;
        persist();
        dossier.setProject(s.projectId);
      }
      if (md.dossier_updated) {
        dossier.changed({ version: 0, changed: [] });
      }
      break;
    }
    case "done":
      endTurn();
      loadSessions();
      break;
    default:
  }
  scrollDown(false);
}

function onAck(ev) {
  const li = state.outgoing.get(ev.client_message_id);
  if (li) {
    li.dataset.status = "sent";
  }
  if (state.opening && ev.client_message_id === state.opening) {
    // The first message of a new story: the server made the session.
    state.opening = "";
    state.session = { id: ev.session_id, projectId: ev.project_id || "", lastSeq: 0 };
    persist();
    conn.adopt(ev.session_id);
    if (ev.project_id) {
      dossier.setProject(ev.project_id);
    }
    sendQueued();
    loadSessions();
  } else if (state.session && ev.session_id === state.session.id && ev.project_id && !state.session.projectId) {
    state.session.projectId = ev.project_id;
    persist();
    dossier.setProject(ev.project_id);
  }
}

// failChat marks a sent message as not sent and returns its text ("" if
// it is not on the page).
function failChat(id, why) {
  const li = state.outgoing.get(id);
  if (!li) {
    return "";
  }
  li.dataset.status = "failed";
  li.append(h("p", { class: "msg-foot", text: `Not sent: ${why}` }));
  state.outgoing.delete(id);
  state.waiting = Math.max(0, state.waiting - 1);
  return li.querySelector(".bubble").textContent;
}

// keepText puts the text of messages that were not sent back in the
// message box (when it is empty), so nothing typed is lost.
function keepText(texts) {
  const t = texts.filter(Boolean).join("\n\n");
  if (t && !ui.input.value.trim()) {
    ui.input.value = t;
  }
}

// Codes that say the page's identity is not accepted (any more).
const AUTH_ERRORS = new Set([
  "identity_required",
  "identity_refused",
  "invalid_token",
  "token_expired",
  "invalid_user_id",
  "invalid_authorization",
  "auth_not_configured",
  "sign_in_required",
]);

function signedOutNotice(code) {
  if (code === "token_expired") {
    return "Your sign-in has expired. Sign in again to go on.";
  }
  if (code === "identity_refused") {
    return "This browser's anonymous stories now belong to an account. Sign in to go on.";
  }
  return "You are signed out: storyd did not accept who you are. Sign in again to go on.";
}

function onFrameError(ev) {
  const err = ev.error || {};
  const why = AUTH_ERRORS.has(err.code) ? "you are signed out" : err.message || err.code;
  const texts = [];
  for (const id of ev.failedChats || []) {
    texts.push(failChat(id, why));
    if (id === state.opening) {
      // The new story was not made: what waited for it was not sent either.
      state.opening = "";
      for (const f of state.queued) {
        texts.push(failChat(f.client_message_id, why));
      }
      state.queued = [];
    }
  }
  keepText(texts);
  setBusy();
  if (AUTH_ERRORS.has(err.code)) {
    // Nothing works until the person signs in again: stop reconnecting.
    conn.signedOut();
    showNotice(signedOutNotice(err.code));
    openSignIn();
    return;
  }
  switch (err.code) {
    case "invalid_after_seq":
      // The page is ahead of the server (it restarted and never stored
      // what the page saw): start again from the history.
      if (state.session && ev.session_id === state.session.id) {
        openSession(state.session.id, state.session.projectId);
      }
      return;
    case "session_not_found":
      if (state.session && ev.session_id === state.session.id) {
        showNotice("This story is no longer available.");
        newStory();
        loadSessions();
        return;
      }
      break;
    default:
  }
  showNotice(err.message || `Error: ${err.code}`);
}

// openSession shows a stored session and follows it.
async function openSession(id, projectId) {
  conn.unfollow();
  state.session = { id, projectId: projectId || "", lastSeq: 0 };
  state.loading = true;
  state.buffer = [];
  state.turn = null;
  state.waiting = 0;
  state.outgoing.clear();
  state.opening = "";
  state.queued = [];
  clearTimeout(state.reloadTimer);
  setBusy();
  persist();
  markCurrentSession();
  updateTitle();
  dossier.setProject(state.session.projectId);
  let msgs;
  try {
    msgs = await api.messages(id);
  } catch (err) {
    if (state.session && state.session.id === id) {
      state.loading = false;
      if (err.status === 404) {
        newStory();
      } else {
        showNotice(`The story could not be loaded: ${err.message}`);
      }
    }
    return;
  }
  if (!state.session || state.session.id !== id) {
    return; // switched away meanwhile
  }
  const after = resumeAfter(msgs);
  renderHistory(msgs, after);
  state.session.lastSeq = after;
  persist();
  state.loading = false;
  // The events that came while the history loaded are dropped, not
  // applied: following with after_seq sends each of them again, in order,
  // after the catch-up of what came before them. Applying them first would
  // move lastSeq past that catch-up, whose text would then be dropped as
  // seen.
  state.buffer = [];
  conn.follow(id, after);
  root.dataset.ready = "true";
}

// reload answers a reset: what the page missed is gone, so it renders the
// history up to the reset's seq and keeps following from there.
//
// When the history cannot be read, the page keeps what it shows (an empty
// list would blank the chat) and tries again; the live events keep
// buffering meanwhile.
async function reload(seq, attempt = 0) {
  const id = state.session.id;
  clearTimeout(state.reloadTimer);
  state.loading = true;
  if (attempt === 0) {
    state.buffer = [];
  }
  let msgs;
  try {
    msgs = await api.messages(id);
  } catch (err) {
    if (!state.session || state.session.id !== id) {
      return;
    }
    if (err.status === 404) {
      showNotice("This story is no longer available.");
      newStory();
      loadSessions();
      return;
    }
    showNotice(`The story could not be reloaded (${err.message}); trying again…`);
    state.reloadTimer = setTimeout(() => reload(seq, attempt + 1), backoffDelay(attempt));
    return;
  }
  if (!state.session || state.session.id !== id) {
    return;
  }
  renderHistory(msgs, seq);
  state.waiting = 0;
  state.session.lastSeq = seq;
  persist();
  state.loading = false;
  const buffered = state.buffer;
  state.buffer = [];
  buffered.forEach(apply);
  setBusy();
  if (attempt > 0) {
    showNotice("");
    // The connection may have come back while the page was loading (and
    // then did not resubscribe): follow again from where the page is.
    conn.follow(id, state.session.lastSeq);
  }
}

function backoffDelay(attempt) {
  return Math.min(8000, 1000 * 2 ** attempt);
}

function newStory() {
  conn.unfollow();
  state.session = null;
  state.loading = false;
  state.buffer = [];
  state.turn = null;
  state.waiting = 0;
  state.opening = "";
  state.queued = [];
  clearTimeout(state.reloadTimer);
  state.outgoing.clear();
  ui.messages.replaceChildren();
  ui.messages.removeAttribute("aria-busy");
  updateEmpty();
  setBusy();
  persist();
  markCurrentSession();
  updateTitle();
  dossier.setProject("");
  root.dataset.ready = "true";
}

function send() {
  const text = ui.input.value.trim();
  if (!text) {
    return;
  }
  const cmid = uuid4();
  const li = userItem(text, { status: "sending", clientMessageId: cmid });
  ui.messages.append(li);
  state.outgoing.set(cmid, li);
  updateEmpty();
  scrollDown(true);
  const frame = { type: "chat", text, client_message_id: cmid };
  state.waiting++;
  setBusy();
  ui.input.value = "";
  if (state.session) {
    addSession(frame);
  } else if (state.opening) {
    // The new story's first message has no ack yet, so there is no
    // session id to send this one with: without one the server would make
    // a second story. It goes out with the id once the ack comes.
    state.queued.push(frame);
    return;
  } else {
    state.opening = cmid;
  }
  conn.chat(frame);
}

// addSession names the story on screen in a chat frame.
function addSession(frame) {
  frame.session_id = state.session.id;
  if (state.session.projectId) {
    frame.project_id = state.session.projectId;
  }
}

// sendQueued sends the chats that waited for the new story's session id.
function sendQueued() {
  const frames = state.queued;
  state.queued = [];
  for (const f of frames) {
    addSession(f);
    conn.chat(f);
  }
}

ui.composer.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});

ui.input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});

ui.stop.addEventListener("click", async () => {
  if (!state.session) {
    return;
  }
  // Stop hides itself when the reply ends: keep the focus in the page.
  ui.input.focus();
  try {
    await conn.cancel(state.session.id);
  } catch (err) {
    showNotice(`Could not stop the reply: ${err.message}`);
  }
});

// --- the sessions list ---------------------------------------------------

function updateTitle() {
  const s = state.session && state.sessions.find((x) => x.session_id === state.session.id);
  ui.title.textContent = s ? s.title || "Untitled story" : state.session ? "Your story" : "A new story";
  ui.chatMeta.textContent = s && s.last_message_at ? `${s.message_count} messages · ${relativeTime(s.last_message_at)}` : "";
  document.title = s && s.title ? `${s.title} — Stories We Tell` : "Stories We Tell";
}

function markCurrentSession() {
  for (const li of ui.sessionList.children) {
    const current = state.session && li.dataset.sessionId === state.session.id;
    li.classList.toggle("current", Boolean(current));
    const b = li.querySelector(".session-open");
    if (current) {
      b.setAttribute("aria-current", "true");
    } else {
      b.removeAttribute("aria-current");
    }
  }
}

let sessionsTimer = 0;

function loadSessions() {
  clearTimeout(sessionsTimer);
  sessionsTimer = setTimeout(async () => {
    try {
      state.sessions = await api.sessions();
    } catch (err) {
      if (err.status === 401) {
        onFrameError({ error: { code: err.code, message: err.message } });
      }
      return;
    }
    renderSessions();
  }, 100);
}

// A delete asks for a second click within 4 s. Which story is waiting for
// it is kept here, not in the button, so that a refresh of the list does
// not lose it.
let armedDelete = "";
let armedTimer = 0;

function armDelete(id) {
  clearTimeout(armedTimer);
  armedDelete = id;
  if (id) {
    armedTimer = setTimeout(() => armDelete(""), 4000);
  }
  for (const li of ui.sessionList.children) {
    const s = state.sessions.find((x) => x.session_id === li.dataset.sessionId);
    showDeleteArmed(li.querySelector(".session-delete"), (s && s.title) || "Untitled story", li.dataset.sessionId === armedDelete);
  }
}

function showDeleteArmed(del, title, armed) {
  del.textContent = armed ? "Delete?" : "✕";
  del.setAttribute("aria-label", armed ? `Confirm: delete “${title}”` : `Delete “${title}”`);
  del.classList.toggle("armed", armed);
}

// renderSessions updates the list in place, keyed by session id, so that
// a refresh keeps the buttons (and the keyboard focus on them).
function renderSessions() {
  const existing = new Map([...ui.sessionList.children].map((li) => [li.dataset.sessionId, li]));
  state.sessions.forEach((s, i) => {
    const li = existing.get(s.session_id) || sessionItem(s.session_id);
    existing.delete(s.session_id);
    updateSessionItem(li, s);
    if (ui.sessionList.children[i] !== li) {
      ui.sessionList.insertBefore(li, ui.sessionList.children[i] || null);
    }
  });
  for (const li of existing.values()) {
    li.remove();
  }
  ui.sessionsEmpty.hidden = state.sessions.length > 0;
  markCurrentSession();
  updateTitle();
}

function sessionItem(id) {
  const current = () => state.sessions.find((x) => x.session_id === id);
  const open = h("button", { type: "button", class: "session-open" }, h("span", { class: "session-title" }), h("span", { class: "session-meta" }));
  open.addEventListener("click", () => {
    closeDrawer();
    const s = current();
    if (s && (!state.session || state.session.id !== id)) {
      openSession(id, s.project_id);
      ui.input.focus();
    }
  });
  const del = h("button", { type: "button", class: "session-delete" });
  del.addEventListener("click", async () => {
    if (armedDelete !== id) {
      armDelete(id);
      return;
    }
    armDelete("");
    try {
      await api.deleteSession(id);
    } catch (err) {
      showNotice(`Could not delete: ${err.message}`);
      return;
    }
    if (state.session && state.session.id === id) {
      newStory();
    }
    removeSessionItem(li);
    loadSessions();
  });
  const li = h("li", { class: "session", dataset: { sessionId: id } }, open, del);
  return li;
}

// removeSessionItem takes a deleted story off the list at once and moves
// the focus (which was on its delete button) to the next story, or to the
// message box when none is left.
function removeSessionItem(li) {
  const next = li.nextElementSibling || li.previousElementSibling;
  const focused = li.contains(document.activeElement);
  li.remove();
  state.sessions = state.sessions.filter((x) => x.session_id !== li.dataset.sessionId);
  ui.sessionsEmpty.hidden = state.sessions.length > 0;
  if (focused) {
    (next ? next.querySelector(".session-open") : ui.input).focus();
  }
}

function updateSessionItem(li, s) {
  const title = s.title || "Untitled story";
  li.querySelector(".session-title").textContent = title;
  li.querySelector(".session-meta").textContent = `${s.message_count} messages · ${relativeTime(s.last_message_at || s.updated_at)}`;
  showDeleteArmed(li.querySelector(".session-delete"), title, armedDelete === s.session_id);
}

ui.newSession.addEventListener("click", () => {
  closeDrawer();
  newStory();
  ui.input.focus();
});

function closeDrawer() {
  ui.sessions.classList.remove("open");
  ui.sessionsToggle.setAttribute("aria-expanded", "false");
}

ui.sessionsToggle.addEventListener("click", () => {
  const open = !ui.sessions.classList.contains("open");
  ui.sessions.classList.toggle("open", open);
  ui.sessionsToggle.setAttribute("aria-expanded", String(open));
});

// --- signing in ------------------------------------------------------------

function showIdentity() {
  ui.identityButton.textContent = identity.signedIn ? "Signed in" : "Sign in";
  ui.identityButton.title = identity.signedIn ? `Signed in as ${identity.userId}` : `Anonymous (${identity.anonymousId})`;
  ui.signout.hidden = !identity.signedIn;
  root.dataset.userId = identity.userId;
}

function openSignIn() {
  ui.signinError.hidden = true;
  ui.signinToken.value = "";
  if (typeof ui.dialog.showModal === "function" && !ui.dialog.open) {
    ui.dialog.showModal();
  }
  ui.signinToken.focus();
}

ui.identityButton.addEventListener("click", openSignIn);
$("signin-cancel").addEventListener("click", () => ui.dialog.close());

ui.signinForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const token = ui.signinToken.value.trim();
  const fail = (msg) => {
    ui.signinError.textContent = msg;
    ui.signinError.hidden = false;
  };
  if (!token) {
    fail("Paste an access token first.");
    return;
  }
  const probe = new API({ headers: () => ({ Authorization: `Bearer ${token}` }) });
  try {
    await probe.sessions();
  } catch (err) {
    fail(`This token is not accepted: ${err.message}`);
    return;
  }
  if (ui.signinMigrate.checked && !identity.signedIn) {
    const sub = tokenSubject(token);
    try {
      const mine = await api.sessions();
      if (mine.length > 0 && sub) {
        await probe.migrate(identity.anonymousId, sub);
        identity.forgetAnonymous();
      }
    } catch (err) {
      fail(`Signed in, but your anonymous stories could not be moved: ${err.message}`);
      return;
    }
  }
  identity.signIn(token);
  ui.dialog.close();
  afterIdentityChange();
});

ui.signout.addEventListener("click", () => {
  identity.signOut();
  ui.dialog.close();
  afterIdentityChange();
});

function afterIdentityChange() {
  showIdentity();
  newStory();
  conn.restart();
  loadSessions();
}

// --- start ---------------------------------------------------------------

showIdentity();
conn.start();
loadSessions();
const last = remembered();
if (last) {
  openSession(last.id, last.projectId);
} else {
  newStory();
}
