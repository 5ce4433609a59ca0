package auth_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/storyd/storyd/auth"
)

func TestNewConfig(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		cfg     auth.Config
		wantErr error
	}{
		{"nothing configured", nil, auth.Config{}, auth.ErrNotConfigured},
		{"only audience", nil, auth.Config{Audience: "authenticated", Issuer: "x"}, auth.ErrNotConfigured},
		{"relative JWKS URL", nil, auth.Config{JWKSURL: "/jwks.json"}, auth.ErrInvalidConfig},
		{"JWKS URL without scheme", nil, auth.Config{JWKSURL: "example.com/jwks.json"}, auth.ErrInvalidConfig},
		{"short secret", nil, auth.Config{HS256Secret: "short"}, auth.ErrInvalidConfig},
		{"negative leeway", nil, auth.Config{HS256Secret: secret, Leeway: -time.Second}, auth.ErrInvalidConfig},
		{"negative rate limit", nil, auth.Config{HS256Secret: secret, RefreshRateLimit: -time.Second}, auth.ErrInvalidConfig},
		{"cancelled ctx", cancelled, auth.Config{HS256Secret: secret}, context.Canceled},
		{"secret only", nil, auth.Config{HS256Secret: secret}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = t.Context()
			}
			v, err := auth.New(ctx, tt.cfg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if v != nil {
					t.Fatal("New returned a Verifier with an error")
				}
				return
			}
			v.Close()
			v.Close() // idempotent
		})
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{auth.ErrExpired, "token expired"},
		{fmt.Errorf("ws: %w", auth.ErrExpired), "token expired"},
		{auth.ErrInvalidToken, "invalid token"},
		{auth.ErrUnavailable, "authentication temporarily unavailable"},
		{auth.ErrNotConfigured, "authentication not configured"},
		{errors.New("database is on fire"), "authentication failed"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := auth.Reason(tt.err); got != tt.want {
				t.Fatalf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
	if !errors.Is(auth.ErrExpired, auth.ErrInvalidToken) {
		t.Fatal("ErrExpired does not wrap ErrInvalidToken")
	}
}
