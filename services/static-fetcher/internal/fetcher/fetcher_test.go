package fetcher_test

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/ssrf"
	"github.com/fetchmesh/fetchmesh/services/static-fetcher/internal/fetcher"
	"github.com/fetchmesh/fetchmesh/testweb"
)

// newWeb serves the test web on loopback and returns a fetcher allowed to
// reach exactly that address.
func newWeb(t *testing.T, limits fetcher.Limits) (*httptest.Server, *testweb.Web, *fetcher.Fetcher) {
	t.Helper()
	web := testweb.New(1)
	srv := httptest.NewServer(web)
	t.Cleanup(srv.Close)
	return srv, web, newFetcher(t, limits, srv.Listener.Addr().String())
}

func newFetcher(t *testing.T, limits fetcher.Limits, allow ...string) *fetcher.Fetcher {
	t.Helper()
	g, err := ssrf.New(ssrf.Options{Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	f := fetcher.New(g, limits)
	t.Cleanup(f.Close)
	return f
}

func fetch(t *testing.T, f *fetcher.Fetcher, url string) fetcher.Result {
	t.Helper()
	return f.Fetch(context.Background(), fetcher.Request{URL: url})
}

func wantFailure(t *testing.T, res fetcher.Result, kind commonv1.ErrorKind) {
	t.Helper()
	if res.Verdict != commonv1.Verdict_VERDICT_FAILED || res.Error.GetKind() != kind {
		t.Fatalf("got verdict %v error %v, want failed with %v", res.Verdict, res.Error, kind)
	}
	if res.Error.GetMessage() == "" {
		t.Error("error without message")
	}
}

func TestFetch_VerdictsOfTestWebPages(t *testing.T) {
	srv, web, f := newWeb(t, fetcher.Limits{})
	cases := []struct {
		path string
		want commonv1.Verdict
	}{
		{"/article/1", commonv1.Verdict_VERDICT_COMPLETE},
		{"/app/inline/2", commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT},
		{"/app/fetch/3", commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT},
		{"/challenge/200/4", commonv1.Verdict_VERDICT_BLOCKED},
		{"/challenge/403/5", commonv1.Verdict_VERDICT_BLOCKED},
		{"/status/404", commonv1.Verdict_VERDICT_NOT_FOUND},
		{"/status/500", commonv1.Verdict_VERDICT_FAILED},
	}
	for _, c := range cases {
		res := fetch(t, f, srv.URL+c.path)
		if res.Verdict != c.want {
			t.Errorf("%s: verdict %v (%s), want %v", c.path, res.Verdict, res.Reason, c.want)
		}
	}
	res := fetch(t, f, srv.URL+"/article/1")
	truth, _ := web.Truth(srv.URL + "/article/1")
	if !truth.Check(res.Page.GetTitle(), res.Page.GetText()) {
		t.Errorf("article content wrong: title %q", res.Page.GetTitle())
	}
	if res.Page.GetBodyBytes() < 90_000 || res.WireBytes >= res.Page.GetBodyBytes() {
		t.Errorf("body %d bytes from %d on the wire: want ~100 KB decompressed from gzip", res.Page.GetBodyBytes(), res.WireBytes)
	}
	if res.Timings.GetTotal() == nil || res.Timings.GetFirstByte() == nil {
		t.Errorf("timings missing: %v", res.Timings)
	}
	if res := fetch(t, f, srv.URL+"/status/500"); !res.Error.GetRetryable() || res.Page.GetStatusCode() != 500 {
		t.Errorf("500: want a retryable HTTP status error with the page, got %v", res.Error)
	}
}

func TestFetch_Redirects(t *testing.T) {
	srv, _, f := newWeb(t, fetcher.Limits{MaxRedirects: 5})
	res := fetch(t, f, srv.URL+"/redirect/3/7")
	if res.Verdict != commonv1.Verdict_VERDICT_COMPLETE || res.Page.GetRedirects() != 4 || !strings.HasSuffix(res.Page.GetFinalUrl(), "/article/7") {
		t.Errorf("chain: verdict %v, %d redirects, final %s", res.Verdict, res.Page.GetRedirects(), res.Page.GetFinalUrl())
	}
	wantFailure(t, fetch(t, f, srv.URL+"/redirect-loop"), commonv1.ErrorKind_ERROR_KIND_TOO_MANY_REDIRECTS)
	wantFailure(t, fetch(t, f, srv.URL+"/redirect-to?url=file:///etc/passwd"), commonv1.ErrorKind_ERROR_KIND_INVALID_URL)
}

func TestFetch_HostileResponsesAreBounded(t *testing.T) {
	srv, _, f := newWeb(t, fetcher.Limits{})
	const limit = 1 << 20
	for _, path := range []string{"/huge/50", "/gzip-bomb"} {
		start := time.Now()
		res := f.Fetch(context.Background(), fetcher.Request{URL: srv.URL + path, MaxBodyBytes: limit})
		if !res.Page.GetTruncated() || res.Page.GetBodyBytes() > limit {
			t.Errorf("%s: truncated=%v body=%d, want cut at %d", path, res.Page.GetTruncated(), res.Page.GetBodyBytes(), limit)
		}
		if time.Since(start) > 5*time.Second {
			t.Errorf("%s took %s", path, time.Since(start))
		}
	}
	start := time.Now()
	res := f.Fetch(context.Background(), fetcher.Request{URL: srv.URL + "/drip", Timeout: time.Second})
	wantFailure(t, res, commonv1.ErrorKind_ERROR_KIND_TIMEOUT)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dripping body held the fetch %s past a 1 s deadline", d)
	}
	impatient := newFetcher(t, fetcher.Limits{FirstByte: 300 * time.Millisecond}, srv.Listener.Addr().String())
	wantFailure(t, fetch(t, impatient, srv.URL+"/slow/5000"), commonv1.ErrorKind_ERROR_KIND_TIMEOUT)
	wantFailure(t, fetch(t, f, srv.URL+"/huge-headers"), commonv1.ErrorKind_ERROR_KIND_TOO_LARGE)
	// The fetcher stays usable afterwards.
	if res := fetch(t, f, srv.URL+"/article/9"); res.Verdict != commonv1.Verdict_VERDICT_COMPLETE {
		t.Errorf("after hostile responses: %v", res.Verdict)
	}
}

func TestFetch_BodyIdleTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html><body>start"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	f := newFetcher(t, fetcher.Limits{BodyIdle: 300 * time.Millisecond}, srv.Listener.Addr().String())
	start := time.Now()
	res := fetch(t, f, srv.URL)
	wantFailure(t, res, commonv1.ErrorKind_ERROR_KIND_TIMEOUT)
	if !strings.Contains(res.Error.GetMessage(), "idle") || time.Since(start) > 3*time.Second {
		t.Errorf("got %q after %s, want an idle timeout after ~300 ms", res.Error.GetMessage(), time.Since(start))
	}
}

