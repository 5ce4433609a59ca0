// conn.js — the page's live connection to storyd: a WebSocket
// (/api/v1/ws) when it can, SSE otherwise (POST /api/v1/chat for a message
// and its reply, GET /api/v1/sessions/{id}/stream to follow a session).
// Both hand the app the same events (docs/protocol.md); the app dedupes
// them by seq, so an event seen twice (two SSE streams, a resubscribe) is
// harmless.
//
// The Connection follows at most one session. Whenever it (re)connects it
// asks the app where to resume (resumePoint: the session and the last seq
// the page holds) and subscribes with after_seq, so a drop loses nothing
// and repeats nothing.

import { errorOf } from "./api.js";

// healthy reports whether storyd answers plain HTTP: when it does and the
// WebSocket still cannot connect, something between (a proxy) blocks
// WebSockets and SSE is the way.
async function healthy() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const resp = await fetch("/healthz", { cache: "no-store", signal: ctl.signal });
    return resp.ok;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

function backoff(attempt) {
  const base = Math.min(8000, 500 * 2 ** Math.min(attempt, 5));
  return base * (0.75 + Math.random() / 2);
}

// Frame errors that answer a chat: the chat they name failed.
const CHAT_ERRORS =
  /^(text_|invalid_(session|project|client_message)_id|too_many_pending|project_mismatch|session_not_found|store_unavailable|shutting_down|identity_required)/;

// Frame errors that refuse the page's identity: nothing can work until the
// person signs in again.
const AUTH_ERRORS = /^(identity_required|identity_refused|invalid_token|token_expired|invalid_user_id|invalid_authorization|auth_not_configured)$/;

// frameError returns the code of an error frame that is not a session
// event ("" for anything else).
function frameError(ev) {
  return ev.type === "error" && !ev.seq && ev.error ? ev.error.code || "" : "";
}

class WebSocketTransport {
  constructor(conn) {
    this.conn = conn;
    this.name = "websocket";
    this.ws = null;
    this.attempt = 0;
    this.everOpened = false;
    this.failedOpens = 0;
    this.followed = null;
    this.unacked = new Map(); // client_message_id → chat frame
    this.stopped = false;
    this.retry = 0;
    this.onOnline = () => {
      if (!this.ws && !this.stopped) {
        clearTimeout(this.retry);
        this.connect();
      }
    };
  }

  start() {
    window.addEventListener("online", this.onOnline);
    this.connect();
  }

