package classify

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// document is what the classifier needs to know about an HTML page,
// gathered in one pass of the tokenizer (no tree is built).
type document struct {
	title          string
	textLen        int    // visible characters, whitespace collapsed
	scripts        int    // <script> elements
	emptyMount     string // id of an empty app mount node, if any
	noscriptAsksJS bool
	framework      string // first framework marker seen, if any
}

// Ids that single-page apps mount into.
var mountIDs = map[string]bool{"root": true, "app": true, "__next": true, "__nuxt": true, "svelte": true, "main-app": true, "react-root": true}

// Attributes and script ids that frameworks leave on their shells.
var frameworkAttrs = map[string]string{"data-reactroot": "react", "ng-version": "angular", "ng-app": "angular", "data-server-rendered": "vue", "data-v-app": "vue"}

var noscriptPhrases = []string{"enable javascript", "javascript is required", "requires javascript", "javascript is disabled", "turn on javascript", "javascript enabled", "need javascript"}

const maxTitle = 1024

func analyze(body string) document {
	var d document
	z := html.NewTokenizer(strings.NewReader(body))
	skip := 0           // depth inside elements whose text is not visible
	pendingMount := ""  // a mount node was opened; is it closed right away?
	inTitle := false    // collecting <title> text
	inNoscript := false // the tokenizer hands noscript content over as raw text
	lastSpace := true   // collapse whitespace across tokens
	var title strings.Builder
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			d.title = collapse(title.String())
			return d
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			a := atom.Lookup(name)
			pendingMount = ""
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				key := string(k)
				if fw, ok := frameworkAttrs[key]; ok && d.framework == "" {
					d.framework = fw
				}
				if key == "id" && tt == html.StartTagToken && mountIDs[string(v)] {
					pendingMount = string(v)
				}
				if key == "id" && string(v) == "__NEXT_DATA__" && d.framework == "" {
					d.framework = "next"
				}
			}
			switch a {
			case atom.Script:
				d.scripts++
				skip++
			case atom.Style, atom.Template, atom.Noscript, atom.Svg:
				if tt == html.StartTagToken {
					skip++
				}
			case atom.Title:
				inTitle = true
			}
			if a == atom.Noscript && tt == html.StartTagToken {
				inNoscript = true
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			if pendingMount != "" {
				d.emptyMount = pendingMount
				pendingMount = ""
			}
			switch a {
			case atom.Script, atom.Style, atom.Template, atom.Noscript, atom.Svg:
				if skip > 0 {
					skip--
				}
			case atom.Title:
				inTitle = false
			}
			if a == atom.Noscript {
				inNoscript = false
			}
		case html.TextToken:
			text := z.Text()
			if inTitle {
				if title.Len() < maxTitle {
					title.Write(text)
				}
				continue
			}
			if inNoscript {
				low := strings.ToLower(string(text))
				for _, p := range noscriptPhrases {
					if strings.Contains(low, p) {
						d.noscriptAsksJS = true
					}
				}
			}
			if pendingMount != "" && len(bytes.TrimSpace(text)) > 0 {
				pendingMount = ""
			}
			if skip > 0 {
				continue
			}
			d.textLen, lastSpace = countText(text, d.textLen, lastSpace)
		}
	}
}

// countText adds text's characters to n, a run of whitespace counting as
// one. It is the classifier's hottest loop (every byte of every page): ASCII,
// most of any page, skips rune decoding and counts without a branch.
func countText(text []byte, n int, lastSpace bool) (int, bool) {
	last := 0 // 1 after whitespace
	if lastSpace {
		last = 1
	}
	for i := 0; i < len(text); {
		sp := 0
		if c := text[i]; c < utf8.RuneSelf {
			sp = int(asciiSpace[c])
			i++
		} else {
			r, size := utf8.DecodeRune(text[i:])
			i += size
			if unicode.IsSpace(r) {
				sp = 1
			}
		}
		n += 1 - sp&last // a space after a space adds nothing
		last = sp
	}
	return n, last == 1
}

var asciiSpace = [utf8.RuneSelf]uint8{'\t': 1, '\n': 1, '\v': 1, '\f': 1, '\r': 1, ' ': 1}

func collapse(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxTitle {
		s = s[:maxTitle]
	}
	return s
}
