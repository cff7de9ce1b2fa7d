// Package ssrf refuses connections to addresses a public fetcher must never
// reach: loopback, private, link-local (cloud metadata), carrier-grade NAT,
// documentation, multicast and reserved ranges, and the mesh's own service
// addresses. The check runs at connect time on the resolved IP (through
// net.Dialer.Control), so DNS rebinding, redirects and URL-parser tricks
// cannot get around it.
package ssrf

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// blockedV4 are refused IPv4 ranges with the reason shown to clients.
var blockedV4 = []struct {
	prefix netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (cloud metadata)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("192.88.99.0/24"), "6to4 relay"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"},
}

// IPv6: only global unicast (2000::/3) is allowed, minus these.
var (
	globalV6  = netip.MustParsePrefix("2000::/3")
	blockedV6 = []struct {
		prefix netip.Prefix
		reason string
	}{
		{netip.MustParsePrefix("2001::/23"), "IETF protocol assignments"},
		{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
		{netip.MustParsePrefix("2002::/16"), "6to4"},
	}
)

// BlockedError is returned when the guard refuses an address.
type BlockedError struct {
	Addr   netip.Addr
	Reason string
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("connection to %s refused: %s address", e.Addr, e.Reason)
}

// Options configure a Guard.
type Options struct {
	// Allow lets chosen addresses through although their range is refused:
	// "127.0.0.1:8089" (that address and port), "127.0.0.1" (any port) or
	// "127.0.0.0/8" (a prefix, any port). For test sites only.
	Allow []string
	// Deny refuses these "ip:port" addresses even when Allow covers them:
	// the mesh's own listeners and Chrome's DevTools port.
	Deny []string
}

// Guard checks addresses; the zero value is not usable, call New.
type Guard struct {
	allowPrefixes []netip.Prefix
	allowAddrs    map[netip.AddrPort]bool
	deny          map[netip.AddrPort]bool
}

// New builds a guard from opts.
func New(opts Options) (*Guard, error) {
	g := &Guard{allowAddrs: map[netip.AddrPort]bool{}, deny: map[netip.AddrPort]bool{}}
	for _, s := range opts.Allow {
		switch {
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("ssrf allow %q: %w", s, err)
			}
			g.allowPrefixes = append(g.allowPrefixes, p.Masked())
		default:
			if ap, err := netip.ParseAddrPort(s); err == nil {
				g.allowAddrs[normalize(ap)] = true
				continue
			}
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("ssrf allow %q: want ip:port, ip or prefix", s)
			}
			a = a.Unmap()
			g.allowPrefixes = append(g.allowPrefixes, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	for _, s := range opts.Deny {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return nil, fmt.Errorf("ssrf deny %q: want ip:port: %w", s, err)
		}
		g.deny[normalize(ap)] = true
	}
	return g, nil
}

func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}

// Check returns a *BlockedError when ap must not be connected to.
func (g *Guard) Check(ap netip.AddrPort) error {
	ap = normalize(ap)
	addr := ap.Addr()
	if g.deny[ap] {
		return &BlockedError{Addr: addr, Reason: "mesh service"}
	}
	if g.allowAddrs[ap] {
		return nil
	}
	for _, p := range g.allowPrefixes {
		if p.Contains(addr) {
			return nil
		}
	}
	if reason := forbiddenReason(addr); reason != "" {
		return &BlockedError{Addr: addr, Reason: reason}
	}
	return nil
}

// forbiddenReason says why addr (unmapped, unzoned) is refused, or "".
func forbiddenReason(addr netip.Addr) string {
	if !addr.IsValid() {
		return "invalid"
	}
	if addr.Is4() {
		if addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return "broadcast"
		}
		for _, b := range blockedV4 {
			if b.prefix.Contains(addr) {
				return b.reason
			}
		}
		return ""
	}
	if !globalV6.Contains(addr) {
		switch {
		case addr.IsLoopback():
			return "loopback"
		case addr.IsLinkLocalUnicast():
			return "link-local"
		case addr.IsPrivate():
			return "private"
		case addr.IsMulticast():
			return "multicast"
		}
		return "non-global IPv6"
	}
	for _, b := range blockedV6 {
		if b.prefix.Contains(addr) {
			return b.reason
		}
	}
	return ""
}

// Control is a net.Dialer.Control function that applies the guard to the
// address actually being connected to.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("ssrf: unexpected dial address %q: %w", address, err)
	}
	return g.Check(ap)
}

// Dialer returns a dialer that refuses guarded addresses at connect time.
func (g *Guard) Dialer(connectTimeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: g.Control}
}
