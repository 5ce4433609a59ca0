// dossier.js — the story dossier beside the chat: shown as it fills in
// (each dossier event re-reads it), edited in place with the version it
// was read at (a stale edit is a 409 the person sees and resolves), and
// its version history.

import { $, h, relativeTime } from "./dom.js";

const TEXT_FIELDS = [
  ["genre", "Genre"],
  ["tone", "Tone"],
];
const LISTS = [
  ["themes", "Themes"],
  ["locations", "Locations"],
  ["plot_points", "Plot points"],
];

function emptySnapshot() {
  return { title: "", logline: "", genre: "", tone: "", characters: [], themes: [], locations: [], plot_points: [], scenes: [] };
}

// normalize fills what a snapshot leaves out, so rendering never trips.
function normalize(s) {
  const out = emptySnapshot();
  if (!s || typeof s !== "object") {
    return out;
  }
  for (const k of ["title", "logline", "genre", "tone"]) {
    out[k] = typeof s[k] === "string" ? s[k] : "";
  }
  for (const k of ["themes", "locations", "plot_points"]) {
    out[k] = Array.isArray(s[k]) ? s[k].filter((x) => typeof x === "string") : [];
  }
  out.characters = (Array.isArray(s.characters) ? s.characters : []).map((c) => ({
    name: String(c.name || ""),
    description: String(c.description || ""),
    relationships: Array.isArray(c.relationships) ? c.relationships.map(String) : [],
    character_arc: String(c.character_arc || ""),
  }));
  out.scenes = (Array.isArray(s.scenes) ? s.scenes : []).map((sc) => ({
    one_liner: String(sc.one_liner || ""),
    interior_exterior: String(sc.interior_exterior || ""),
    time_of_day: String(sc.time_of_day || ""),
    tone: String(sc.tone || ""),
  }));
  return out;
}

function lines(text) {
  return text
    .split("\n")
    .map((x) => x.trim())
    .filter(Boolean);
}

function field(label, control, wide) {
  return h("label", { class: wide ? "field wide" : "field" }, h("span", { class: "field-label", text: label }), control);
}

const SOURCES = { user: "your edit", extraction: "from the conversation" };

