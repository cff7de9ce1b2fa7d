package classify_test

import (
	"os"
	"path/filepath"
	"testing"

	commonv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/common/v1"
	"github.com/fetchmesh/fetchmesh/services/shared/classify"
)

const (
	complete = commonv1.Verdict_VERDICT_COMPLETE
	needsJS  = commonv1.Verdict_VERDICT_NEEDS_JAVASCRIPT
	blocked  = commonv1.Verdict_VERDICT_BLOCKED
	notFound = commonv1.Verdict_VERDICT_NOT_FOUND
	failed   = commonv1.Verdict_VERDICT_FAILED
)

func fixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClassify(t *testing.T) {
	article := fixture(t, "article.html")
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        commonv1.Verdict
		retryable   bool
	}{
		{"article with scripts and the word captcha", 200, "text/html", article, complete, false},
		{"plain text", 200, "text/plain", "ok", complete, false},
		{"json", 200, "application/json", `{"a":1}`, complete, false},
		{"small page without scripts", 200, "text/html", "<html><body><p>Hello.</p></body></html>", complete, false},
		{"redirect without location", 302, "text/html", "<p>moved</p>", complete, false},
		{"next.js shell", 200, "text/html", fixture(t, "next_shell.html"), needsJS, false},
		{"spinner shell with noscript", 200, "text/html", fixture(t, "spinner_shell.html"), needsJS, false},
		{"inline script fills root", 200, "text/html", `<html><body><div id="root"></div><script>document.getElementById("root").textContent="hi"</script></body></html>`, needsJS, false},
		{"scripts and almost no text", 200, "text/html", `<html><body><main></main><script src="/app.js"></script></body></html>`, needsJS, false},
		{"noscript asks for javascript", 200, "text/html", `<html><body><noscript>Please enable JavaScript to view this site.</noscript><p>Loading</p></body></html>`, needsJS, false},
		{"sniffed html without content type", 200, "", `<!DOCTYPE html><html><body><div id="app"></div><script src="a.js"></script></body></html>`, needsJS, false},
		{"cloudflare challenge with 200", 200, "text/html", fixture(t, "cloudflare_challenge.html"), blocked, false},
		{"cloudflare challenge with 403", 403, "text/html", fixture(t, "cloudflare_challenge.html"), blocked, false},
		{"challenge with 503", 503, "text/html", fixture(t, "cloudflare_challenge.html"), blocked, false},
		{"perimeterx title", 200, "text/html", `<html><head><title>Access Denied</title></head><body>Press and hold</body></html>`, blocked, false},
		{"plain 403", 403, "text/html", "<h1>Forbidden</h1>", blocked, false},
		{"429", 429, "text/plain", "slow down", blocked, false},
		{"404", 404, "text/html", "<h1>Not Found</h1>", notFound, false},
		{"410", 410, "", "", notFound, false},
		{"500", 500, "text/html", "<h1>oops</h1>", failed, true},
		{"plain 503", 503, "text/plain", "try later", failed, true},
		{"401", 401, "text/html", "<h1>login</h1>", failed, false},
		{"400", 400, "text/plain", "bad", failed, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := classify.Classify(classify.Input{StatusCode: c.status, ContentType: c.contentType, Body: c.body})
			if got.Verdict != c.want || got.Retryable != c.retryable {
				t.Errorf("got %v (retryable %v, reason %q), want %v (retryable %v)", got.Verdict, got.Retryable, got.Reason, c.want, c.retryable)
			}
			if got.Reason == "" {
				t.Error("empty reason")
			}
		})
	}
}

func TestClassify_Title(t *testing.T) {
	got := classify.Classify(classify.Input{StatusCode: 200, ContentType: "text/html", Body: fixture(t, "article.html")})
	if want := "Harbour lights return to the old town"; got.Title != want {
		t.Errorf("title %q, want %q", got.Title, want)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(200, "text/html", "<html><body><div id=root></div><script>x</script>")
	f.Add(403, "", "<title>Just a moment...</title>")
	f.Fuzz(func(t *testing.T, status int, ct, body string) {
		r := classify.Classify(classify.Input{StatusCode: status, ContentType: ct, Body: body})
		if r.Verdict == commonv1.Verdict_VERDICT_UNSPECIFIED {
			t.Fatalf("no verdict for %d %q", status, body)
		}
	})
}
