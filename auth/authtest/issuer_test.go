package authtest_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/storyd/storyd/auth/authtest"
)

func TestIssuerJWKS(t *testing.T) {
	iss := authtest.NewIssuer(t)
	kids := func() []string {
		t.Helper()
		resp, err := iss.Client().Get(iss.JWKSURL())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil
		}
		var set struct {
			Keys []struct {
				KID string `json:"kid"`
				D   string `json:"d"`
			} `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			if k.D != "" {
				t.Fatalf("JWKS publishes private key %s", k.KID)
			}
			out = append(out, k.KID)
		}
		return out
	}
	if got, want := kids(), []string{"rsa-1", "ec-1", "ed-1"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kids = %v, want %v", got, want)
	}
	if kid := iss.Rotate(t); kid != "rsa-2" || iss.KeyID(t, "RS256") != "rsa-2" {
		t.Fatalf("Rotate = %q, KeyID = %q; want rsa-2", kid, iss.KeyID(t, "RS256"))
	}
	if got, want := kids(), []string{"rsa-1", "ec-1", "ed-1", "rsa-2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("kids = %v, want %v", got, want)
	}
	iss.SetFailing(true)
	if got := kids(); got != nil {
		t.Fatalf("failing JWKS served %v", got)
	}
	if got := iss.Hits(); got != 3 {
		t.Fatalf("Hits = %d, want 3", got)
	}
}

func TestIssuerToken(t *testing.T) {
	iss := authtest.NewIssuer(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const userID = "11111111-2222-4333-8444-555555555555"
	tests := []struct {
		name       string
		token      string
		wantAlg    string
		wantKID    any // nil when absent
		wantClaims map[string]any
	}{
		{"defaults", iss.Token(t, authtest.At(at)), "RS256", "rsa-1", map[string]any{
			"sub": authtest.DefaultSubject, "aud": "authenticated", "role": "authenticated",
			"iss": iss.IssuerURL(), "iat": float64(at.Unix()), "exp": float64(at.Add(time.Hour).Unix()),
			"is_anonymous": false}},
		{"options", iss.Token(t, authtest.At(at), authtest.Sub(userID), authtest.Email("a@b.c"),
			authtest.Anonymous(), authtest.Aud("x", "y"), authtest.ExpiresIn(time.Minute),
			authtest.NotBefore(at), authtest.Without("iss"), authtest.Alg("ES256")), "ES256", "ec-1", map[string]any{
			"sub": userID, "email": "a@b.c", "aud": []any{"x", "y"}, "role": "authenticated",
			"iat": float64(at.Unix()), "exp": float64(at.Add(time.Minute).Unix()), "nbf": float64(at.Unix()),
			"is_anonymous": true}},
		{"EdDSA with other kid", iss.Token(t, authtest.At(at), authtest.Alg("EdDSA"), authtest.Kid("zz"), authtest.Aud()),
			"EdDSA", "zz", map[string]any{
				"sub": authtest.DefaultSubject, "role": "authenticated", "iss": iss.IssuerURL(),
				"iat": float64(at.Unix()), "exp": float64(at.Add(time.Hour).Unix()), "is_anonymous": false}},
		{"none", iss.Token(t, authtest.At(at), authtest.Alg("None"), authtest.Claim("role", "service_role")), "None", nil, map[string]any{
			"sub": authtest.DefaultSubject, "aud": "authenticated", "role": "service_role",
			"iss": iss.IssuerURL(), "iat": float64(at.Unix()), "exp": float64(at.Add(time.Hour).Unix()),
			"is_anonymous": false}},
		{"HS256", iss.HS256(t, "s", authtest.At(at), authtest.Role("anon")), "HS256", nil, map[string]any{
			"sub": authtest.DefaultSubject, "aud": "authenticated", "role": "anon",
			"iss": iss.IssuerURL(), "iat": float64(at.Unix()), "exp": float64(at.Add(time.Hour).Unix()),
			"is_anonymous": false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims := jwt.MapClaims{}
			tok, _, err := jwt.NewParser().ParseUnverified(tt.token, claims)
			if err != nil && tt.wantAlg != "None" {
				t.Fatalf("parse: %v", err)
			}
			if tok.Header["alg"] != tt.wantAlg || tok.Header["kid"] != tt.wantKID {
				t.Errorf("header = %v, want alg %v kid %v", tok.Header, tt.wantAlg, tt.wantKID)
			}
			if !reflect.DeepEqual(map[string]any(claims), tt.wantClaims) {
				t.Errorf("claims = %v, want %v", claims, tt.wantClaims)
			}
		})
	}
}
