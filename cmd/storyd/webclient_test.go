package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
)

// The web client (transport/webclient) driven in a real browser: headless
// Chromium (Debian's chromium package; deploy/test.sh installs it) against
// storyd started through run, with a slow offline interviewer so that a
// reply is still streaming when the test stops it, reloads the page or cuts
// the network, and with extraction after every turn so the dossier fills.
//
// One browser for the whole test; each part has its own browser context
// (its own storage, so its own anonymous user).
//
// STORYD_UPDATE_SCREENSHOT=1 writes the screenshot of the page to
// docs/web-client.png; otherwise it goes to a temporary directory (or to
// STORYD_SCREENSHOT_DIR).

const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait on the page: generous, for -race on two
// cores shared with other tests.
const browserWait = 90 * time.Second

func TestWebClientInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("STORYD_REQUIRE_SERVICES") != "" {
			t.Fatalf("%s is missing (deploy/test.sh installs Debian's chromium): %v", chromiumPath, err)
		}
		t.Skipf("%s is missing; install Debian's chromium (make test does) to run the browser tests", chromiumPath)
	}
	const secret = "SUPABASE_JWT_SECRET=browser-test-secret-0123456789abcdef"
	s := start(t, "STORYD_DATA_DIR="+t.TempDir(), "STORYD_OFFLINE_TOKEN_DELAY=150ms", "STORYD_EXTRACT_TURNS=1", secret)
	// slow: an interviewer slower still, for the parts that must catch a
	// reply in the middle (a reload, a drop, leaving and coming back).
	slow := &slowServer{start(t, "STORYD_DATA_DIR="+t.TempDir(), "STORYD_OFFLINE_TOKEN_DELAY=400ms")}
	b := newBrowser(t)

	t.Run("conversation, dossier, edit and conflict", func(t *testing.T) {
		p := b.open(t, s.url+"/")
		p.waitConnected("websocket")
		p.screenshot("web-client-new.png", false)

		// Shift+Enter is a new line, not a send.
		p.do(chromedp.SendKeys(chromedp.CSS("#composer-input"), "A film"),
			chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)))
		if v := eval[string](p, `document.getElementById("composer-input").value`); v != "A film\n" || p.count("#messages li") != 0 {
			t.Fatalf("after Shift+Enter: value %q, %d messages", v, p.count("#messages li"))
		}
		eval[string](p, `document.getElementById("composer-input").value = ""`)

		p.say("I want to make a film about my grandmother, Ada Whitlock. She kept the lighthouse on Gull Rock off the coast of Maine.")
		// The reply streams in: text on the page while it is still streaming.
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "a reply streaming")
		first := p.waitReply(1, "complete")
		user, session := p.data("userId"), p.data("sessionId")
		msgs := s.messages(t, user, session)
		if len(msgs) != 2 || msgs[1]["content"] != first.Text || !strings.Contains(first.Text, "offline interviewer") {
			t.Fatalf("page shows %q; stored %v", first.Text, msgs)
		}
		// Extraction after every turn: the dossier event fills the panel.
		p.waitFor(`document.getElementById("dossier-characters").textContent.includes("Ada Whitlock")`, "Ada in the dossier")
		p.waitFor(`document.getElementById("dossier-locations").textContent.includes("Gull Rock")`, "Gull Rock in the dossier")

		p.say("Her only friend is Tom Pruitt, the mailboat captain. It's about duty and loneliness. It's called The Keeper of Gull Rock.")
		p.waitReply(2, "complete")
		p.waitFor(`document.getElementById("dossier-characters").textContent.includes("Tom Pruitt")`, "Tom in the dossier")
		p.say("It should feel quiet and bittersweet, a slow drama. In 1962 the Coast Guard decides to automate the light.")
		p.waitReply(3, "complete")
		p.waitFor(`document.getElementById("dossier-plot-points").textContent.includes("1962")`, "the plot point in the dossier")
		p.waitFor(`document.querySelectorAll("#session-list li").length === 1`, "the story in the list")

		projectID := p.data("projectId")
		hdr := map[string]string{"X-User-ID": user}
		version := func() (int, map[string]any) {
			st, body := s.call(t, "GET", "/api/v1/dossier/"+projectID, hdr, "")
			if st != 200 {
				t.Fatalf("get dossier: %d %v", st, body)
			}
			d := body.(map[string]any)
			return int(d["version"].(float64)), d["snapshot_json"].(map[string]any)
		}

		// An edit in place.
		const logline = "The last keeper of a Maine lighthouse refuses to leave when the light goes automatic."
		p.click(chromedp.CSS("#dossier-edit"))
		p.waitFor(`!document.getElementById("dossier-form").hidden`, "the dossier form")
		p.do(chromedp.SetValue(chromedp.CSS(`#dossier-form [name="title"]`), "The Last Keeper"),
			chromedp.SetValue(chromedp.CSS(`#dossier-form [name="logline"]`), logline),
			chromedp.Click(chromedp.CSS("#dossier-save")))
		p.waitFor(`document.querySelector("#dossier-headline .story-title").textContent === "The Last Keeper"`, "the saved title")
		v, snap := version()
		if themes, _ := json.Marshal(snap["themes"]); !strings.Contains(string(themes), "loneliness") {
			t.Errorf("the edit lost the themes: %v", snap)
		}
		if snap["title"] != "The Last Keeper" || snap["logline"] != logline {
			t.Fatalf("stored title %v, logline %v", snap["title"], snap["logline"])
		}
		p.screenshot("web-client.png", true)

		// A conflict: the dossier changes behind the page's back while it
		// edits; saving shows the conflict, and reloading shows the change.
		p.click(chromedp.CSS("#dossier-edit"))
		p.waitFor(`!document.getElementById("dossier-form").hidden`, "the dossier form")
		p.do(chromedp.SetValue(chromedp.CSS(`#dossier-form [name="logline"]`), "A keeper refuses to leave her light."))
		snap["genre"] = "Drama (changed elsewhere)"
		body, _ := json.Marshal(map[string]any{"snapshot_json": snap, "version": v})
		if st, resp := s.call(t, "PUT", "/api/v1/dossier/"+projectID, hdr, string(body)); st != 200 {
			t.Fatalf("PUT behind the page's back: %d %v", st, resp)
		}
		p.click(chromedp.CSS("#dossier-save"))
		p.waitFor(`!document.getElementById("dossier-conflict").hidden &&
			document.getElementById("dossier-conflict-text").textContent.includes("Conflict")`, "the conflict")
		if got := eval[string](p, `document.querySelector('#dossier-form [name="logline"]').value`); got != "A keeper refuses to leave her light." {
			t.Fatalf("the edit was lost at the conflict: %q", got)
		}
		p.screenshot("web-client-conflict.png", false)
		p.click(chromedp.CSS("#dossier-conflict-reload"))
		p.waitFor(`document.getElementById("dossier-form").hidden &&
			document.querySelector('#dossier-view [data-field="genre"]').textContent === "Drama (changed elsewhere)"`, "the reloaded dossier")
		if v2, snap2 := version(); v2 != v+1 || snap2["logline"] == "A keeper refuses to leave her light." {
			t.Fatalf("after the conflict: version %d (had %d), logline %v", v2, v, snap2["logline"])
		}

		// The history lists every version; an old one can be looked at.
		p.click(chromedp.CSS("#dossier-history-toggle"))
		p.waitFor(`document.querySelectorAll("#dossier-versions button.version").length >= 3`, "the versions")
		p.click(chromedp.CSS("#dossier-versions li:last-child button"))
		p.waitFor(`!document.getElementById("dossier-version-banner").hidden &&
			document.getElementById("dossier-version-banner-text").textContent.startsWith("Version 1")`, "version 1")
		p.click(chromedp.CSS("#dossier-version-back"))
		p.waitFor(`document.getElementById("dossier-version-banner").hidden`, "back to the current version")

		// On a phone-sized screen the dossier stacks below the chat.
		p.do(chromedp.EmulateViewport(390, 844))
		p.waitFor(`(() => { const c = document.getElementById("chat").getBoundingClientRect(),
			d = document.getElementById("dossier").getBoundingClientRect(); return d.top >= c.bottom - 1 && d.width > 300; })()`, "the stacked layout")
		p.screenshot("web-client-phone.png", false)
		p.check()
	})

	t.Run("stop, switch and delete", func(t *testing.T) {
		p := b.open(t, s.url+"/")
		p.waitConnected("websocket")
		p.say("A film about two sisters who run a night market stall in Taipei.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "a reply streaming")
		p.waitFor(`!document.getElementById("stop").hidden`, "the Stop button")
		p.click(chromedp.CSS("#stop"))
		stopped := p.waitReply(1, "cancelled")
		// Stop hides itself: the focus goes to the message box, not away.
		p.waitFor(`document.activeElement === document.getElementById("composer-input")`, "the focus in the message box after Stop")
		user, session := p.data("userId"), p.data("sessionId")
		msgs := s.messages(t, user, session)
		if len(msgs) != 2 || msgs[1]["status"] != "cancelled" || msgs[1]["content"] != stopped.Text {
			t.Fatalf("page shows %q; stored %v", stopped.Text, msgs)
		}
		p.waitFor(`document.getElementById("stop").hidden`, "Stop hidden again")

		// A second story, then back to the first, then delete it.
		p.click(chromedp.CSS("#new-session"))
		p.waitFor(`document.querySelectorAll("#messages li").length === 0`, "an empty chat")
		p.say("A film about a retired boxer who teaches his granddaughter to drive.")
		p.waitReply(1, "complete")
		p.waitFor(`document.querySelectorAll("#session-list li").length === 2`, "two stories in the list")
		p.click(chromedp.CSS(`#session-list li[data-session-id="` + session + `"] .session-open`))
		p.waitFor(`document.getElementById("app").dataset.sessionId === `+jsString(session)+` &&
			document.querySelectorAll("#messages li.msg").length === 2 &&
			document.querySelector("#messages li.msg.assistant").dataset.status === "cancelled"`, "the first story's history")
		del := chromedp.CSS(`#session-list li[data-session-id="` + session + `"] .session-delete`)
		p.click(del)
		p.waitFor(`document.querySelector('#session-list li[data-session-id=`+jsString(session)+`] .session-delete').textContent === "Delete?"`, "the delete confirmation")
		p.click(del)
		p.waitFor(`document.querySelectorAll("#session-list li").length === 1 && document.getElementById("app").dataset.sessionId === ""`, "the story deleted")
		// The focus was on the delete button: it moves to the story left.
		p.waitFor(`document.activeElement === document.querySelector("#session-list li .session-open")`, "the focus on the next story")
		if st, _ := s.call(t, "GET", "/api/v1/sessions/"+session+"/messages", map[string]string{"X-User-ID": user}, ""); st != 404 {
			t.Fatalf("deleted session's messages: %d", st)
		}
		p.check()
	})

	for _, transport := range []string{"websocket", "sse"} {
		t.Run("two messages sent at once on a new story make one story ("+transport+")", func(t *testing.T) {
			q := "/"
			if transport == "sse" {
				q = "/?transport=sse"
			}
			p := b.open(t, s.url+q)
			p.waitConnected(transport)
			// Both in one go, before the first one's ack can come back.
			first, second := "A film about a glassblower on Murano.", "Her rival is her own sister, Lucia."
			eval[bool](p, `(() => { const f = document.getElementById("composer"), i = document.getElementById("composer-input");
				i.value = `+jsString(first)+`; f.requestSubmit(); i.value = `+jsString(second)+`; f.requestSubmit(); return true; })()`)
			p.waitReply(2, "complete")
			p.waitFor(`document.getElementById("stop").hidden && document.getElementById("app").dataset.busy === "false"`, "Stop hidden")
			user, session := p.data("userId"), p.data("sessionId")
			st, body := s.call(t, "GET", "/api/v1/sessions", map[string]string{"X-User-ID": user}, "")
			if list, _ := body.([]any); st != 200 || len(list) != 1 || list[0].(map[string]any)["session_id"] != session {
				t.Fatalf("the user's sessions: %d %v (the page shows %s)", st, body, session)
			}
			msgs := s.messages(t, user, session)
			replies := eval[[]string](p, `[...document.querySelectorAll("#messages li.msg.assistant .text")].map(e => e.textContent)`)
			if len(msgs) != 4 || msgs[0]["content"] != first || msgs[2]["content"] != second || len(replies) != 2 ||
				msgs[1]["content"] != replies[0] || msgs[3]["content"] != replies[1] || p.count("#messages li.msg.user") != 2 {
				t.Fatalf("page shows %q; stored %v", replies, msgs)
			}
			p.check()
		})
	}

	t.Run("SSE: leaving a story mid-reply and coming back shows the reply once", func(t *testing.T) {
		// Through a link on which the history comes slowly, as on a poor
		// network: the reply goes on while the page loads it.
		target, _ := url.Parse(slow.url)
		rp := httputil.NewSingleHostReverseProxy(target)
		slowLink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == "GET" && strings.HasSuffix(r.URL.Path, "/messages") {
				select {
				case <-time.After(1500 * time.Millisecond):
				case <-r.Context().Done():
					return
				}
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(slowLink.Close)
		p := b.open(t, slowLink.URL+"/?transport=sse")
		p.waitConnected("sse")
		p.say("A film about a piano tuner in Vienna who is going deaf.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "a reply streaming")
		user, session := p.data("userId"), p.data("sessionId")
		p.waitFor(`document.querySelector('#session-list li[data-session-id=`+jsString(session)+`]') !== null`, "the story in the list")
		p.click(chromedp.CSS("#new-session"))
		p.waitFor(`document.getElementById("app").dataset.sessionId === "" && document.querySelectorAll("#messages li").length === 0`, "a new story")
		p.click(chromedp.CSS(`#session-list li[data-session-id="` + session + `"] .session-open`))
		p.waitFor(`document.getElementById("app").dataset.sessionId === `+jsString(session), "back to the story")
		slow.inFlight(t, user, session, 1, "coming back")
		reply := p.waitReply(1, "complete")
		msgs := slow.messages(t, user, session)
		if len(msgs) != 2 || msgs[1]["status"] != "complete" || msgs[1]["content"] != reply.Text || p.count("#messages li.msg") != 2 {
			t.Fatalf("page shows %q (%d messages); stored %v", reply.Text, p.count("#messages li.msg"), msgs)
		}
		p.check()
	})

	t.Run("SSE: a story deleted elsewhere is said, not retried for ever", func(t *testing.T) {
		proxy := newDropProxy(t, s.url)
		p := b.open(t, proxy.url+"/?transport=sse")
		p.waitConnected("sse")
		p.say("A film about a night watchman at a museum in Lisbon.")
		p.waitReply(1, "complete")
		user, session := p.data("userId"), p.data("sessionId")
		if st, body := s.call(t, "DELETE", "/api/v1/sessions/"+session, map[string]string{"X-User-ID": user}, ""); st != 200 {
			t.Fatalf("delete: %d %v", st, body)
		}
		proxy.drop() // EventSource reconnects, and is refused
		p.waitFor(`document.getElementById("app").dataset.sessionId === "" &&
			document.getElementById("notice-text").textContent === "This story is no longer available."`, "the story gone")
		p.check()
	})

	t.Run("a refused token signs out and keeps the message", func(t *testing.T) {
		p := b.open(t, s.url+"/")
		p.waitConnected("websocket")
		eval[bool](p, `(localStorage.setItem("storyd.accessToken", "not-a-token"), true)`)
		p.do(chromedp.Reload())
		p.waitFor(`document.getElementById("conn").dataset.state === "signed-out" && document.getElementById("signin-dialog").open &&
			document.getElementById("notice-text").textContent.includes("Sign in again")`, "signed out")
		p.click(chromedp.CSS("#signin-cancel"))
		const text = "A film about a cartographer who maps a city that does not exist."
		eval[bool](p, `(() => { document.getElementById("composer-input").value = `+jsString(text)+`;
			document.getElementById("composer").requestSubmit(); return true; })()`)
		p.waitFor(`(() => { const u = document.querySelector("#messages li.msg.user"); return u && u.dataset.status === "failed" &&
			document.getElementById("composer-input").value === `+jsString(text)+` && document.getElementById("stop").hidden; })()`, "the message not sent, kept")
		p.check()
	})

	t.Run("a dossier deleted while it is edited can be saved again", func(t *testing.T) {
		p := b.open(t, s.url+"/")
		p.waitConnected("websocket")
		p.say("A film about Rosa Vidal, a beekeeper in the Pyrenees.")
		p.waitReply(1, "complete")
		p.waitFor(`Number(document.getElementById("dossier").dataset.version) > 0`, "the dossier")
		user, projectID := p.data("userId"), p.data("projectId")
		hdr := map[string]string{"X-User-ID": user}
		p.click(chromedp.CSS("#dossier-edit"))
		p.waitFor(`!document.getElementById("dossier-form").hidden`, "the dossier form")
		const logline = "A beekeeper keeps her hives through the worst winter in memory."
		p.do(chromedp.SetValue(chromedp.CSS(`#dossier-form [name="logline"]`), logline))
		if st, body := s.call(t, "DELETE", "/api/v1/dossier/"+projectID, hdr, ""); st != 200 && st != 204 {
			t.Fatalf("delete the dossier: %d %v", st, body)
		}
		p.waitFor(`document.getElementById("dossier-status").textContent.includes("deleted")`, "the deletion said")
		p.click(chromedp.CSS("#dossier-save"))
		p.waitFor(`!document.getElementById("dossier-conflict").hidden &&
			document.getElementById("dossier-conflict-text").textContent.includes("deleted")`, "the conflict")
		p.click(chromedp.CSS("#dossier-conflict-overwrite"))
		p.waitFor(`document.getElementById("dossier-form").hidden && document.getElementById("dossier-status").textContent.startsWith("Saved")`, "saved")
		st, body := s.call(t, "GET", "/api/v1/dossier/"+projectID, hdr, "")
		if d, _ := body.(map[string]any); st != 200 || d["snapshot_json"].(map[string]any)["logline"] != logline {
			t.Fatalf("the dossier after saving again: %d %v", st, body)
		}
		p.check()
	})

	t.Run("reload and network drop mid-reply resume without duplicates", func(t *testing.T) {
		s := slow
		proxy := newDropProxy(t, s.url)
		p := b.open(t, proxy.url+"/")
		p.waitConnected("websocket")
		p.say("A film about my father, Ben Okafor, a night-shift nurse in Lagos.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "a reply streaming")
		user, session := p.data("userId"), p.data("sessionId")
		p.do(chromedp.Reload())
		// The reload must have come mid-reply (the reply not stored yet), or
		// this part proves nothing.
		slow.inFlight(t, user, session, 1, "the reload")
		reply := p.waitReply(1, "complete")
		msgs := s.messages(t, user, session)
		if len(msgs) != 2 || msgs[1]["content"] != reply.Text || p.count("#messages li.msg.user") != 1 {
			t.Fatalf("after a reload the page shows %q (%d user messages); stored %v", reply.Text, p.count("#messages li.msg.user"), msgs)
		}

		// The network drops mid-reply: the page reconnects and resumes after
		// the last seq it saw.
		p.say("His best friend is Chidi, who drives the hospital van.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "the second reply streaming")
		proxy.drop()
		slow.inFlight(t, user, session, 3, "the drop")
		reply = p.waitReply(2, "complete")
		p.waitConnected("websocket")
		msgs = s.messages(t, user, session)
		if len(msgs) != 4 || msgs[3]["content"] != reply.Text || p.count("#messages li.msg.user") != 2 {
			t.Fatalf("after a drop the page shows %q (%d user messages); stored %v", reply.Text, p.count("#messages li.msg.user"), msgs)
		}
		if proxy.drops() == 0 {
			t.Fatal("the proxy dropped no connection")
		}
		p.check()
	})

	t.Run("SSE with ?transport=sse: reload, network drop, Stop", func(t *testing.T) {
		proxy := newDropProxy(t, s.url)
		p := b.open(t, proxy.url+"/?transport=sse")
		p.waitConnected("sse")
		p.say("A film about Mei Lin, a ferry pilot in Hong Kong. It's about courage.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.split(" ").length >= 3; })()`, "a reply streaming")
		p.do(chromedp.Reload())
		reply := p.waitReply(1, "complete")
		p.waitConnected("sse")
		user, session := p.data("userId"), p.data("sessionId")
		msgs := s.messages(t, user, session)
		if len(msgs) != 2 || msgs[1]["content"] != reply.Text || p.count("#messages li.msg.user") != 1 {
			t.Fatalf("page shows %q; stored %v", reply.Text, msgs)
		}
		p.waitFor(`document.getElementById("dossier-characters").textContent.includes("Mei Lin")`, "Mei Lin in the dossier")

		// The network drops mid-reply: EventSource reconnects with
		// Last-Event-ID, and the page dedupes what both streams sent.
		p.say("Her brother Wei works on the night ferry.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.split(" ").length >= 3; })()`, "the second reply streaming")
		proxy.drop()
		reply = p.waitReply(2, "complete")
		p.waitConnected("sse")
		msgs = s.messages(t, user, session)
		if len(msgs) != 4 || msgs[3]["content"] != reply.Text || p.count("#messages li.msg.user") != 2 {
			t.Fatalf("after a drop the page shows %q; stored %v", reply.Text, msgs)
		}
		if proxy.drops() == 0 {
			t.Fatal("the proxy dropped no connection")
		}

		// Stop over SSE is POST /cancel.
		p.say("One night the ferry does not come back.")
		p.waitFor(`(() => { const r = lastReply(); return r && r.status === "streaming" && r.text.length > 0; })()`, "the third reply streaming")
		p.click(chromedp.CSS("#stop"))
		stopped := p.waitReply(3, "cancelled")
		msgs = s.messages(t, user, session)
		if len(msgs) != 6 || msgs[5]["status"] != "cancelled" || msgs[5]["content"] != stopped.Text {
			t.Fatalf("page shows %q; stored %v", stopped.Text, msgs)
		}
		p.check()
	})

	t.Run("sign in with a pasted token keeps the stories", func(t *testing.T) {
		p := b.open(t, s.url+"/")
		p.waitConnected("websocket")
		p.say("A film about a clockmaker in Prague who repairs the astronomical clock.")
		p.waitReply(1, "complete")
		anon, session := p.data("userId"), p.data("sessionId")

		// The token storyd token prints, as the README tells.
		account := uuid.NewString()
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token", "-sub", account}, []string{secret}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		p.click(chromedp.CSS("#identity-button"))
		p.waitFor(`document.getElementById("signin-dialog").open`, "the sign-in dialog")
		p.do(chromedp.SetValue(chromedp.CSS("#signin-token"), strings.TrimSpace(out.String())),
			chromedp.Click(chromedp.CSS("#signin-submit")))
		p.waitFor(`!document.getElementById("signin-dialog").open && document.getElementById("app").dataset.userId === `+jsString(account)+` &&
			document.querySelectorAll("#session-list li").length === 1`, "signed in, with the story moved")
		p.waitConnected("websocket")
		bearer := map[string]string{"Authorization": "Bearer " + strings.TrimSpace(out.String())}
		if st, body := s.call(t, "GET", "/api/v1/sessions/"+session+"/messages", bearer, ""); st != 200 || len(body.([]any)) != 2 {
			t.Fatalf("the account's view of the story: %d %v", st, body)
		}
		if st, _ := s.call(t, "GET", "/api/v1/sessions", map[string]string{"X-User-ID": anon}, ""); st != 401 {
			t.Fatalf("the migrated anonymous id: %d", st)
		}
		// Go on with the story as the account (the socket sends the token).
		p.click(chromedp.CSS(`#session-list li[data-session-id="` + session + `"] .session-open`))
		p.waitFor(`document.querySelectorAll("#messages li.msg").length === 2`, "the story's history")
		p.say("Her apprentice, Jan, wants to leave for Vienna.")
		reply := p.waitReply(2, "complete")
		if st, body := s.call(t, "GET", "/api/v1/sessions/"+session+"/messages", bearer, ""); st != 200 || len(body.([]any)) != 4 ||
			body.([]any)[3].(map[string]any)["content"] != reply.Text {
			t.Fatalf("after a signed-in turn: %d %v", st, body)
		}
		p.check()
	})

	t.Run("falls back to SSE when the WebSocket is blocked", func(t *testing.T) {
		target, _ := url.Parse(s.url)
		rp := httputil.NewSingleHostReverseProxy(target)
		blocking := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
				http.Error(w, "WebSockets are not allowed here", http.StatusForbidden)
				return
			}
			rp.ServeHTTP(w, r)
		}))
		t.Cleanup(blocking.Close)
		p := b.open(t, blocking.URL+"/")
		p.waitConnected("sse")
		p.say("A film about a beekeeper in Provence.")
		reply := p.waitReply(1, "complete")
		msgs := s.messages(t, p.data("userId"), p.data("sessionId"))
		if len(msgs) != 2 || msgs[1]["content"] != reply.Text {
			t.Fatalf("page shows %q; stored %v", reply.Text, msgs)
		}
		p.check()
	})
}

// slowServer is a storyd whose interviewer is slow enough that a part can
// act in the middle of a reply.
type slowServer struct{ *server }

// inFlight fails the test when the session already stores more than
// stored messages: the reply was over before what (a reload, a drop) it
// was meant to interrupt, so the part would prove nothing.
func (s *slowServer) inFlight(t *testing.T, user, session string, stored int, what string) {
	t.Helper()
	if msgs := s.messages(t, user, session); len(msgs) != stored {
		t.Fatalf("the reply was over before %s (%d messages stored); the test needs it in flight", what, len(msgs))
	}
}

// browser is one headless Chromium for a test.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	dir := t.TempDir() // removed after the browser stops (cleanups run last first)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(dir),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		// Without these Chromium calls home, and this closed network
		// refuses it.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1440, 900),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", chromiumPath, err)
	}
	return &browser{t: t, ctx: ctx}
}