func TestFetch_Encodings(t *testing.T) {
	const page = "<html><head><title>Encoded</title></head><body><p>" + "compressible text " + "</p></body></html>"
	encode := map[string]func([]byte) []byte{
		"br": func(b []byte) []byte {
			var buf bytes.Buffer
			w := brotli.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		"deflate": func(b []byte) []byte { // zlib-wrapped, as the RFC says
			var buf bytes.Buffer
			w := zlib.NewWriter(&buf)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		"deflate-raw": func(b []byte) []byte { // what some servers send
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, 5)
			w.Write(b)
			w.Close()
			return buf.Bytes()
		},
		"gzip-corrupt": func([]byte) []byte { return []byte("not gzip at all") },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		enc := strings.TrimSuffix(strings.TrimSuffix(name, "-raw"), "-corrupt")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Encoding", enc)
		w.Write(encode[name]([]byte(page)))
	}))
	defer srv.Close()
	f := newFetcher(t, fetcher.Limits{}, srv.Listener.Addr().String())
	for _, name := range []string{"br", "deflate", "deflate-raw"} {
		res := fetch(t, f, srv.URL+"/"+name)
		if res.Page.GetText() != page || res.Page.GetTitle() != "Encoded" {
			t.Errorf("%s: got %q", name, res.Page.GetText())
		}
	}
	wantFailure(t, fetch(t, f, srv.URL+"/gzip-corrupt"), commonv1.ErrorKind_ERROR_KIND_PROTOCOL)
}

func TestFetch_CharsetsAndBinary(t *testing.T) {
	srv, _, f := newWeb(t, fetcher.Limits{})
	res := fetch(t, f, srv.URL+"/charset/latin1")
	if !strings.Contains(res.Page.GetText(), "Café crème brûlée € 5") || res.Page.GetCharset() != "windows-1252" || res.Page.GetTitle() != "Café crème" {
		t.Errorf("latin1: charset %q text %q", res.Page.GetCharset(), res.Page.GetText())
	}
	res = fetch(t, f, srv.URL+"/charset/meta")
	if !strings.Contains(res.Page.GetText(), "Prix: 5 €") {
		t.Errorf("meta charset: charset %q text %q", res.Page.GetCharset(), res.Page.GetText())
	}
	res = fetch(t, f, srv.URL+"/image.png")
	if res.Page.GetContentType() != "image/png" || !bytes.HasPrefix(res.Page.GetBinary(), []byte("\x89PNG")) || res.Page.GetText() != "" {
		t.Errorf("image: type %q, %d binary bytes", res.Page.GetContentType(), len(res.Page.GetBinary()))
	}
}

