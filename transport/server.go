package transport

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/storyd/storyd/actors"
	"github.com/storyd/storyd/persistence"
)

// Sessions is what the transport needs from the session actors.
type Sessions interface {
	Chat(ctx context.Context, req actors.ChatRequest) (actors.ChatAccepted, error)
	Subscribe(ctx context.Context, req actors.SubscribeRequest) error
	Cancel(ctx context.Context, userID, sessionID string) (bool, error)
	Delete(ctx context.Context, userID, sessionID string) error
	OwnerChanged(from, to string)
	EditDossier(ctx context.Context, e actors.DossierEdit) (persistence.Dossier, error)
	RefreshDossier(ctx context.Context, userID, projectID string) (bool, error)
	DeleteDossier(ctx context.Context, userID, projectID string) error
	Unsubscribe(sessionID string, sub actors.Subscriber)
}

// Store is what the transport reads directly from the store.
type Store interface {
	Ping(ctx context.Context) error
	Kind() string
	GetSession(ctx context.Context, id string) (persistence.Session, error)
	ListSessionsPage(ctx context.Context, userID string, limit, offset int) ([]persistence.Session, error)
	EnsureUser(ctx context.Context, u persistence.User) (persistence.User, error)
	GetUser(ctx context.Context, id string) (persistence.User, error)
	UpsertUser(ctx context.Context, u persistence.User) (persistence.User, error)
	ClaimUser(ctx context.Context, id, email string) (persistence.User, error)
	MigrateUser(ctx context.Context, tempUserID, permanentUserID string) (persistence.MigrationResult, error)
	GetProject(ctx context.Context, id string) (persistence.Project, error)
	CreateProject(ctx context.Context, p persistence.Project) (persistence.Project, error)
	GetDossier(ctx context.Context, projectID string) (persistence.Dossier, error)
	ListDossierSummaries(ctx context.Context, userID string) ([]persistence.DossierSummary, error)
	CreateDossier(ctx context.Context, d persistence.Dossier, src persistence.DossierVersion) (persistence.Dossier, error)
	UpdateDossier(ctx context.Context, projectID string, expectedVersion int, snapshot json.RawMessage, src persistence.DossierVersion) (persistence.Dossier, error)
	ListDossierVersions(ctx context.Context, projectID string) ([]persistence.DossierVersion, error)
	GetDossierVersion(ctx context.Context, projectID string, version int) (persistence.DossierVersion, error)
	ListMessages(ctx context.Context, sessionID string, limit, offset int) ([]persistence.Message, error)
}

// Config holds the dependencies and limits of the HTTP surface.
type Config struct {
	Sessions Sessions
	Store    Store
	// Tokens verifies access tokens; nil refuses them (anonymous ids only).
	Tokens TokenVerifier
	// TokenLeeway is how long past its expiry a token keeps a WebSocket
	// open; set it to the verifier's leeway.
	TokenLeeway time.Duration
	Logger      *slog.Logger
	// Provider names the chat model provider, shown by /readyz.
	Provider string
	// Dependencies are checked by /readyz besides the store (e.g. Redis).
	Dependencies []Dependency
	// MaxTextBytes caps a chat message's text; default 32 KiB.
	MaxTextBytes int
	// QueueSize bounds each stream's and each WebSocket's outbound queue, in
	// events; default 1024. A client whose queue fills is disconnected.
	QueueSize int
	// WriteTimeout bounds each write to a stream; default 10s.
	WriteTimeout time.Duration
	// Heartbeat is how often an idle SSE stream gets a comment; default 15s.
	Heartbeat time.Duration
	// PingInterval is how often a WebSocket is pinged; default 25s. A pong
	// must come within PingTimeout (default 15s) or the socket is closed.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// MaxFrameBytes caps a WebSocket frame from a client; default 64 KiB.
	MaxFrameBytes int64
	// CORSOrigins are the browser origins (e.g. https://app.example.com; "*"
	// for any) allowed to call the API and to open a WebSocket besides the
	// server's own.
	CORSOrigins []string
}

// Dependency is a service /readyz checks: Ping returns nil when it is reachable.
type Dependency struct {
	Name string
	Ping func(ctx context.Context) error
}

// Server is storyd's HTTP handler.
type Server struct {
	cfg     Config
	handler http.Handler
	// originPatterns are the CORS origins as coder/websocket host patterns.
	originPatterns []string
	users          knownUsers
	spec           openAPI
	// sockets counts the WebSocket handlers running, for Wait.
	sockets tracker
	// closing ends long-lived streams when the server shuts down.
	closing context.Context
	close   context.CancelFunc
}

// NewServer builds the handler. It does not listen.
func NewServer(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxTextBytes <= 0 {
		cfg.MaxTextBytes = 32 << 10
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1024
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.PingTimeout <= 0 {
		cfg.PingTimeout = 15 * time.Second
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 64 << 10
	}
	s := &Server{cfg: cfg, originPatterns: originHosts(cfg.CORSOrigins)}
	s.closing, s.close = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s
}

// originHosts turns origins (https://app.example.com) into the host
// patterns coder/websocket's origin check takes (app.example.com).
func originHosts(origins []string) []string {
	var hosts []string
	for _, o := range origins {
		if u, err := url.Parse(strings.TrimSpace(o)); err == nil && u.Host != "" {
			hosts = append(hosts, u.Host)
		} else if o = strings.TrimSpace(o); o != "" {
			hosts = append(hosts, o)
		}
	}
	return hosts
}

// tracker counts running handlers and refuses new ones once closed, so that
// Wait never races an Add.
type tracker struct {
	mu     sync.Mutex
	wg     sync.WaitGroup
	closed bool
}

func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Close tells long-lived streams that the server is going away: follow
// streams end and WebSockets close with 1001 going away, after writing what
// they hold. Chat streams end when their reply is done. It does not wait;
// Wait does.
func (s *Server) Close() {
	s.sockets.close()
	s.close()
}

// Wait blocks until every WebSocket handler has returned (http.Server's
// Shutdown does not wait for hijacked connections) or ctx ends.
func (s *Server) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.sockets.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("transport: wait for websockets: %w", ctx.Err())
	}
}