// page is one tab, in a browser context of its own.
type page struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	problems []string
	logs     []string
}

// helpers are defined in every page the test opens (the page's own code
// stays untouched).
const helpers = `window.lastReply = () => {
	const all = document.querySelectorAll("#messages li.msg.assistant");
	const li = all[all.length - 1];
	return li ? {status: li.dataset.status, text: li.querySelector(".text").textContent, count: all.length} : null;
};`

func (b *browser) open(t *testing.T, pageURL string) *page {
	t.Helper()
	p := &page{t: t}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(p.listen))
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(cancelTimeout)
	p.ctx = ctx
	p.do(chromedp.EmulateViewport(1440, 900), chromedp.Navigate(pageURL))
	return p
}

// listen records what the page says on its console: exceptions and CSP
// refusals fail the test; other errors (a request cut by a reload) are logged.
func (p *page) listen(ev any) {
	var line string
	var bad bool
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		line, bad = "exception: "+(&chromedp.ExceptionError{ExceptionDetails: ev.ExceptionDetails}).Error(), true
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			line = "console.error: " + strings.Join(parts, " ")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError || ev.Entry.Level == log.EntryLevelWarning {
			line = "browser log: " + ev.Entry.Text + " " + ev.Entry.URL
			bad = strings.Contains(ev.Entry.Text, "Content Security Policy")
		}
	}
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if bad {
		p.problems = append(p.problems, line)
	} else {
		p.logs = append(p.logs, line)
	}
}