// DossierPanel owns the dossier pane.
export class DossierPanel {
  constructor({ api, notify }) {
    this.api = api;
    this.notify = notify;
    this.projectId = "";
    this.current = null; // {version, snapshot, updatedAt}
    this.editing = null; // {base}: the version the edit started from
    this.viewing = null; // an old version on screen {version, snapshot, source, createdAt}
    this.conflictVersion = 0;
    // Reads of the dossier are numbered: an answer to an older read than
    // the last one shown is stale (answers can cross).
    this.reads = 0;
    this.shownRead = 0;
    this.changedSections = new Set();
    this.timer = 0;
    this.el = {
      root: $("dossier"),
      badge: $("dossier-version"),
      edit: $("dossier-edit"),
      historyToggle: $("dossier-history-toggle"),
      refresh: $("dossier-refresh"),
      conflict: $("dossier-conflict"),
      conflictText: $("dossier-conflict-text"),
      status: $("dossier-status"),
      history: $("dossier-history"),
      versions: $("dossier-versions"),
      banner: $("dossier-version-banner"),
      bannerText: $("dossier-version-banner-text"),
      view: $("dossier-view"),
      form: $("dossier-form"),
    };
    this.el.edit.addEventListener("click", () => this.startEdit());
    this.el.historyToggle.addEventListener("click", () => this.toggleHistory());
    this.el.refresh.addEventListener("click", () => this.refresh());
    $("dossier-conflict-reload").addEventListener("click", () => this.discardAndReload());
    $("dossier-conflict-overwrite").addEventListener("click", () => this.save(true));
    $("dossier-version-back").addEventListener("click", () => this.backToCurrent());
    $("dossier-version-restore").addEventListener("click", () => this.restore());
    this.el.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save(false);
    });
    this.render();
  }

  setStatus(text) {
    this.el.status.textContent = text;
  }

  // setProject shows the dossier of a project ("" for none yet).
  setProject(projectId) {
    if (projectId === this.projectId) {
      return;
    }
    clearTimeout(this.timer);
    this.projectId = projectId;
    this.current = null;
    this.editing = null;
    this.viewing = null;
    this.el.conflict.hidden = true;
    this.el.history.hidden = true;
    this.el.historyToggle.setAttribute("aria-expanded", "false");
    this.el.banner.hidden = true;
    this.el.form.hidden = true;
    this.el.view.hidden = false;
    this.setStatus("");
    this.render();
    if (projectId) {
      this.reload();
    }
  }

  // changed takes a dossier event: read the dossier again (several events
  // close together make one read).
  changed(ev) {
    for (const s of ev.changed || []) {
      this.changedSections.add(s);
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload(), 120);
  }

  async reload() {
    const pid = this.projectId;
    if (!pid) {
      return;
    }
    const read = ++this.reads;
    let next;
    try {
      const d = await this.api.dossier(pid);
      next = { version: d.version, snapshot: normalize(d.snapshot_json), updatedAt: d.updated_at };
    } catch (err) {
      if (err.status !== 404) {
        this.setStatus(`The dossier could not be loaded: ${err.message}`);
        return;
      }
      next = { version: 0, snapshot: emptySnapshot(), updatedAt: "" };
    }
    if (pid !== this.projectId || this.stale(read, next)) {
      return;
    }
    this.shownRead = read;
    const newer = !this.current || next.version !== this.current.version;
    this.current = next;
    if (this.editing) {
      this.tellEditor(next);
    } else if (!this.viewing) {
      this.render(newer);
      this.setStatus(next.version ? `Version ${next.version} · updated ${relativeTime(next.updatedAt)}` : "");
    }
    this.updateBadge();
    if (!this.el.history.hidden) {
      this.loadVersions();
    }
  }

  // stale reports whether a read's answer is older than what the page
  // shows: a later read answered already, or it holds a lower version
  // than the current one (say, a save answered meanwhile). A deletion
  // (version 0) is never taken for stale by its version.
  stale(read, next) {
    if (read < this.shownRead) {
      return true;
    }
    return next.version !== 0 && this.current !== null && next.version < this.current.version;
  }

  // tellEditor says what a read found while the person edits: saving then
  // lets them choose.
  tellEditor(next) {
    if (!this.el.conflict.hidden) {
      return;
    }
    if (next.version === 0 && this.editing.base > 0) {
      this.setStatus("The dossier was deleted while you edit; saving will let you choose.");
    } else if (next.version > this.editing.base) {
      this.setStatus(`The dossier changed while you edit (now version ${next.version}); saving will let you choose.`);
    }
  }

  updateBadge() {
    const v = this.current ? this.current.version : 0;
    this.el.badge.hidden = !v;
    this.el.badge.textContent = `v${v}`;
    this.el.badge.title = `version ${v}`;
    const none = !this.projectId;
    this.el.edit.disabled = none || this.editing !== null;
    this.el.historyToggle.disabled = none || !v;
    this.el.refresh.disabled = none;
    this.el.root.dataset.version = String(v);
    this.el.root.dataset.mode = this.editing ? "edit" : this.viewing ? "version" : "view";
  }

  // render shows a snapshot read-only: the current one, or the old
  // version being looked at.
  render(highlight) {
    const snap = this.viewing ? this.viewing.snapshot : this.current ? this.current.snapshot : null;
    const v = this.el.view;
    this.updateBadge();
    if (!snap || (!this.viewing && this.current.version === 0)) {
      v.replaceChildren(
        h(
          "div",
          { class: "dossier-empty" },
          h("p", { class: "dossier-empty-title", text: "Nothing here yet" }),
          h("p", {
            class: "muted",
            text: this.projectId
              ? "The people, places, themes and turning points of your story gather here every few turns. Refresh reads the conversation now; Edit starts the dossier by hand."
              : "As you tell your story, its people, places, themes and turning points gather here.",
          }),
        ),
      );
      return;
    }
    const mark = (name) => (highlight && this.changedSections.has(name) ? "dossier-section updated" : "dossier-section");
    const none = (text) => h("p", { class: "none", text });
    const sections = [];

    sections.push(
      h(
        "section",
        { class: `${mark("title")} dossier-headline`, id: "dossier-headline", "aria-label": "Title and logline" },
        h("h3", { class: snap.title ? "story-title" : "story-title untitled", text: snap.title || "Untitled" }),
        snap.logline ? h("p", { class: "logline", text: snap.logline }) : none("No logline yet."),
        h(
          "dl",
          { class: "facts" },
          TEXT_FIELDS.map(([k, label]) => [h("dt", { text: label }), h("dd", { text: snap[k] || "—", dataset: { field: k } })]),
        ),
      ),
    );

    sections.push(
      h(
        "section",
        { class: mark("characters"), id: "dossier-characters", "aria-labelledby": "dossier-characters-h" },
        h("h4", { id: "dossier-characters-h", text: "Characters" }),
        snap.characters.length
          ? h(
              "ul",
              { class: "cards" },
              snap.characters.map((c) =>
                h(
                  "li",
                  { class: "card" },
                  h("p", { class: "card-title", text: c.name }),
                  c.description ? h("p", { text: c.description }) : null,
                  c.relationships.length
                    ? h("ul", { class: "chips small", "aria-label": `Relationships of ${c.name}` }, c.relationships.map((r) => h("li", { text: r })))
                    : null,
                  c.character_arc ? h("p", { class: "arc" }, h("span", { class: "arc-label", text: "Arc " }), c.character_arc) : null,
                ),
              ),
            )
          : none("No one yet — who is this story about?"),
      ),
    );

    for (const [k, label] of LISTS) {
      const items = snap[k];
      let body;
      if (!items.length) {
        body = none(`No ${label.toLowerCase()} yet.`);
      } else if (k === "plot_points") {
        body = h("ol", { class: "beats" }, items.map((x) => h("li", { text: x })));
      } else {
        body = h("ul", { class: "chips" }, items.map((x) => h("li", { text: x })));
      }
      sections.push(h("section", { class: mark(k), id: `dossier-${k.replace("_", "-")}` }, h("h4", { text: label }), body));
    }

    sections.push(
      h(
        "section",
        { class: mark("scenes"), id: "dossier-scenes" },
        h("h4", { text: "Scenes" }),
        snap.scenes.length
          ? h(
              "ul",
              { class: "scenes" },
              snap.scenes.map((s) =>
                h(
                  "li",
                  {},
                  h("p", { class: "scene-line", text: s.one_liner }),
                  h("p", { class: "muted small-text", text: [s.interior_exterior, s.time_of_day, s.tone].filter(Boolean).join(" · ") }),
                ),
              ),
            )
          : none("No scenes yet."),
      ),
    );
    v.replaceChildren(...sections);
    if (highlight) {
      this.changedSections.clear();
    }
  }

  // --- editing ---------------------------------------------------------

  startEdit() {
    if (!this.projectId || !this.current) {
      return;
    }
    this.backToCurrent();
    this.editing = { base: this.current.version };
    this.el.conflict.hidden = true;
    this.buildForm(this.current.snapshot);
    this.el.view.hidden = true;
    this.el.form.hidden = false;
    this.updateBadge();
    this.setStatus(`Editing version ${this.current.version || "—"}. What you change is yours: extraction will not overwrite it.`);
    const first = this.el.form.querySelector("input, textarea");
    if (first) {
      first.focus();
    }
  }

  stopEdit() {
    this.editing = null;
    this.el.form.hidden = true;
    this.el.view.hidden = false;
    this.el.conflict.hidden = true;
    this.render();
  }

  characterEditor(c, list) {
    const fs = h(
      "fieldset",
      { class: "char-editor" },
      h("legend", { text: c.name || "New character" }),
      field("Name", h("input", { name: "char-name", value: c.name, autocomplete: "off" })),
      field("Description", h("textarea", { name: "char-description", rows: 2, value: c.description })),
      field("Relationships (one per line)", h("textarea", { name: "char-relationships", rows: 2, value: c.relationships.join("\n") })),
      field("Arc", h("textarea", { name: "char-arc", rows: 2, value: c.character_arc })),
    );
    fs.append(
      h("button", {
        type: "button",
        class: "button ghost small",
        text: "Remove character",
        "aria-label": `Remove character ${c.name || "(new)"}`,
        onclick: () => {
          fs.remove();
          list.querySelector("input")?.focus();
        },
      }),
    );
    return fs;
  }

  sceneEditor(s) {
    const fs = h(
      "fieldset",
      { class: "scene-editor" },
      h("legend", { text: "Scene" }),
      field("One line", h("input", { name: "scene-one_liner", value: s.one_liner, autocomplete: "off" }), true),
      h(
        "div",
        { class: "field-row" },
        field("INT/EXT", h("input", { name: "scene-interior_exterior", value: s.interior_exterior, autocomplete: "off" })),
        field("Time of day", h("input", { name: "scene-time_of_day", value: s.time_of_day, autocomplete: "off" })),
        field("Tone", h("input", { name: "scene-tone", value: s.tone, autocomplete: "off" })),
      ),
    );
    fs.append(h("button", { type: "button", class: "button ghost small", text: "Remove scene", onclick: () => fs.remove() }));
    return fs;
  }

  buildForm(snap) {
    const chars = h("div", { class: "editors" });
    snap.characters.forEach((c) => chars.append(this.characterEditor(c, chars)));
    const scenes = h("div", { class: "editors" });
    snap.scenes.forEach((s) => scenes.append(this.sceneEditor(s)));
    this.el.form.replaceChildren(
      field("Title", h("input", { name: "title", value: snap.title, autocomplete: "off" }), true),
      field("Logline", h("textarea", { name: "logline", rows: 2, value: snap.logline }), true),
      h("div", { class: "field-row" }, TEXT_FIELDS.map(([k, label]) => field(label, h("input", { name: k, value: snap[k], autocomplete: "off" })))),
      h(
        "fieldset",
        { class: "group" },
        h("legend", { text: "Characters" }),
        chars,
        h("button", {
          type: "button",
          class: "button small",
          text: "Add character",
          onclick: () => {
            const ed = this.characterEditor(normalize({ characters: [{}] }).characters[0], chars);
            chars.append(ed);
            ed.querySelector("input").focus();
          },
        }),
      ),
      ...LISTS.map(([k, label]) => field(`${label} (one per line)`, h("textarea", { name: k, rows: 3, value: snap[k].join("\n") }), true)),
      h(
        "fieldset",
        { class: "group" },
        h("legend", { text: "Scenes" }),
        scenes,
        h("button", {
          type: "button",
          class: "button small",
          text: "Add scene",
          onclick: () => {
            const ed = this.sceneEditor(normalize({ scenes: [{}] }).scenes[0]);
            scenes.append(ed);
            ed.querySelector("input").focus();
          },
        }),
      ),
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "button", class: "button", text: "Cancel", id: "dossier-cancel", onclick: () => this.cancelEdit() }),
        h("button", { type: "submit", class: "button primary", text: "Save", id: "dossier-save" }),
      ),
    );
  }

  readForm() {
    const f = this.el.form;
    const val = (el, name) => {
      const x = el.querySelector(`[name="${name}"]`);
      return x ? x.value.trim() : "";
    };
    const snap = emptySnapshot();
    for (const k of ["title", "logline", "genre", "tone"]) {
      snap[k] = val(f, k);
    }
    for (const [k] of LISTS) {
      snap[k] = lines(val(f, k));
    }
    snap.characters = [...f.querySelectorAll(".char-editor")]
      .map((fs) => ({
        name: val(fs, "char-name"),
        description: val(fs, "char-description"),
        relationships: lines(val(fs, "char-relationships")),
        character_arc: val(fs, "char-arc"),
      }))
      .filter((c) => c.name);
    snap.scenes = [...f.querySelectorAll(".scene-editor")]
      .map((fs) => ({
        one_liner: val(fs, "scene-one_liner"),
        interior_exterior: val(fs, "scene-interior_exterior"),
        time_of_day: val(fs, "scene-time_of_day"),
        tone: val(fs, "scene-tone"),
      }))
      .filter((s) => s.one_liner);
    return snap;
  }

  cancelEdit() {
    this.stopEdit();
    this.reload();
  }

  // save writes the edit with the version it started from; force writes
  // it over the version found at a conflict (the person chose to).
  async save(force) {
    if (!this.editing) {
      return;
    }
    const pid = this.projectId;
    const snap = this.readForm();
    const base = force ? this.conflictVersion : this.editing.base;
    this.setStatus("Saving…");
    let d;
    try {
      d = base === 0 ? await this.api.createDossier(pid, snap) : await this.api.updateDossier(pid, snap, base);
    } catch (err) {
      if (pid !== this.projectId) {
        return;
      }
      if (err.status === 409 || err.status === 404) {
        // 404: the dossier was deleted meanwhile, a conflict too.
        await this.showConflict();
      } else {
        this.setStatus(`Not saved: ${err.message}`);
      }
      return;
    }
    if (pid !== this.projectId) {
      return;
    }
    this.current = { version: d.version, snapshot: normalize(d.snapshot_json), updatedAt: d.updated_at };
    this.stopEdit();
    this.setStatus(`Saved as version ${d.version}.`);
    if (!this.el.history.hidden) {
      this.loadVersions();
    }
  }

  // showConflict reads the dossier as it is now and lets the person
  // choose. When it was deleted (version 0), "Save mine anyway" creates it
  // again with the edit (save: version 0 is a POST).
  async showConflict() {
    let now = null;
    try {
      now = await this.api.dossier(this.projectId);
    } catch (err) {
      if (err.status === 404) {
        now = { version: 0, snapshot_json: emptySnapshot(), updated_at: "" };
      } // else shown without the version
    }
    if (!this.editing) {
      return;
    }
    this.conflictVersion = now ? now.version : this.editing.base;
    if (now) {
      this.current = { version: now.version, snapshot: normalize(now.snapshot_json), updatedAt: now.updated_at };
    }
    this.el.conflictText.textContent = now && now.version === 0
      ? `Conflict: the dossier was deleted while you were editing (you started from version ${this.editing.base}).` +
        " Your changes are not saved. Reload to see it as it is now (your edit is discarded), or save yours to create it again."
      : `Conflict: the dossier changed while you were editing` +
        (now ? ` — it is now at version ${now.version}, you started from version ${this.editing.base}.` : ".") +
        " Your changes are not saved. Reload to see the latest (your edit is discarded), or save yours over it.";
    this.el.conflict.hidden = false;
    this.setStatus("");
    this.updateBadge();
  }

  async discardAndReload() {
    this.stopEdit();
    this.current = null;
    await this.reload();
  }

  // --- history ---------------------------------------------------------

  toggleHistory() {
    const open = this.el.history.hidden;
    this.el.history.hidden = !open;
    this.el.historyToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      this.loadVersions();
    }
  }

  async loadVersions() {
    const pid = this.projectId;
    let list;
    try {
      list = await this.api.versions(pid);
    } catch (err) {
      this.el.versions.replaceChildren(h("li", { class: "muted", text: err.status === 404 ? "No versions yet." : err.message }));
      return;
    }
    if (pid !== this.projectId) {
      return;
    }
    this.el.versions.replaceChildren(
      ...list.map((v) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: this.viewing && this.viewing.version === v.version ? "version current" : "version",
              onclick: () => this.showVersion(v.version),
            },
            h("span", { class: "version-n", text: `v${v.version}` }),
            h("span", { text: SOURCES[v.source] || v.source }),
            h("span", { class: "muted", text: relativeTime(v.created_at) }),
          ),
        ),
      ),
    );
  }

  async showVersion(n) {
    if (this.editing) {
      this.notify("Finish or cancel your edit first.");
      return;
    }
    if (this.current && n === this.current.version) {
      this.backToCurrent();
      return;
    }
    let v;
    try {
      v = await this.api.version(this.projectId, n);
    } catch (err) {
      this.setStatus(`Version ${n} could not be loaded: ${err.message}`);
      return;
    }
    this.viewing = { version: n, snapshot: normalize(v.snapshot_json), source: v.source, createdAt: v.created_at };
    this.el.bannerText.textContent = `Version ${n} · ${SOURCES[v.source] || v.source} · ${relativeTime(v.created_at)}`;
    this.el.banner.hidden = false;
    this.render();
    this.loadVersions();
  }

  backToCurrent() {
    if (!this.viewing) {
      return;
    }
    this.viewing = null;
    this.el.banner.hidden = true;
    this.render();
    if (!this.el.history.hidden) {
      this.loadVersions();
    }
  }

  async restore() {
    if (!this.viewing || !this.current) {
      return;
    }
    const n = this.viewing.version;
    try {
      const d = await this.api.updateDossier(this.projectId, this.viewing.snapshot, this.current.version);
      this.current = { version: d.version, snapshot: normalize(d.snapshot_json), updatedAt: d.updated_at };
      this.setStatus(`Version ${n} restored as version ${d.version}.`);
    } catch (err) {
      this.setStatus(err.status === 409 ? "The dossier changed meanwhile; look again and restore." : `Not restored: ${err.message}`);
      await this.reload();
    }
    this.backToCurrent();
  }

  // --- refresh ---------------------------------------------------------

  async refresh() {
    if (!this.projectId) {
      return;
    }
    try {
      const r = await this.api.refreshDossier(this.projectId);
      this.setStatus(r.extracting ? "Reading the latest turns into the dossier…" : "The dossier is up to date with the conversation.");
    } catch (err) {
      this.setStatus(err.status === 404 ? "Nothing to read yet: tell the story first." : `Refresh failed: ${err.message}`);
    }
  }
}
