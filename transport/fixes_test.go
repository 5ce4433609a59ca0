package transport

import (
	"net/http"
	"testing"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/storyd/storyd/auth/authtest"
)

// TestTokenWinsOverASquattedID: someone uses an account's id as an anonymous
// X-User-ID before its owner ever called storyd, then migrates it into
// their own account. The owner's token still works.
func TestTokenWinsOverASquattedID(t *testing.T) {
	e := newAuthEnv(t)
	victim := uuid.NewString()
	victimToken := caller{token: e.iss.Token(t, authtest.Sub(victim))}
	e.chatAs(t, caller{userID: victim}, `{"text":"squatting"}`)
	attackerID, attacker := e.registered(t)
	if st, _, body := e.call(t, "POST", "/api/v1/sessions/migrate", attacker,
		`{"temp_user_id":"`+victim+`","permanent_user_id":"`+attackerID+`"}`); st != 200 {
		t.Fatalf("migrate: %d %s", st, body)
	}
	if st, _, body := e.call(t, "GET", "/api/v1/sessions", victimToken, ""); st != 200 {
		t.Fatalf("the account's own token after the squat: %d %s", st, body)
	}
	// And the id is registered now: no longer usable as X-User-ID.
	if st, _, _ := e.call(t, "GET", "/api/v1/sessions", caller{userID: victim}, ""); st != 401 {
		t.Fatalf("X-User-ID of a claimed account: %d", st)
	}
}

// TestStoreRefusedInputIs422: text the store cannot hold is the client's
// mistake, not an outage.
func TestStoreRefusedInputIs422(t *testing.T) {
	e := newAuthEnv(t)
	_, c := e.registered(t)
	if st, _, body := e.call(t, "POST", "/api/v1/users", c, `{"display_name":"a\u0000b"}`); st != 422 {
		t.Fatalf("NUL in a profile: %d %s", st, body)
	}
	if st, _, body := e.call(t, "POST", "/api/v1/dossier", c, `{"snapshot_json":{"themes":["a\u0000b"]}}`); st != 422 {
		t.Fatalf("NUL in a dossier: %d %s", st, body)
	}
}

// TestAnonymousSocketIsRefusedAfterMigration: an open socket of an
// anonymous id stops working once the id moved to an account.
func TestAnonymousSocketIsRefusedAfterMigration(t *testing.T) {
	e := newAuthEnv(t)
	anon := uuid.NewString()
	ws := dialWS(t, e.itEnv, anon)
	ack := ws.chat(chatFrame{Text: "before signing up"})
	ws.turn(ack.SessionID)
	accountID, account := e.registered(t)
	if st, _, body := e.call(t, "POST", "/api/v1/sessions/migrate", account,
		`{"temp_user_id":"`+anon+`","permanent_user_id":"`+accountID+`"}`); st != http.StatusOK {
		t.Fatalf("migrate: %d %s", st, body)
	}
	ws.send(chatFrame{Type: "chat", Text: "after", SessionID: ack.SessionID})
	evs, err := ws.readToClose()
	refused := false
	for _, ev := range evs {
		if ev.Type == "error" && ev.Error != nil && ev.Error.Code == "identity_refused" {
			refused = true
		}
	}
	if status, _ := closeStatus(err); !refused || status != websocket.StatusPolicyViolation {
		t.Fatalf("events %v, close %v", evs, err)
	}
}