// check fails on what the page reported; call it at the end of a part.
func (p *page) check() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.logs {
		p.t.Log(l)
	}
	for _, l := range p.problems {
		p.t.Error(l)
	}
}

// click clicks the element sel names. The page may replace the element
// between the lookup and the click (a list refreshed by an event); then the
// click is tried again, a few times.
func (p *page) click(sel chromedp.CSS) {
	p.t.Helper()
	var err error
	for range 5 {
		if err = chromedp.Do(p.ctx, chromedp.Click(sel)); err == nil || !strings.Contains(err.Error(), "node") {
			break
		}
	}
	if err != nil {
		p.t.Fatalf("click %s: %v", sel, err)
	}
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		p.t.Fatal(err)
	}
}

func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](helpers+expr))
	if err != nil {
		p.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// waitFor polls expr until it is true, for at most browserWait. (Not with
// chromedp.Poll: it builds its predicate with new Function inside the page,
// which the page's CSP refuses.)
func (p *page) waitFor(expr, what string) {
	p.t.Helper()
	deadline := time.Now().Add(browserWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](helpers+`Boolean(`+expr+`)`))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("waiting for %s: %v\npage: %s", what, err, p.describe())
		}
		select {
		case <-tick.C:
		case <-p.ctx.Done():
			p.t.Fatalf("waiting for %s: %v", what, p.ctx.Err())
		}
	}
}

