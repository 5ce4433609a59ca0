// api.js — who the page is (an anonymous id or a pasted access token) and
// the REST calls of storyd's /api/v1, with that identity attached.

const ANON_KEY = "storyd.anonymousId";
const TOKEN_KEY = "storyd.accessToken";

// uuid4 returns a random UUID (version 4). crypto.randomUUID exists only in
// secure contexts; getRandomValues everywhere.
export function uuid4() {
  if (typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function readStore(store, key) {
  try {
    return store.getItem(key) || "";
  } catch {
    return "";
  }
}

function writeStore(store, key, value) {
  try {
    if (value) {
      store.setItem(key, value);
    } else {
      store.removeItem(key);
    }
  } catch {
    // Storage may be disabled (private mode); the page still works for
    // this visit.
  }
}

// tokenSubject reads the sub claim of a JWT without verifying it (the
// server verifies); "" when it cannot be read.
export function tokenSubject(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
    return typeof claims.sub === "string" ? claims.sub : "";
  } catch {
    return "";
  }
}

// Identity is the caller: a pasted access token when there is one,
// otherwise an anonymous id made here and kept in localStorage (storyd
// accepts any UUID as a new anonymous id).
export class Identity {
  constructor() {
    this.anonymousId = readStore(localStorage, ANON_KEY);
    if (!this.anonymousId) {
      this.anonymousId = uuid4();
      writeStore(localStorage, ANON_KEY, this.anonymousId);
    }
    this.token = readStore(localStorage, TOKEN_KEY);
  }

  get signedIn() {
    return this.token !== "";
  }

  // userId is the id the server knows the caller by, as far as the page
  // can tell.
  get userId() {
    return this.signedIn ? tokenSubject(this.token) : this.anonymousId;
  }

  signIn(token) {
    this.token = token;
    writeStore(localStorage, TOKEN_KEY, token);
  }

  signOut() {
    this.token = "";
    writeStore(localStorage, TOKEN_KEY, "");
  }

  // forgetAnonymous starts a new anonymous id (the old one was migrated
  // to an account and is refused from now on).
  forgetAnonymous() {
    this.anonymousId = uuid4();
    writeStore(localStorage, ANON_KEY, this.anonymousId);
  }

  headers() {
    return this.signedIn ? { Authorization: `Bearer ${this.token}` } : { "X-User-ID": this.anonymousId };
  }

  // query is the identity as URL parameters, for EventSource, which
  // cannot set headers.
  query() {
    return this.signedIn
      ? `access_token=${encodeURIComponent(this.token)}`
      : `user_id=${encodeURIComponent(this.anonymousId)}`;
  }

  // authFrame is the WebSocket's first frame.
  authFrame() {
    return this.signedIn ? { type: "auth", access_token: this.token } : { type: "auth", user_id: this.anonymousId };
  }
}

// APIError is a non-2xx answer: status, and storyd's error code and message.
export class APIError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
  }
}

// errorOf turns a failed response into an APIError.
export async function errorOf(resp) {
  let code = "";
  let message = `the server answered ${resp.status}`;
  try {
    const body = await resp.json();
    if (body && body.error) {
      code = body.error.code || "";
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new APIError(resp.status, code, message);
}

// API calls storyd's REST endpoints as the identity.
export class API {
  constructor(identity) {
    this.identity = identity;
  }

  // request sends one request and returns the decoded JSON body; a non-2xx
  // answer throws an APIError, a network failure an APIError of status 0.
  async request(method, path, body, headers = {}) {
    const init = { method, headers: { ...this.identity.headers(), ...headers }, cache: "no-store" };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new APIError(0, "network_error", "storyd cannot be reached");
    }
    if (!resp.ok) {
      throw await errorOf(resp);
    }
    return resp.status === 204 ? null : resp.json();
  }

  sessions() {
    return this.request("GET", "/api/v1/sessions?limit=100");
  }

  deleteSession(id) {
    return this.request("DELETE", `/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  cancel(id) {
    return this.request("POST", `/api/v1/sessions/${encodeURIComponent(id)}/cancel`);
  }

  // messages returns every message of a session, in order, page by page.
  async messages(id) {
    const all = [];
    for (let offset = 0; ; offset += 200) {
      const page = await this.request("GET", `/api/v1/sessions/${encodeURIComponent(id)}/messages?limit=200&offset=${offset}`);
      all.push(...page);
      if (page.length < 200) {
        return all;
      }
    }
  }

  // probeSession reads one message of a session: whether it is there and
  // the identity is accepted (it throws the APIError otherwise).
  probeSession(id) {
    return this.request("GET", `/api/v1/sessions/${encodeURIComponent(id)}/messages?limit=1`);
  }

    dossier(projectId) {
    return this.request("GET", `/api/v1/dossier/${encodeURIComponent(projectId)}`);
  }

  createDossier(projectId, snapshot) {
    return this.request("POST", "/api/v1/dossier", { project_id: projectId, snapshot_json: snapshot });
  }

  updateDossier(projectId, snapshot, version) {
    return this.request("PUT", `/api/v1/dossier/${encodeURIComponent(projectId)}`, { snapshot_json: snapshot, version });
  }

  refreshDossier(projectId) {
    return this.request("POST", `/api/v1/dossier/${encodeURIComponent(projectId)}/refresh`);
  }

  versions(projectId) {
    return this.request("GET", `/api/v1/dossier/${encodeURIComponent(projectId)}/versions`);
  }

  version(projectId, n) {
    return this.request("GET", `/api/v1/dossier/${encodeURIComponent(projectId)}/versions/${n}`);
  }

  migrate(tempUserId, permanentUserId) {
    return this.request("POST", "/api/v1/sessions/migrate", { temp_user_id: tempUserId, permanent_user_id: permanentUserId });
  }
}
