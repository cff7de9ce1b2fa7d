package testweb

import (
	"net/url"
	"strconv"
	"strings"
)

// Kind is the kind of a test-web page.
type Kind string

// Page kinds with a known truth.
const (
	KindArticle   Kind = "article"   // static HTML
	KindAppInline Kind = "app"       // text written by an inline script
	KindAppFetch  Kind = "app-fetch" // text fetched by a script
	KindChallenge Kind = "challenge" // a bot wall in front of an article
	KindNotFound  Kind = "not-found"
)

// Truth is what a correct fetch of a test-web URL returns.
type Truth struct {
	Kind        Kind
	Status      int
	Title       string // the real page's title
	Fingerprint string // a sentence only the real page contains
}

// Truth returns the expected content of rawURL's path, false when the path
// is not a page with a known truth.
func (w *Web) Truth(rawURL string) (Truth, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Truth{}, false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	num := func(s string) (int, bool) {
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0
	}
	withArticle := func(kind Kind, n, paragraphs int) (Truth, bool) {
		a := w.article(n, paragraphs)
		return Truth{Kind: kind, Status: 200, Title: a.Title, Fingerprint: a.Fingerprint}, true
	}
	switch {
	case len(parts) == 2 && parts[0] == "article":
		if n, ok := num(parts[1]); ok {
			return withArticle(KindArticle, n, articleParagraphs)
		}
	case len(parts) == 3 && parts[0] == "app" && (parts[1] == "inline" || parts[1] == "fetch" || parts[1] == "frame"):
		if n, ok := num(parts[2]); ok {
			kind := KindAppInline
			if parts[1] == "fetch" {
				kind = KindAppFetch
			}
			return withArticle(kind, n, appParagraphs)
		}
	case len(parts) == 3 && parts[0] == "challenge" && (parts[1] == "200" || parts[1] == "403"):
		if n, ok := num(parts[2]); ok {
			return withArticle(KindChallenge, n, articleParagraphs)
		}
	case len(parts) == 2 && parts[0] == "status" && parts[1] == "404":
		return Truth{Kind: KindNotFound, Status: 404}, true
	}
	return Truth{}, false
}

// Check reports whether a fetched page matches the truth: the right title
// and the fingerprint in the body.
func (t Truth) Check(title, body string) bool {
	if t.Kind == KindNotFound {
		return true
	}
	return title == t.Title && strings.Contains(body, t.Fingerprint)
}