func (p *page) describe() string {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({app: document.getElementById("app").dataset,
		conn: document.getElementById("conn-label").textContent, notice: document.getElementById("notice-text").textContent,
		messages: [...document.querySelectorAll("#messages li")].map(li => li.className + " " + (li.dataset.status||"") + ": " + li.textContent),
		dossier: document.getElementById("dossier").textContent.replace(/\s+/g, " ").slice(0, 600)})`))
	if err != nil {
		return err.Error()
	}
	return s
}

type replyState struct {
	Status string `json:"status"`
	Text   string `json:"text"`
	Count  int    `json:"count"`
}

// waitReply waits for the n-th reply on the page to have the status and
// returns it; no other reply may follow it.
func (p *page) waitReply(n int, status string) replyState {
	p.t.Helper()
	p.waitFor(`(() => { const r = lastReply(); return r && r.count === `+itoa(n)+` && r.status === `+jsString(status)+`; })()`,
		"reply "+itoa(n)+" "+status)
	return eval[replyState](p, `lastReply()`)
}

func (p *page) waitConnected(transport string) {
	p.t.Helper()
	p.waitFor(`document.getElementById("conn").dataset.state === "connected" &&
		document.getElementById("conn").dataset.transport === `+jsString(transport)+` &&
		document.getElementById("app").dataset.ready === "true"`, "connected over "+transport)
}

// say types text in the message box and presses Enter.
func (p *page) say(text string) {
	p.t.Helper()
	n := p.count("#messages li.msg.user")
	p.do(chromedp.SetValue(chromedp.CSS("#composer-input"), text), chromedp.SendKeys(chromedp.CSS("#composer-input"), kb.Enter))
	p.waitFor(`(() => { const u = document.querySelectorAll("#messages li.msg.user");
		return u.length === `+itoa(n+1)+` && u[u.length - 1].querySelector(".bubble").textContent === `+jsString(text)+`; })()`, "the message sent")
	// The key's char event, which CDP sends after the keydown the page
	// handled, types a newline a real keyboard would not.
	eval[string](p, `document.getElementById("composer-input").value = ""`)
}

func (p *page) data(key string) string {
	p.t.Helper()
	return eval[string](p, `document.getElementById("app").dataset.`+key+` || ""`)
}

func (p *page) count(sel string) int {
	p.t.Helper()
	return eval[int](p, `document.querySelectorAll(`+jsString(sel)+`).length`)
}

// screenshot saves the visible page as name: in docs/ when docs is true
// and STORYD_UPDATE_SCREENSHOT is set, in STORYD_SCREENSHOT_DIR when set,
// else in a temporary directory.
func (p *page) screenshot(name string, docs bool) {
	p.t.Helper()
	p.waitFor(`document.getAnimations().every(a => a.playState !== "running" || a.effect.getTiming().iterations === Infinity)`, "animations to end")
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	dir := os.Getenv("STORYD_SCREENSHOT_DIR")
	switch {
	case docs && os.Getenv("STORYD_UPDATE_SCREENSHOT") != "":
		dir = filepath.Join("..", "..", "docs")
	case dir == "":
		dir = p.t.TempDir()
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// dropProxy forwards loopback TCP connections to a server and can cut them
// all at once, as a network drop would.
type dropProxy struct {
	url string
	ln  net.Listener

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	dropped int
	wg      sync.WaitGroup
}

func newDropProxy(t *testing.T, serverURL string) *dropProxy {
	t.Helper()
	target := strings.TrimPrefix(serverURL, "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{url: "http://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer p.wg.Done()
				_, _ = io.Copy(dst, src)
				dst.Close()
				src.Close()
				p.mu.Lock()
				delete(p.conns, dst)
				delete(p.conns, src)
				p.mu.Unlock()
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.drop()
		p.wg.Wait()
	})
	return p
}

// drop closes every connection going through the proxy.
func (p *dropProxy) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		if err := c.Close(); err == nil || !errors.Is(err, net.ErrClosed) {
			p.dropped++
		}
	}
}

func (p *dropProxy) drops() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}
