package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// devToken prints an access token signed with SUPABASE_JWT_SECRET, shaped
// like a Supabase one, for local development: a way to be a signed-in user
// without a Supabase project.
func devToken(cfg config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("storyd token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	sub := fs.String("sub", "", "user id (a UUID; default: a new one)")
	email := fs.String("email", "", "email claim")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	if cfg.SupabaseJWTSecret == "" {
		return &configError{"storyd token signs with SUPABASE_JWT_SECRET: set it (32 bytes or more) here and for the server"}
	}
	if *sub == "" {
		*sub = uuid.NewString()
	} else if u, err := uuid.Parse(*sub); err != nil || len(*sub) != 36 {
		return errors.New("-sub must be a UUID")
	} else {
		*sub = u.String()
	}
	if *ttl <= 0 {
		return errors.New("-ttl must be positive")
	}
	now := time.Now()
	claims := jwt.MapClaims{
		"sub":  *sub,
		"aud":  cfg.AuthAudience,
		"role": "authenticated",
		"iat":  now.Unix(),
		"exp":  now.Add(*ttl).Unix(),
	}
	if *email != "" {
		claims["email"] = *email
	}
	if iss := cfg.issuer(); iss != "" {
		claims["iss"] = iss
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(cfg.SupabaseJWTSecret))
	if err != nil {
		return fmt.Errorf("sign token: %w", err)
	}
	fmt.Fprintln(stdout, signed)
	return nil
}
