package ssrf_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
)

func TestGuard_Check(t *testing.T) {
	g, err := ssrf.New(ssrf.Options{
		Allow: []string{"127.0.0.1:8089", "127.0.0.2", "10.9.0.0/16"},
		Deny:  []string{"127.0.0.2:7100"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		addr    string
		blocked bool
	}{
		{"93.184.216.34:443", false},
		{"[2606:4700::6810:85e5]:443", false},
		{"127.0.0.1:80", true},
		{"127.0.0.1:8089", false}, // allowed exactly
		{"127.0.0.1:8090", true},  // same ip, other port
		{"127.0.0.2:9999", false}, // allowed ip, any port
		{"127.0.0.2:7100", true},  // denied mesh service beats allow
		{"10.9.1.1:80", false},    // allowed prefix
		{"10.8.1.1:80", true},
		{"169.254.169.254:80", true},
		{"100.100.100.200:80", true},
		{"100.64.0.1:80", true},
		{"0.0.0.0:80", true},
		{"255.255.255.255:80", true},
		{"224.0.0.1:80", true},
		{"192.168.1.1:80", true},
		{"172.16.0.1:80", true},
		{"198.18.0.1:80", true},
		{"[::1]:80", true},
		{"[::]:80", true},
		{"[::ffff:127.0.0.1]:80", true},
		{"[::ffff:10.0.0.1]:80", true},
		{"[::ffff:127.0.0.1]:8089", false}, // mapped form of an allowed address
		{"[64:ff9b::7f00:1]:80", true},
		{"[fd00:ec2::254]:80", true},
		{"[fe80::1%eth0]:80", true},
		{"[ff02::1]:80", true},
		{"[2001:db8::1]:80", true},
		{"[2002:7f00:1::]:80", true},
		{"[2001::1]:80", true},
	}
	for _, c := range cases {
		err := g.Check(netip.MustParseAddrPort(c.addr))
		var be *ssrf.BlockedError
		if got := errors.As(err, &be); got != c.blocked {
			t.Errorf("Check(%s) blocked=%v, want %v (err %v)", c.addr, got, c.blocked, err)
		}
	}
}

func TestGuard_DialerRefusesLoopbackAtConnect(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	g, err := ssrf.New(ssrf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// "localhost" resolves only at dial time: the guard sees the real IP.
	_, port, _ := net.SplitHostPort(lis.Addr().String())
	_, err = g.Dialer(time.Second).DialContext(context.Background(), "tcp", net.JoinHostPort("localhost", port))
	var be *ssrf.BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("dial localhost: got %v, want BlockedError", err)
	}
}

func TestNew_RejectsMalformedEntries(t *testing.T) {
	for _, o := range []ssrf.Options{{Allow: []string{"nonsense"}}, {Deny: []string{"127.0.0.1"}}} {
		if _, err := ssrf.New(o); err == nil {
			t.Errorf("New(%+v) accepted a malformed entry", o)
		}
	}
}