func TestFetch_SSRFRefusals(t *testing.T) {
	srv, _, _ := newWeb(t, fetcher.Limits{})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	guarded := newFetcher(t, fetcher.Limits{Connect: time.Second})
	for _, url := range []string{
		srv.URL + "/article/1", // 127.0.0.1 without the allow option
		"http://localhost:" + port + "/article/1",
		"http://[::1]:" + port + "/",
		"http://[::ffff:127.0.0.1]:" + port + "/",
		"http://169.254.169.254/latest/meta-data/",
		"http://0.0.0.0:" + port + "/",
		"http://2130706433:" + port + "/", // numeric spellings are refused before any lookup
		"http://0x7f000001:" + port + "/",
		"http://127.1:" + port + "/",
	} {
		res := fetch(t, guarded, url)
		if res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS && res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_INVALID_URL {
			t.Errorf("%s: got %v %v, want refused", url, res.Verdict, res.Error)
		}
		if res.Page != nil {
			t.Errorf("%s: a page came back", url)
		}
	}
	if res := fetch(t, guarded, srv.URL+"/"); res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS {
		t.Errorf("loopback: want FORBIDDEN_ADDRESS, got %v", res.Error)
	}
	// Allowed exactly one test site, a redirect to another loopback port is refused.
	other := httptest.NewServer(testweb.New(2))
	defer other.Close()
	allowed := newFetcher(t, fetcher.Limits{}, srv.Listener.Addr().String())
	res := fetch(t, allowed, srv.URL+"/redirect-to?url="+other.URL+"/article/1")
	wantFailure(t, res, commonv1.ErrorKind_ERROR_KIND_FORBIDDEN_ADDRESS)
}

func TestFetch_CredentialsNotForwardedAcrossHosts(t *testing.T) {
	srv, _, _ := newWeb(t, fetcher.Limits{})
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	f := newFetcher(t, fetcher.Limits{}, "127.0.0.1", "::1")
	secret := []*commonv1.Header{{Name: "Authorization", Value: "Bearer s3cret"}, {Name: "Cookie", Value: "sid=s3cret"}, {Name: "X-Trace", Value: "kept"}}
	// Same host: headers kept. Other host (localhost vs 127.0.0.1): dropped.
	for _, c := range []struct {
		target string
		leak   bool
	}{{srv.URL + "/echo-headers", true}, {"http://localhost:" + port + "/echo-headers", false}} {
		res := f.Fetch(context.Background(), fetcher.Request{URL: srv.URL + "/redirect-to?url=" + c.target, Headers: secret})
		var got map[string][]string
		if err := json.Unmarshal([]byte(res.Page.GetText()), &got); err != nil {
			t.Fatalf("%s: %v (%v)", c.target, err, res.Error)
		}
		if leaked := got["Authorization"] != nil || got["Cookie"] != nil; leaked != c.leak {
			t.Errorf("%s: credentials forwarded=%v, want %v", c.target, leaked, c.leak)
		}
		if got["X-Trace"] == nil {
			t.Errorf("%s: ordinary header dropped", c.target)
		}
	}
}

func TestFetch_CancelStopsAtOnce(t *testing.T) {
	srv, _, f := newWeb(t, fetcher.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	res := f.Fetch(ctx, fetcher.Request{URL: srv.URL + "/slow/10000"})
	if time.Since(start) > time.Second || res.Error.GetKind() != commonv1.ErrorKind_ERROR_KIND_CANCELED {
		t.Errorf("cancel: %v after %s", res.Error, time.Since(start))
	}
}

func TestFetch_InvalidInput(t *testing.T) {
	f := newFetcher(t, fetcher.Limits{})
	wantFailure(t, fetch(t, f, "ftp://example.com/"), commonv1.ErrorKind_ERROR_KIND_INVALID_URL)
	wantFailure(t, fetch(t, f, "http://[127.0.0.1]/"), commonv1.ErrorKind_ERROR_KIND_INVALID_URL)
	for _, req := range []fetcher.Request{
		{URL: "http://a/", MaxBodyBytes: 1 << 30},
		{URL: "http://a/", Timeout: time.Hour},
		{URL: "http://a/", Headers: []*commonv1.Header{{Name: "Host", Value: "x"}}},
		{URL: "http://a/", Headers: []*commonv1.Header{{Name: "X-A", Value: "a\r\nB: c"}}},
	} {
		if err := f.Validate(req); err == nil {
			t.Errorf("Validate(%+v) accepted it", req)
		}
	}
}
