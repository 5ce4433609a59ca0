// Command storyd is the realtime session server of Stories We Tell.
//
//	storyd [serve]   start the server (applies pending migrations first)
//	storyd migrate   apply pending migrations and exit
//
// Configuration comes from the environment and ./.env; see README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/joho/godotenv"
	"github.com/redis/go-redis/v9"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/auth"
	"github.com/storyd/storyd/llm"
	"github.com/storyd/storyd/persistence"
	"github.com/storyd/storyd/transport"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills the process at once
		// instead of waiting for the graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	environ, err := environment(".env")
	if err == nil {
		err = run(ctx, os.Args[1:], environ, os.Stdout, os.Stderr)
	}
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "storyd:", err)
		if isConfigError(err) || errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// environment is the process environment plus the variables of the .env
// file at path that the environment does not set.
func environment(path string) ([]string, error) {
	environ := os.Environ()
	dotenv, err := readDotEnv(path)
	if err != nil {
		return nil, &configError{fmt.Sprintf("read %s: %v", path, err)}
	}
	for k, v := range dotenv {
		if _, set := os.LookupEnv(k); !set {
			environ = append(environ, k+"="+v)
		}
	}
	return environ, nil
}

func godotenvRead(path string) (map[string]string, error) { return godotenv.Read(path) }

var errUsage = errors.New("usage: storyd [serve [-addr host:port] [-no-migrate] | migrate | token [-sub uuid] [-email e] [-ttl 1h] | help]")

// run is storyd's whole life: it reads the configuration, builds each
// dependency in order, serves until ctx ends, then shuts down.
func run(ctx context.Context, args []string, environ []string, stdout, stderr io.Writer) error {
	env := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }

	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve", "migrate":
	case "token":
		cfg, err := loadConfig(getenv, environ)
		if err != nil {
			return err
		}
		return devToken(cfg, args, stdout)
	case "help":
		fmt.Fprintln(stdout, errUsage.Error())
		return nil
	default:
		return fmt.Errorf("unknown command %q: %w", cmd, errUsage)
	}
	fs := flag.NewFlagSet("storyd "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "", "listen address (overrides STORYD_ADDR)")
	noMigrate := fs.Bool("no-migrate", false, "do not apply pending migrations at start (overrides STORYD_AUTO_MIGRATE)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stdout, errUsage.Error())
			return nil
		}
		return fmt.Errorf("%v: %w", err, errUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: %w", fs.Arg(0), errUsage)
	}
	cfg, err := loadConfig(getenv, environ)
	if err != nil {
		return err
	}
	if *addr != "" {
		cfg.Addr = *addr
	}
	if *noMigrate {
		cfg.AutoMigrate = false
	}
	logger := newLogger(cfg, stderr)

	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close() }()

	if cmd == "migrate" {
		n, err := store.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s store: %w", store.Kind(), err)
		}
		fmt.Fprintf(stdout, "storyd: %s store migrated (%d applied)\n", store.Kind(), n)
		return nil
	}
	return serve(ctx, cfg, store, logger, stdout)
}

// store is everything storyd needs from either store.
type store interface {
	actors.Store
	transport.Store
	Migrate(ctx context.Context) (int, error)
	PendingMigrations(ctx context.Context) (int, error)
	Close() error
}

func openStore(ctx context.Context, cfg config) (store, error) {
	if cfg.DatabaseURL != "" {
		pg, err := persistence.OpenPostgres(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL: %w", err)
		}
		return pg, nil
	}
	lite, err := persistence.OpenSQLite(ctx, cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open SQLite store in %s: %w", cfg.DataDir, err)
	}
	return lite, nil
}

// openRedis connects to REDIS_URL and checks it answers. Redis carries
// presence and routing in the cluster phase; for now storyd only reports its
// health in /readyz.
func openRedis(ctx context.Context, rawURL string) (*redis.Client, error) {
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, &configError{fmt.Sprintf("REDIS_URL=%q: %v", redact(rawURL), err)}
	}
	rdb := redis.NewClient(opts)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to Redis at %s: %w", redact(rawURL), err)
	}
	return rdb, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// chatModel picks the chat provider: an OpenAI-compatible server when a key
// or a base URL is configured, the offline interviewer otherwise.
func chatModel(cfg config) (actors.ChatModel, string, error) {
	if cfg.OpenAIAPIKey == "" && cfg.OpenAIBaseURL == "" {
		return llm.NewOffline(llm.OfflineConfig{TokenDelay: cfg.OfflineDelay}), "offline", nil
	}
	m, err := llm.NewOpenAI(llm.OpenAIConfig{
		BaseURL: cfg.OpenAIBaseURL,
		APIKey:  cfg.OpenAIAPIKey,
		Model:   cfg.ChatModel,
		Timeout: cfg.LLMTimeout,
	})
	if err != nil {
		return nil, "", &configError{err.Error()}
	}
	return m, m.Name(), nil
}

// wakeDossiersMax bounds the projects whose pending dossier batches a
// starting server wakes (the rest wake with their next turn).
const wakeDossiersMax = 1000

// extractionModel picks the dossier extractor: the extraction role's
// OpenAI-compatible provider (EXTRACTION_* overriding OPENAI_*), or the
// offline heuristic extractor.
func extractionModel(cfg config) (actors.Extractor, string, error) {
	key, base := cfg.OpenAIAPIKey, cfg.OpenAIBaseURL
	if cfg.ExtractionAPIKey != "" || cfg.ExtractionBaseURL != "" {
		key, base = cfg.ExtractionAPIKey, cfg.ExtractionBaseURL
	}
	if key == "" && base == "" {
		e := llm.NewOfflineExtractor()
		return e, e.Name(), nil
	}
	e, err := llm.NewOpenAIExtractor(llm.OpenAIConfig{BaseURL: base, APIKey: key, Model: cfg.ExtractionModel, Timeout: cfg.LLMTimeout})
	if err != nil {
		return nil, "", &configError{err.Error()}
	}
	return e, e.Name(), nil
}