  connect() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) {
      return; // one socket at a time (connecting or open)
    }
    clearTimeout(this.retry);
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${proto}//${location.host}/api/v1/ws`);
    } catch {
      this.failed(false);
      return;
    }
    this.ws = ws;
    let opened = false;
    // proved: the server answered a frame after the auth frame, so it
    // accepted the identity (it answers frames in order).
    let proved = false;
    const timer = setTimeout(() => {
      if (!opened) {
        ws.close();
      }
    }, 10000);
    ws.onopen = () => {
      opened = true;
      clearTimeout(timer);
      this.everOpened = true;
      this.failedOpens = 0;
      this.attempt = 0;
      this.send(this.conn.identity.authFrame());
      this.send({ type: "ping" }); // its pong proves the auth went through
      const rp = this.conn.resumePoint();
      if (rp) {
        this.followed = rp.sessionId;
        this.send({ type: "subscribe", session_id: rp.sessionId, after_seq: rp.afterSeq });
      }
      // A chat whose ack never came is sent again: its client_message_id
      // makes that safe (the server answers duplicate: true).
      for (const f of this.unacked.values()) {
        this.send(f);
      }
      // "connected" waits for the first answer (see onmessage).
    };
    ws.onmessage = (e) => {
      if (this.ws !== ws) {
        return; // a socket given up on
      }
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      const code = frameError(ev);
      if (AUTH_ERRORS.test(code)) {
        // The identity is refused: every chat waiting here failed, and the
        // app signs out (Connection.signedOut stops this transport).
        ev.failedChats = [...this.unacked.keys()];
        this.unacked.clear();
        this.conn.onEvent(ev);
        return;
      }
      if (!proved) {
        proved = true;
        this.conn.setState("connected");
      }
      if (ev.type === "ack") {
        this.unacked.delete(ev.client_message_id);
      } else if (CHAT_ERRORS.test(code)) {
        ev.failedChats = this.chatsFailedBy(ev);
      } else if (code === "session_closed" && ev.session_id === this.followed) {
        // The session stopped under us (e.g. it passivated): follow it
        // again from where the page is.
        const rp = this.conn.resumePoint();
        if (rp && rp.sessionId === ev.session_id) {
          this.send({ type: "subscribe", session_id: rp.sessionId, after_seq: rp.afterSeq });
        }
        return;
      }
      this.conn.onEvent(ev);
    };
    ws.onclose = () => {
      clearTimeout(timer);
      if (this.ws !== ws) {
        return;
      }
      this.ws = null;
      if (!this.stopped) {
        this.failed(opened);
      }
    };
  }

  async failed(wasOpen) {
    if (!wasOpen) {
      this.failedOpens++;
    }
    this.conn.setState(navigator.onLine === false ? "offline" : "reconnecting");
    if (!wasOpen && (!this.everOpened || this.failedOpens >= 3)) {
      // Never opened (or keeps failing): is it the WebSocket or storyd?
      const up = await healthy();
      if (this.ws || this.stopped) {
        return; // meanwhile a socket was opened (the browser came online)
      }
      if (up) {
        this.conn.fallback("the WebSocket could not connect");
        return;
      }
      this.conn.setState("offline");
    }
    if (!this.stopped) {
      this.retry = setTimeout(() => this.connect(), backoff(this.attempt++));
    }
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  chat(frame) {
    this.unacked.set(frame.client_message_id, frame);
    this.send(frame); // or at the next open
  }

  // chatsFailedBy takes the unacked chats an error frame answers off the
  // list and returns their ids: the one its client_message_id names, else
  // those sent to the session it names. A new story's chat goes without a
  // session id (the error names the session the server would have made),
  // so an error naming a session neither sent to nor followed answers
  // those. A subscribe's error fails no chat sent elsewhere.
  chatsFailedBy(ev) {
    const sentTo = (sid) => [...this.unacked.values()].filter((f) => (f.session_id || "") === sid).map((f) => f.client_message_id);
    let ids;
    if (ev.client_message_id) {
      ids = this.unacked.has(ev.client_message_id) ? [ev.client_message_id] : [];
    } else {
      const sid = ev.session_id || "";
      ids = sentTo(sid);
      if (!ids.length && sid !== this.followed) {
        ids = sentTo("");
      }
    }
    for (const id of ids) {
      this.unacked.delete(id);
    }
    return ids;
  }

  follow(sessionId, afterSeq) {
    if (this.followed && this.followed !== sessionId) {
      this.send({ type: "unsubscribe", session_id: this.followed });
    }
    this.followed = sessionId;
    this.send({ type: "subscribe", session_id: sessionId, after_seq: afterSeq });
  }

  // adopt: a chat made the socket follow sessionId already.
  adopt(sessionId) {
    if (this.followed && this.followed !== sessionId) {
      this.send({ type: "unsubscribe", session_id: this.followed });
    }
    this.followed = sessionId;
  }

  unfollow() {
    if (this.followed) {
      this.send({ type: "unsubscribe", session_id: this.followed });
    }
    this.followed = null;
  }

  cancel(sessionId) {
    if (!this.send({ type: "cancel", session_id: sessionId })) {
      return this.conn.api.cancel(sessionId);
    }
    return Promise.resolve();
  }

  // pending returns the chats not yet acknowledged (for a switch to SSE).
  pending() {
    return [...this.unacked.values()];
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.retry);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(1000);
    }
  }
}

// parseSSE feeds text to a parser of text/event-stream and returns the
// events it completed (each {id, data}).
function sseParser() {
  let buf = "";
  return (chunk) => {
    buf += chunk;
    const out = [];
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(buf[i] === "\r" ? i + 4 : i + 2);
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("data:")) {
          data.push(line.slice(line[5] === " " ? 6 : 5));
        }
      }
      if (data.length) {
        out.push(data.join("\n"));
      }
    }
    return out;
  };
}

