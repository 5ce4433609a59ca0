package authtest

import (
	"time"
)

// Option changes one aspect of a minted token.
type Option func(*spec)

// spec collects the options of one token. Claim edits run after the
// defaults are filled in, in the order given, against the reference time.
type spec struct {
	now    time.Time
	alg    string
	kid    *string
	claims []func(now time.Time, c map[string]any)
}

func newSpec(opts []Option) *spec {
	s := &spec{}
	for _, o := range opts {
		o(s)
	}
	if s.now.IsZero() {
		s.now = time.Now()
	}
	return s
}

// build returns the claims: Supabase-like defaults, then the edits.
func (s *spec) build(issuer string) map[string]any {
	c := map[string]any{
		"sub":          DefaultSubject,
		"aud":          DefaultAudience,
		"role":         DefaultRole,
		"iss":          issuer,
		"iat":          s.now.Unix(),
		"exp":          s.now.Add(DefaultTTL).Unix(),
		"is_anonymous": false,
	}
	for _, edit := range s.claims {
		edit(s.now, c)
	}
	return c
}

func (s *spec) set(name string, v any) {
	s.claims = append(s.claims, func(_ time.Time, c map[string]any) { c[name] = v })
}

// At sets the reference time of the token: "iat" is at, "exp" at+DefaultTTL,
// and ExpiresIn counts from it. Without At, the reference is time.Now().
// Use it with a Verifier whose Config.Now is a fixed clock.
func At(at time.Time) Option {
	return func(s *spec) { s.now = at }
}

// Sub sets the "sub" claim, the user id.
func Sub(id string) Option {
	return func(s *spec) { s.set("sub", id) }
}

// Email sets the "email" claim.
func Email(email string) Option {
	return func(s *spec) { s.set("email", email) }
}

// Role sets the Supabase "role" claim (default "authenticated").
func Role(role string) Option {
	return func(s *spec) { s.set("role", role) }
}

// Anonymous marks the token as Supabase's anonymous sign-in does:
// "is_anonymous": true.
func Anonymous() Option {
	return func(s *spec) { s.set("is_anonymous", true) }
}

// Aud sets the "aud" claim: one value is written as a string, several as
// an array, none removes the claim.
func Aud(aud ...string) Option {
	return func(s *spec) {
		switch len(aud) {
		case 0:
			s.claims = append(s.claims, func(_ time.Time, c map[string]any) { delete(c, "aud") })
		case 1:
			s.set("aud", aud[0])
		default:
			s.set("aud", append([]string(nil), aud...))
		}
	}
}

// Iss sets the "iss" claim (default Issuer.IssuerURL).
func Iss(iss string) Option {
	return func(s *spec) { s.set("iss", iss) }
}

// Exp sets the "exp" claim.
func Exp(t time.Time) Option {
	return func(s *spec) { s.set("exp", t.Unix()) }
}

// ExpiresIn sets "exp" to the reference time plus d; a negative d makes an
// expired token.
func ExpiresIn(d time.Duration) Option {
	return func(s *spec) {
		s.claims = append(s.claims, func(now time.Time, c map[string]any) { c["exp"] = now.Add(d).Unix() })
	}
}

// NotBefore sets the "nbf" claim (absent by default, as in Supabase).
func NotBefore(t time.Time) Option {
	return func(s *spec) { s.set("nbf", t.Unix()) }
}

// IssuedAt sets the "iat" claim.
func IssuedAt(t time.Time) Option {
	return func(s *spec) { s.set("iat", t.Unix()) }
}

// Claim sets any claim to v, which is marshalled to JSON as is; use it for
// claims without an option or for values of the wrong type.
func Claim(name string, v any) Option {
	return func(s *spec) { s.set(name, v) }
}

// Without removes a claim, default or not: Without("exp"), Without("sub").
func Without(name string) Option {
	return func(s *spec) {
		s.claims = append(s.claims, func(_ time.Time, c map[string]any) { delete(c, name) })
	}
}

// Alg sets the signing algorithm of Issuer.Token: RS256 (default), RS384,
// RS512, PS256, PS384 and PS512 sign with the current RSA key, ES256 with
// the P-256 key and EdDSA with the Ed25519 key. "none" in any spelling
// ("none", "None", "NONE") makes an unsigned token with that alg header.
// The JWKS binds each key to one alg (RS256, ES256, EdDSA), so other RSA
// algs make tokens a strict verifier refuses.
func Alg(alg string) Option {
	return func(s *spec) { s.alg = alg }
}

// Kid sets the "kid" header, e.g. to a key the JWKS does not hold; ""
// removes it. By default Token names its signing key and HS256 sets none.
func Kid(kid string) Option {
	return func(s *spec) { s.kid = &kid }
}