func serve(ctx context.Context, cfg config, st store, logger *slog.Logger, stdout io.Writer) error {
	if cfg.AutoMigrate {
		n, err := st.Migrate(ctx)
		if err != nil {
			return fmt.Errorf("migrate %s store: %w", st.Kind(), err)
		}
		if n > 0 {
			logger.Info("migrations applied", "store", st.Kind(), "count", n)
		}
	} else {
		n, err := st.PendingMigrations(ctx)
		if err != nil {
			return fmt.Errorf("check migrations: %w", err)
		}
		if n > 0 {
			return fmt.Errorf("%d migrations are pending and auto-migration is off: run `storyd migrate`", n)
		}
	}
	model, provider, err := chatModel(cfg)
	if err != nil {
		return err
	}
	extractor, extractorName, err := extractionModel(cfg)
	if err != nil {
		return err
	}
	if _, offline := extractor.(*llm.OfflineExtractor); offline && cfg.ExtractTurns == 0 {
		cfg.ExtractTurns = 1 // it costs nothing: the dossier follows every turn
	}
	logger.Info("dossier extraction", "extractor", extractorName)
	if cfg.PprofAddr != "" {
		stopPprof, err := startPprof(cfg.PprofAddr, logger)
		if err != nil {
			return err
		}
		defer stopPprof()
	}
	var deps []transport.Dependency
	if cfg.RedisURL != "" {
		rdb, err := openRedis(ctx, cfg.RedisURL)
		if err != nil {
			return err
		}
		defer func() { _ = rdb.Close() }()
		deps = append(deps, transport.Dependency{Name: "redis", Ping: func(ctx context.Context) error {
			return rdb.Ping(ctx).Err()
		}})
	}

	var tokens transport.TokenVerifier
	if cfg.jwksURL() != "" || cfg.SupabaseJWTSecret != "" {
		v, err := auth.New(ctx, auth.Config{
			JWKSURL:     cfg.jwksURL(),
			HS256Secret: cfg.SupabaseJWTSecret,
			Audience:    cfg.AuthAudience,
			Issuer:      cfg.issuer(),
			Logger:      logger,
		})
		if err != nil {
			return &configError{err.Error()}
		}
		defer v.Close()
		tokens = v
	} else {
		logger.Info("no SUPABASE_URL, AUTH_JWKS_URL or SUPABASE_JWT_SECRET: access tokens are refused, anonymous ids only")
	}

	actorLog := slog.New(logger.Handler()).With("component", "actor")
	system := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(levelFloor{actorLog.Handler(), slog.LevelWarn})
	}))
	defer system.Shutdown()
	sessions, err := actors.NewSessions(system, actors.Config{
		Store:         st,
		Model:         model,
		Logger:        logger,
		IdleTimeout:   cfg.IdleTimeout,
		ContextTokens: cfg.ContextTokens,
		Extractor:     extractor,
		ExtractTokens: cfg.ExtractTokens,
		ExtractTurns:  cfg.ExtractTurns,
		ExtractIdle:   cfg.ExtractIdle,
	})
	if err != nil {
		return err
	}
	api := transport.NewServer(transport.Config{
		Sessions:     sessions,
		Store:        st,
		Tokens:       tokens,
		TokenLeeway:  auth.DefaultLeeway,
		Logger:       logger,
		Provider:     provider,
		Dependencies: deps,
		CORSOrigins:  cfg.CORSOrigins,
		MaxTextBytes: cfg.MaxTextBytes,
	})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = sessions.Shutdown(context.Background())
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	fmt.Fprintf(stdout, "storyd listening on http://%s (store: %s, chat model: %s)\n", ln.Addr(), st.Kind(), provider)
	if provider == "offline" {
		fmt.Fprintln(stdout, "storyd: no OPENAI_API_KEY or OPENAI_BASE_URL set: replies come from the built-in offline interviewer")
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	// Turns that waited in a dossier batch when storyd last stopped are in
	// the store: wake their projects' dossier actors (docs/dossier.md).
	wakeCtx, cancelWake := context.WithTimeout(ctx, 30*time.Second)
	if n, err := sessions.WakeDossiers(wakeCtx, wakeDossiersMax); err != nil {
		logger.Warn("wake dossiers with pending turns", "err", err)
	} else if n > 0 {
		logger.Info("dossier batches left from the last run", "projects", n)
	}
	cancelWake()

	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", "grace", cfg.ShutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(sctx) }()
	if serr := sessions.Shutdown(sctx); serr != nil {
		logger.Warn("sessions shutdown", "err", serr)
	}
	api.Close()
	if werr := api.Wait(sctx); werr != nil {
		logger.Warn("websocket shutdown", "err", werr)
	}
	if herr := <-httpDone; herr != nil {
		logger.Warn("http shutdown", "err", herr)
		_ = srv.Close()
	}
	if err == nil {
		<-serveErr // http.ErrServerClosed
	}
	logger.Info("stopped")
	return err
}

// levelFloor drops records below min; protoactor logs every actor start at
// info level, which is noise for storyd's operators.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFloor) WithGroup(name string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(name), h.min}
}
