package persistence

import "time"

// Option configures a store when it is opened.
type Option func(*config)

// WithClock makes the store take "now" from the given function instead of
// time.Now, so tests can produce distinct, ordered timestamps without sleeping.
// The function must be safe for concurrent use.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithSQLiteReadConns sets how many read-only connections the SQLite store
// keeps (default 4). PostgreSQL ignores it: pool size is part of its URL
// (pool_max_conns).
func WithSQLiteReadConns(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.readConns = n
		}
	}
}

// config is the result of applying Options.
type config struct {
	now       func() time.Time
	readConns int
}

func newConfig(opts []Option) config {
	c := config{now: time.Now, readConns: 4}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	return c
}

// timestamp returns the store's current time as stored: UTC, microseconds.
func (c config) timestamp() time.Time { return normTime(c.now()) }
