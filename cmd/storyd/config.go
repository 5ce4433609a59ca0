package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// config is storyd's configuration, read from the environment (and .env).
// This is the only place that reads it.
type config struct {
	Addr          string
	DatabaseURL   string
	DataDir       string
	RedisURL      string
	AutoMigrate   bool
	LogLevel      slog.Level
	LogFormat     string
	ShutdownGrace time.Duration

	OpenAIAPIKey      string
	OpenAIBaseURL     string
	ChatModel         string
	ExtractionModel   string
	ExtractionAPIKey  string
	ExtractionBaseURL string
	LLMTimeout        time.Duration
	OfflineDelay      time.Duration

	SupabaseURL       string
	SupabaseJWTSecret string
	AuthJWKSURL       string
	AuthAudience      string
	AuthIssuer        string
	CORSOrigins       []string

	IdleTimeout   time.Duration
	ContextTokens int
	MaxTextBytes  int

	ExtractTokens int
	ExtractTurns  int
	ExtractIdle   time.Duration

	PprofAddr string
}

// configError is an invalid setting; main exits with code 2 on it.
type configError struct{ msg string }

func (e *configError) Error() string { return "invalid configuration: " + e.msg }

// settings lists every variable storyd reads, with its default. A
// STORYD_-prefixed variable that is not listed is refused, so a typo never
// passes silently.
var settings = []struct{ name, def, help string }{
	{"STORYD_ADDR", "127.0.0.1:8000", "listen address"},
	{"DATABASE_URL", "", "postgres:// URL; unset selects embedded SQLite"},
	{"STORYD_DATA_DIR", "./data", "directory of the embedded SQLite store"},
	{"REDIS_URL", "", "redis:// URL (cluster features, later phase)"},
	{"STORYD_AUTO_MIGRATE", "true", "apply pending migrations at start"},
	{"STORYD_LOG_LEVEL", "info", "debug, info, warn or error"},
	{"STORYD_LOG_FORMAT", "text", "text or json"},
	{"STORYD_SHUTDOWN_TIMEOUT", "30s", "how long shutdown waits for replies in flight"},
	{"OPENAI_API_KEY", "", "API key of the OpenAI-compatible provider"},
	{"OPENAI_BASE_URL", "", "base URL of the OpenAI-compatible provider"},
	{"CHAT_MODEL", "gpt-4o-mini", "model of the chat role"},
	{"EXTRACTION_MODEL", "gpt-4o", "model of the extraction role"},
	{"EXTRACTION_API_KEY", "", "API key override for the extraction role"},
	{"EXTRACTION_BASE_URL", "", "base URL override for the extraction role"},
	{"STORYD_LLM_TIMEOUT", "2m", "budget of one streamed model reply"},
	{"STORYD_OFFLINE_TOKEN_DELAY", "25ms", "pause between the offline interviewer's tokens"},
	{"SUPABASE_URL", "", "Supabase project URL (JWKS)"},
	{"SUPABASE_JWT_SECRET", "", "HS256 secret of legacy Supabase projects"},
	{"AUTH_JWKS_URL", "", "explicit JWKS URL"},
	{"AUTH_AUDIENCE", "authenticated", "required aud of access tokens"},
	{"AUTH_ISSUER", "", "required iss of access tokens (default $SUPABASE_URL/auth/v1)"},
	{"CORS_ORIGINS", "", "comma-separated allowed origins"},
	{"STORYD_IDLE_TIMEOUT", "5m", "idle time after which a session actor passivates"},
	{"STORYD_CONTEXT_TOKENS", "12000", "token budget of the chat context window"},
	{"STORYD_MAX_TEXT_BYTES", "32768", "largest accepted chat message, in bytes"},
	{"STORYD_EXTRACT_TOKENS", "1000", "extract the dossier once this many tokens of new turns wait"},
	{"STORYD_EXTRACT_TURNS", "", "or once this many new turns wait (default 16; 1 with the offline extractor)"},
	{"STORYD_EXTRACT_IDLE", "90s", "or after this long without a new turn"},
	{"STORYD_PPROF_ADDR", "", "serve net/http/pprof on this loopback host:port (off when unset)"},
}