class SSETransport {
  constructor(conn) {
    this.conn = conn;
    this.name = "sse";
    this.es = null;
    this.followed = null;
    this.stopped = false;
    this.retry = 0;
    this.attempt = 0;
    // The POST /chat replies being read, each with its AbortController:
    // leaving the session aborts them (their events would otherwise keep
    // coming in beside the follow stream's).
    this.replies = new Set();
  }

  async start() {
    const up = await healthy();
    if (!this.stopped && !this.es) {
      this.conn.setState(up ? "connected" : "offline");
      if (!up) {
        this.retry = setTimeout(() => this.start(), backoff(this.attempt++));
      }
    }
  }

  follow(sessionId, afterSeq) {
    this.close();
    if (this.stopped) {
      return;
    }
    this.followed = sessionId;
    const url = `/api/v1/sessions/${encodeURIComponent(sessionId)}/stream?after_seq=${afterSeq}&${this.conn.identity.query()}`;
    const es = new EventSource(url);
    this.es = es;
    es.onopen = () => {
      this.attempt = 0;
      this.conn.setState("connected");
    };
    es.onmessage = (e) => {
      let ev;
      try {
        ev = JSON.parse(e.data);
      } catch {
        return;
      }
      // The stream ends itself with these; EventSource reconnects with
      // Last-Event-ID on its own.
      if (ev.type === "error" && !ev.seq && ev.error && /^(session_closed|slow_consumer)$/.test(ev.error.code)) {
        return;
      }
      if (ev.type === "done" && !ev.seq) {
        return;
      }
      this.conn.onEvent(ev);
    };
    es.onerror = () => {
      if (this.es !== es) {
        return;
      }
      this.conn.setState(navigator.onLine === false ? "offline" : "reconnecting");
      if (es.readyState === EventSource.CLOSED) {
        // Refused (an HTTP error, not a drop; EventSource does not say
        // which): ask why, then try again later or give up.
        this.es = null;
        this.refused(sessionId);
      }
    };
  }

  // refused learns why the follow stream was refused, with one REST call:
  // a story gone (404) or an identity refused (401) is the app's to
  // handle, as the WebSocket's errors are; anything else is tried again
  // later, from where the page is then.
  async refused(sessionId) {
    let err = null;
    try {
      await this.conn.api.probeSession(sessionId);
    } catch (e) {
      err = e;
    }
    if (this.stopped || this.es || this.followed !== sessionId) {
      return; // moved on meanwhile
    }
    if (err && (err.status === 404 || err.status === 401)) {
      this.followed = null;
      const code = err.status === 404 ? "session_not_found" : err.code || "identity_required";
      this.conn.onEvent({ type: "error", session_id: sessionId, error: { code, message: err.message } });
      return;
    }
    this.retry = setTimeout(() => {
      const rp = this.conn.resumePoint();
      if (!this.stopped && rp && rp.sessionId === sessionId && this.followed === sessionId) {
        this.follow(sessionId, rp.afterSeq);
      }
    }, backoff(this.attempt++));
  }

  adopt(sessionId) {
    if (this.followed !== sessionId || !this.es) {
      const rp = this.conn.resumePoint();
      this.follow(sessionId, rp && rp.sessionId === sessionId ? rp.afterSeq : 0);
    }
  }

  unfollow() {
    this.close();
    this.followed = null;
    for (const ctl of this.replies) {
      ctl.abort();
    }
    this.replies.clear();
  }

  close() {
    clearTimeout(this.retry);
    if (this.es) {
      this.es.close();
      this.es = null;
    }
  }

  // chat posts the message and reads its reply's SSE stream. The first
  // event names the session (a new one is created by the server); the
  // transport then follows it too, for other tabs' messages and dossier
  // events.
  async chat(frame) {
    const body = { text: frame.text, client_message_id: frame.client_message_id };
    if (frame.session_id) {
      body.session_id = frame.session_id;
    }
    if (frame.project_id) {
      body.project_id = frame.project_id;
    }
    const ctl = new AbortController();
    this.replies.add(ctl);
    try {
      await this.readReply(frame, body, ctl.signal);
    } finally {
      this.replies.delete(ctl);
    }
  }

