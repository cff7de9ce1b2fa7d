package fetcher

import (
	"crypto/tls"
	"net/http/httptrace"
	"sync"
	"time"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// phaseTrace sums DNS, connect and TLS time over every hop of a fetch and
// keeps the time to the final response's first byte. Callbacks may run on
// transport goroutines, hence the mutex.
type phaseTrace struct {
	mu                            sync.Mutex
	start                         time.Time
	dnsStart, connStart, tlsStart time.Time
	dns, connect, tls             time.Duration
	firstByte                     time.Duration
}

func newTrace(start time.Time) *phaseTrace { return &phaseTrace{start: start} }

func (t *phaseTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { t.mu.Lock(); t.dnsStart = time.Now(); t.mu.Unlock() },
		DNSDone: func(httptrace.DNSDoneInfo) {
			t.mu.Lock()
			t.dns += time.Since(t.dnsStart)
			t.mu.Unlock()
		},
		ConnectStart: func(string, string) { t.mu.Lock(); t.connStart = time.Now(); t.mu.Unlock() },
		ConnectDone: func(string, string, error) {
			t.mu.Lock()
			t.connect += time.Since(t.connStart)
			t.mu.Unlock()
		},
		TLSHandshakeStart: func() { t.mu.Lock(); t.tlsStart = time.Now(); t.mu.Unlock() },
		TLSHandshakeDone: func(tls.ConnectionState, error) {
			t.mu.Lock()
			t.tls += time.Since(t.tlsStart)
			t.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			t.mu.Lock()
			t.firstByte = time.Since(t.start)
			t.mu.Unlock()
		},
	}
}

// fill copies the measured phases into tm; phases that did not happen stay unset.
func (t *phaseTrace) fill(tm *commonv1.Timings) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := func(d time.Duration) *durationpb.Duration {
		if d <= 0 {
			return nil
		}
		return durationpb.New(d)
	}
	tm.Dns, tm.Connect, tm.Tls, tm.FirstByte = set(t.dns), set(t.connect), set(t.tls), set(t.firstByte)
}
