package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"time"
)

// newFlagSet makes a flag set that returns errors instead of exiting and
// prints its usage to stderr only when asked (-h).
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("storyload "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, refusing positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// loopbackURL parses raw and checks its scheme is one of schemes and its
// host a loopback address: storyload only ever targets this machine.
func loopbackURL(flagName, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("-%s %q: %v", flagName, raw, err)
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok {
		return nil, fmt.Errorf("-%s %q: want a %v URL", flagName, raw, schemes)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("-%s %q: not a loopback address; storyload only loads this machine", flagName, raw)
	}
	return u, nil
}

// loopbackAddr checks that addr is host:port with a loopback host.
func loopbackAddr(flagName, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		return fmt.Errorf("-%s %q: want host:port", flagName, addr)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("-%s %q: not a loopback address; the mock serves this machine only", flagName, addr)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// srcAddrs parses -src-ips: a loopback CIDR (127.0.1.0/24) whose addresses
// the clients bind to in turn, spreading their source ports. "" binds none.
func srcAddrs(raw string) ([]net.IP, error) {
	if raw == "" {
		return nil, nil
	}
	p, err := netip.ParsePrefix(raw)
	if err != nil {
		if a, aerr := netip.ParseAddr(raw); aerr == nil {
			p = netip.PrefixFrom(a, a.BitLen())
		} else {
			return nil, fmt.Errorf("-src-ips %q: want a CIDR such as 127.0.1.0/24", raw)
		}
	}
	p = p.Masked()
	if !p.Addr().Is4() || !p.Addr().IsLoopback() || p.Bits() < 8 {
		return nil, fmt.Errorf("-src-ips %q: want a part of 127.0.0.0/8", raw)
	}
	var out []net.IP
	for a := p.Addr(); p.Contains(a) && len(out) < 1<<16; a = a.Next() {
		b := a.As4()
		if b[3] == 0 || b[3] == 255 {
			continue // network and broadcast-looking addresses
		}
		out = append(out, net.IP(b[:]))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-src-ips %q: no usable address", raw)
	}
	return out, nil
}

// checks collects argument errors so that all are reported at once.
type checks []error

func (c *checks) positive(name string, v int) {
	if v < 1 {
		*c = append(*c, fmt.Errorf("-%s %d: want at least 1", name, v))
	}
}

func (c *checks) atLeast(name string, v, lo int) {
	if v < lo {
		*c = append(*c, fmt.Errorf("-%s %d: want at least %d", name, v, lo))
	}
}

func (c *checks) atMost(name string, v, hi int) {
	if v > hi {
		*c = append(*c, fmt.Errorf("-%s %d: want at most %d", name, v, hi))
	}
}

func (c *checks) duration(name string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		*c = append(*c, fmt.Errorf("-%s %s: want from %s to %s", name, d, lo, hi))
	}
}

func (c *checks) probability(name string, p float64) {
	if p < 0 || p > 1 || p != p {
		*c = append(*c, fmt.Errorf("-%s %g: want a probability from 0 to 1", name, p))
	}
}

func (c *checks) add(err error) {
	if err != nil {
		*c = append(*c, err)
	}
}

func (c checks) err() error { return errors.Join(c...) }