// loadConfig reads the configuration through getenv. environ lists the
// variables that are set, to refuse unknown STORYD_ ones.
func loadConfig(getenv func(string) string, environ []string) (config, error) {
	known := map[string]string{}
	for _, s := range settings {
		known[s.name] = s.def
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "STORYD_") && !strings.HasPrefix(name, "STORYD_TEST_") {
			if _, ok := known[name]; !ok {
				unknown = append(unknown, name)
			}
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return config{}, &configError{fmt.Sprintf("unknown setting %s", strings.Join(unknown, ", "))}
	}
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return known[name]
	}
	p := parser{get: get}
	c := config{
		Addr:              p.addr("STORYD_ADDR"),
		DatabaseURL:       p.url("DATABASE_URL", "postgres", "postgresql"),
		DataDir:           get("STORYD_DATA_DIR"),
		RedisURL:          p.url("REDIS_URL", "redis", "rediss"),
		AutoMigrate:       p.bool("STORYD_AUTO_MIGRATE"),
		LogLevel:          p.level("STORYD_LOG_LEVEL"),
		LogFormat:         p.oneOf("STORYD_LOG_FORMAT", "text", "json"),
		ShutdownGrace:     p.duration("STORYD_SHUTDOWN_TIMEOUT"),
		OpenAIAPIKey:      get("OPENAI_API_KEY"),
		OpenAIBaseURL:     p.url("OPENAI_BASE_URL", "http", "https"),
		ChatModel:         get("CHAT_MODEL"),
		ExtractionModel:   get("EXTRACTION_MODEL"),
		ExtractionAPIKey:  get("EXTRACTION_API_KEY"),
		ExtractionBaseURL: p.url("EXTRACTION_BASE_URL", "http", "https"),
		LLMTimeout:        p.duration("STORYD_LLM_TIMEOUT"),
		OfflineDelay:      p.durationZero("STORYD_OFFLINE_TOKEN_DELAY"),
		SupabaseURL:       p.url("SUPABASE_URL", "http", "https"),
		SupabaseJWTSecret: get("SUPABASE_JWT_SECRET"),
		AuthJWKSURL:       p.url("AUTH_JWKS_URL", "http", "https"),
		AuthAudience:      get("AUTH_AUDIENCE"),
		AuthIssuer:        get("AUTH_ISSUER"),
		CORSOrigins:       p.list("CORS_ORIGINS"),
		IdleTimeout:       p.duration("STORYD_IDLE_TIMEOUT"),
		ContextTokens:     p.intRange("STORYD_CONTEXT_TOKENS", 256, 1_000_000),
		MaxTextBytes:      p.intRange("STORYD_MAX_TEXT_BYTES", 1, 1<<20),
		ExtractTokens:     p.intRange("STORYD_EXTRACT_TOKENS", 1, 1_000_000),
		ExtractTurns:      p.intRangeOr("STORYD_EXTRACT_TURNS", 1, 1000, 0),
		ExtractIdle:       p.duration("STORYD_EXTRACT_IDLE"),
		PprofAddr:         p.loopbackAddrOrEmpty("STORYD_PPROF_ADDR"),
	}
	if p.err != nil {
		return config{}, p.err
	}
	if s := c.SupabaseJWTSecret; s != "" && len(s) < 32 {
		return config{}, &configError{"SUPABASE_JWT_SECRET: want at least 32 bytes (Supabase's JWT secrets are)"}
	}
	return c, nil
}

// jwksURL is where access tokens' public keys are: AUTH_JWKS_URL, else the
// Supabase project's JWKS.
func (c config) jwksURL() string {
	if c.AuthJWKSURL != "" {
		return c.AuthJWKSURL
	}
	if c.SupabaseURL != "" {
		return strings.TrimRight(c.SupabaseURL, "/") + "/auth/v1/.well-known/jwks.json"
	}
	return ""
}

// issuer is the required iss of access tokens: AUTH_ISSUER, else the
// Supabase project's auth URL.
func (c config) issuer() string {
	if c.AuthIssuer != "" {
		return c.AuthIssuer
	}
	if c.SupabaseURL != "" {
		return strings.TrimRight(c.SupabaseURL, "/") + "/auth/v1"
	}
	return ""
}

// parser reads typed settings and keeps the first error.
type parser struct {
	get func(string) string
	err error
}

func (p *parser) fail(name, v, want string) {
	if p.err == nil {
		p.err = &configError{fmt.Sprintf("%s=%q: %s", name, v, want)}
	}
}

func (p *parser) addr(name string) string {
	v := p.get(name)
	_, port, err := net.SplitHostPort(v)
	if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
		p.fail(name, v, "want host:port with a numeric port, e.g. 127.0.0.1:8000")
	}
	return v
}

// loopbackAddrOrEmpty is a host:port on a loopback address, or "" (off):
// profiles are never served beyond this machine.
func (p *parser) loopbackAddrOrEmpty(name string) string {
	v := p.get(name)
	if v == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(v)
	_, perr := strconv.Atoi(port)
	ip := net.ParseIP(host)
	if err != nil || perr != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		p.fail(name, v, "want a loopback host:port, e.g. 127.0.0.1:6060")
	}
	return v
}

func (p *parser) url(name string, schemes ...string) string {
	v := p.get(name)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" && u.Scheme != "postgres" && u.Scheme != "postgresql" {
		p.fail(name, redact(v), "want a URL with scheme "+strings.Join(schemes, " or "))
		return ""
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	p.fail(name, redact(v), "want a URL with scheme "+strings.Join(schemes, " or "))
	return ""
}

func (p *parser) bool(name string) bool {
	v := p.get(name)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "want true or false")
	}
	return b
}

func (p *parser) duration(name string) time.Duration {
	v := p.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail(name, v, "want a positive duration like 30s or 5m")
	}
	return d
}

func (p *parser) durationZero(name string) time.Duration {
	v := p.get(name)
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		p.fail(name, v, "want a duration like 25ms, or 0")
	}
	return d
}

func (p *parser) intRange(name string, lo, hi int) int {
	v := p.get(name)
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		p.fail(name, v, fmt.Sprintf("want an integer from %d to %d", lo, hi))
	}
	return n
}

// intRangeOr is intRange for a setting without a fixed default: unset
// gives def.
func (p *parser) intRangeOr(name string, lo, hi, def int) int {
	if p.get(name) == "" {
		return def
	}
	return p.intRange(name, lo, hi)
}

func (p *parser) oneOf(name string, options ...string) string {
	v := strings.ToLower(p.get(name))
	for _, o := range options {
		if v == o {
			return v
		}
	}
	p.fail(name, v, "want one of "+strings.Join(options, ", "))
	return ""
}

func (p *parser) level(name string) slog.Level {
	var l slog.Level
	v := p.get(name)
	if err := l.UnmarshalText([]byte(v)); err != nil {
		p.fail(name, v, "want debug, info, warn or error")
	}
	return l
}

func (p *parser) list(name string) []string {
	var out []string
	for _, s := range strings.Split(p.get(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

// isConfigError reports whether err is an invalid-configuration error.
func isConfigError(err error) bool {
	var ce *configError
	return errors.As(err, &ce)
}

// readDotEnv returns the variables of ./.env (if present) for variables not
// already set in the environment.
func readDotEnv(path string) (map[string]string, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return godotenvRead(path)
}
