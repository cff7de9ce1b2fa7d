package classify

import (
	"strings"
	"testing"
	"unicode"
)

// countTextSlow is the plain definition countText must agree with.
func countTextSlow(text string, n int, lastSpace bool) (int, bool) {
	for _, r := range text {
		if unicode.IsSpace(r) {
			if !lastSpace {
				n++
			}
			lastSpace = true
			continue
		}
		n++
		lastSpace = false
	}
	return n, lastSpace
}

func TestCountText(t *testing.T) {
	for _, text := range []string{
		"", " ", "a", "  a  b  ", "\t\n\v\f\r x", "héllo wörld", "a\u00a0\u00a0b", "日本語 テキスト\u3000終",
		"\u0085\u2028x", "bad \xff\xfe utf-8 ", strings.Repeat("word ", 1000),
	} {
		for _, lastSpace := range []bool{false, true} {
			n, last := countText([]byte(text), 7, lastSpace)
			wantN, wantLast := countTextSlow(text, 7, lastSpace)
			if n != wantN || last != wantLast {
				t.Errorf("countText(%q, 7, %v) = %d, %v; want %d, %v", text, lastSpace, n, last, wantN, wantLast)
			}
		}
	}
}

// The classifier runs on every page the static tier fetches and every page
// a node renders.
func BenchmarkClassifyArticle(b *testing.B) {
	var page strings.Builder
	page.WriteString("<!DOCTYPE html><html><head><title>A long article</title></head><body><article>")
	for i := 0; page.Len() < 100<<10; i++ {
		page.WriteString("<p>Paragraph text with <a href=\"/x\">a link</a>, an entity &amp; some\n  whitespace, and a number ")
		page.WriteString(strings.Repeat("lorem ipsum ", i%7))
		page.WriteString("</p>\n")
	}
	page.WriteString("</article></body></html>")
	in := Input{StatusCode: 200, ContentType: "text/html", Body: page.String()}
	b.SetBytes(int64(len(in.Body)))
	for b.Loop() {
		Classify(in)
	}
}
