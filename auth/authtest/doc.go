// Package authtest is a fake Supabase Auth for tests: an [Issuer] serves a
// JWKS over httptest and mints access tokens signed with its keys (or with
// an HS256 secret), shaped like Supabase's.
//
//	iss := authtest.NewIssuer(t)
//	v, _ := auth.New(t.Context(), auth.Config{
//		JWKSURL: iss.JWKSURL(), Issuer: iss.IssuerURL(), HTTPClient: iss.Client(),
//	})
//	tok := iss.Token(t, authtest.Sub(userID), authtest.Email("a@b.c"))
//
// Tokens default to a valid registered user (see [Issuer.Token]); each
// [Option] changes one thing, so a test states only what it is about.
//
// # Concurrency
//
// An Issuer is safe for concurrent use: tokens may be minted and keys
// rotated while the JWKS is being served. Its server is closed by
// t.Cleanup. The package has no other state.
package authtest