  async readReply(frame, body, signal) {
    let resp;
    try {
      resp = await fetch("/api/v1/chat", {
        method: "POST",
        headers: { ...this.conn.identity.headers(), "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(body),
        cache: "no-store",
        signal,
      });
    } catch {
      if (signal.aborted) {
        return; // the page left the session
      }
      this.conn.setState("offline");
      this.conn.onEvent({ type: "error", session_id: frame.session_id || "", failedChats: [frame.client_message_id],
        error: { code: "network_error", message: "storyd cannot be reached; your message was not sent" } });
      return;
    }
    if (!resp.ok) {
      const err = await errorOf(resp);
      this.conn.onEvent({ type: "error", session_id: frame.session_id || "", failedChats: [frame.client_message_id],
        error: { code: err.code, message: err.message } });
      return;
    }
    if (!this.es) {
      this.conn.setState("connected");
    }
    const parse = sseParser();
    const reader = resp.body.getReader();
    const decoder = new TextDecoder();
    let sessionId = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          break;
        }
        for (const data of parse(decoder.decode(value, { stream: true }))) {
          let ev;
          try {
            ev = JSON.parse(data);
          } catch {
            continue;
          }
          if (!sessionId && ev.session_id) {
            sessionId = ev.session_id;
            this.conn.onEvent({ type: "ack", session_id: sessionId, project_id: "", client_message_id: frame.client_message_id });
          }
          this.conn.onEvent(ev);
          this.adoptIfCurrent(sessionId);
        }
      }
    } catch {
      // The reply stream broke (or was aborted); the follow stream goes on.
      if (!signal.aborted) {
        this.adoptIfCurrent(sessionId);
      }
    }
  }

  // adoptIfCurrent follows sessionId if it is still the page's session.
  adoptIfCurrent(sessionId) {
    const rp = this.conn.resumePoint();
    if (sessionId && !this.stopped && rp && rp.sessionId === sessionId) {
      this.adopt(sessionId);
    }
  }

  cancel(sessionId) {
    return this.conn.api.cancel(sessionId);
  }

  pending() {
    return [];
  }

  stop() {
    this.stopped = true;
    this.unfollow();
  }
}

// Connection is the app's one connection. preferred is "auto" (WebSocket,
// falling back to SSE when it cannot connect) or "sse".
export class Connection {
  constructor({ identity, api, preferred, onEvent, onState, resumePoint }) {
    this.identity = identity;
    this.api = api;
    this.preferred = preferred;
    this.onEvent = onEvent;
    this.onStateChange = onState;
    this.resumePoint = resumePoint;
    this.fallbackReason = "";
    this.impl = null;
    this.isSignedOut = false;
  }

  get transport() {
    return this.impl ? this.impl.name : "";
  }

  start() {
    this.impl = this.preferred === "sse" || this.fallbackReason ? new SSETransport(this) : new WebSocketTransport(this);
    this.setState("connecting");
    this.impl.start();
  }

  // restart reconnects, e.g. as another identity.
  restart() {
    if (this.impl) {
      this.impl.stop();
    }
    this.isSignedOut = false;
    this.start();
  }

  // signedOut stops connecting: storyd refused the identity, and trying
  // again with it cannot help. restart (after a sign-in) starts again.
  signedOut() {
    if (this.impl) {
      this.impl.stop();
    }
    this.isSignedOut = true;
    this.setState("signed-out");
  }

  fallback(reason) {
    const pending = this.impl.pending();
    this.impl.stop();
    this.fallbackReason = reason;
    this.impl = new SSETransport(this);
    this.setState("connecting");
    this.impl.start();
    const rp = this.resumePoint();
    if (rp) {
      this.impl.follow(rp.sessionId, rp.afterSeq);
    }
    for (const f of pending) {
      this.impl.chat(f);
    }
  }

  setState(state) {
    this.onStateChange({ state, transport: this.transport, fallback: this.fallbackReason });
  }

  chat(frame) {
    if (this.isSignedOut) {
      this.onEvent({ type: "error", session_id: frame.session_id || "", failedChats: [frame.client_message_id],
        error: { code: "identity_required", message: "you are signed out" } });
      return;
    }
    this.impl.chat(frame);
  }

  follow(sessionId, afterSeq) {
    this.impl.follow(sessionId, afterSeq);
  }

  adopt(sessionId) {
    this.impl.adopt(sessionId);
  }

  unfollow() {
    this.impl.unfollow();
  }

  cancel(sessionId) {
    return this.impl.cancel(sessionId);
  }
}
