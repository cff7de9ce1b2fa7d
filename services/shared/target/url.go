// Package target holds the rules every tier applies to what a caller asks
// it to fetch: which URLs are fetchable at all and which request headers a
// caller may set. (Which addresses may be connected to is package ssrf.)
package target

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// MaxURLLength is the longest URL the mesh accepts, in bytes.
const MaxURLLength = 8192

// ParseURL checks that raw is a URL the mesh may fetch: absolute http or
// https, a host, no credentials, at most MaxURLLength bytes. Addresses are
// checked later, at connect time; this refuses only what no tier can fetch
// and what browsers and Go would parse differently (backslashes, bracketed
// non-IPv6 hosts). The error text is safe to return to clients.
func ParseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("empty URL")
	}
	if len(raw) > MaxURLLength {
		return nil, fmt.Errorf("URL is %d bytes, longer than the %d-byte limit", len(raw), MaxURLLength)
	}
	if strings.ContainsAny(raw, "\\\x00\r\n\t ") {
		return nil, errors.New("URL contains a backslash, whitespace or control character")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("malformed URL: %v", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return nil, errors.New("URL is not absolute (no scheme)")
	default:
		return nil, fmt.Errorf("scheme %q is not supported: only http and https", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, errors.New("URL has no host")
	}
	if looksNumeric(u.Hostname()) {
		return nil, fmt.Errorf("host %q looks like an IP address in a non-standard form (browsers read it as one); write the address in dotted decimal", u.Hostname())
	}
	if u.User != nil {
		return nil, errors.New("URL carries credentials (user:password@); pass an Authorization header instead")
	}
	if p := u.Port(); p != "" {
		var n int
		if _, err := fmt.Sscanf(p, "%d", &n); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("port %q is out of range", p)
		}
	}
	return u, nil
}

// looksNumeric reports a host that is not a canonical IP literal but whose
// labels are all numbers (decimal, 0x-hex or 0-octal): "2130706433",
// "0x7f000001", "127.1", "0177.0.0.1", "010.0.0.1". Browsers and some
// resolvers read these as IPv4 addresses while Go reads them as names, so
// they are refused rather than resolved.
func looksNumeric(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, l := range labels {
		l = strings.ToLower(l)
		digits := "0123456789"
		if strings.HasPrefix(l, "0x") {
			l, digits = l[2:], "0123456789abcdef"
		}
		if l == "" || strings.Trim(l, digits) != "" {
			return false
		}
	}
	return true
}

// Headers a caller may not set: the transport owns them.
var forbiddenHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Keep-Alive": true, "Upgrade": true, "Te": true, "Trailer": true, "Proxy-Authorization": true,
	"Proxy-Connection": true, "Accept-Encoding": true,
}

// MaxHeaders is the most extra request headers a caller may set.
const MaxHeaders = 50

// CheckHeader refuses malformed headers and those the transport owns. The
// error text is safe to return to clients.
func CheckHeader(name, value string) error {
	canon := http.CanonicalHeaderKey(name)
	if name == "" || strings.ContainsAny(name, " :\r\n\t\x00") {
		return fmt.Errorf("header name %q is invalid", name)
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		return fmt.Errorf("header %s has a control character in its value", canon)
	}
	if forbiddenHeaders[canon] {
		return fmt.Errorf("header %s cannot be set by callers", canon)
	}
	return nil
}
