package target_test

import (
	"strings"
	"testing"

	"github.com/fetchmesh/fetchmesh/services/shared/target"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		raw string
		ok  bool
	}{
		{"https://example.com/a?b=c#d", true},
		{"http://example.com:8080/", true},
		{"HTTP://Example.com/", true},
		{"http://[2001:db8::1]/", true},
		{"", false},
		{"example.com/path", false},
		{"/relative", false},
		{"ftp://example.com/", false},
		{"file:///etc/passwd", false},
		{"javascript:alert(1)", false},
		{"gopher://127.0.0.1:25/", false},
		{"http://", false},
		{"http://user:pw@example.com/", false},
		{`http://evil.com\@127.0.0.1/`, false},
		{"http://[127.0.0.1]/", false}, // bracketed non-IPv6 host (CVE-2025-47912)
		{"http://2130706433/", false},  // 127.0.0.1 as one decimal number
		{"http://0x7f000001/", false},
		{"http://127.1/", false},
		{"http://0177.0.0.1/", false},
		{"http://010.0.0.1/", false}, // leading-zero octets (CVE-2021-29923)
		{"http://127.0.0.1/", true},  // canonical: allowed here, refused at connect time
		{"http://1password.com/", true},
		{"http://123.example/", true},
		{"http://exa mple.com/", false},
		{"http://example.com:99999/", false},
		{"http://%zz/", false},
		{"http://example.com/" + strings.Repeat("a", target.MaxURLLength), false},
	}
	for _, c := range cases {
		_, err := target.ParseURL(c.raw)
		if (err == nil) != c.ok {
			t.Errorf("ParseURL(%.60q): err=%v, want ok=%v", c.raw, err, c.ok)
		}
	}
}
