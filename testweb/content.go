// Package testweb is fetchmesh's own web for tests, benchmarks and demos:
// article pages, JavaScript-only app shells, bot challenges, not-founds and
// a set of hostile answers (slow, flaky, huge, gzip bomb, dripping body,
// redirect chains and loops, huge headers). Everything is generated from a
// seed, so a page's expected title and text are known (Truth) without
// fetching it.
package testweb

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

var words = strings.Fields(`harbour lantern meadow copper river signal orchard granite
summer winter market festival bridge tower garden library station island valley
engine letter window morning evening village ancient modern quiet bright silver
golden northern southern eastern western council report season harvest weather
museum gallery theatre concert school student teacher doctor nurse farmer baker
painter writer sailor pilot ferry train road canal forest mountain coast storm
light shadow stone glass paper timber wool salt honey bread apple pear plum`)

// Article is the generated content of page n: what a browser would show.
type Article struct {
	Title       string
	Paragraphs  []string
	Fingerprint string // a unique sentence that proves the real content arrived
}

// Text is the article's body text, paragraphs joined by blank lines.
func (a Article) Text() string { return strings.Join(a.Paragraphs, "\n\n") }

func (w *Web) article(n int, paragraphs int) Article {
	rng := rand.New(rand.NewPCG(w.seed, uint64(n)))
	pick := func() string { return words[rng.IntN(len(words))] }
	title := fmt.Sprintf("Article %d: The %s %s of the %s %s", n, pick(), pick(), pick(), pick())
	a := Article{Title: title, Fingerprint: fmt.Sprintf("fingerprint fm-%d-%d-%08x", w.seed, n, rng.Uint32())}
	for range paragraphs {
		var b strings.Builder
		sentences := 6 + rng.IntN(3)
		for s := range sentences {
			if s > 0 {
				b.WriteByte(' ')
			}
			nw := 12 + rng.IntN(8)
			for i := range nw {
				word := pick()
				if i == 0 {
					word = strings.ToUpper(word[:1]) + word[1:]
				} else {
					b.WriteByte(' ')
				}
				b.WriteString(word)
			}
			b.WriteByte('.')
		}
		a.Paragraphs = append(a.Paragraphs, b.String())
	}
	a.Paragraphs = append(a.Paragraphs, "This page carries "+a.Fingerprint+".")
	return a
}

// Sizes: an article page is about 100 KB of HTML; app shells carry less.
const (
	articleParagraphs = 125
	appParagraphs     = 8
)
