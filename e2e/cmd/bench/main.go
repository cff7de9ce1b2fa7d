// Command bench measures fetchmesh against baselines run in the same
// process on the same machine, so the figures are ratios that survive a
// noisy, shared machine. It prints one `name: value unit` line per figure,
// then a table. It never fails on a number: benchmarks are not tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
)

// figure is one measured number.
type figure struct {
	name, unit, note string
	value            float64
}

var figures []figure

func report(name string, value float64, unit, note string) {
	figures = append(figures, figure{name, unit, note, value})
	fmt.Printf("%s: %.3f %s\n", name, value, unit)
}

func main() {
	bin := flag.String("bin", "bin", "folder holding the built commands")
	pages := flag.Int("static-pages", 2000, "article pages in the static-tier comparison")
	rounds := flag.Int("rounds", 3, "alternating rounds of mesh and baseline (medians are reported)")
	rssURLs := flag.Int("rss-urls", 10000, "URLs in the gateway memory batch")
	renderPages := flag.Int("render-pages", 200, "app-shell pages in the render comparison")
	mixURLs := flag.Int("mix-urls", 500, "URLs in the mixed pipeline batch")
	only := flag.String("only", "static,render,mix,coordinator,scenario1,tracing", "comma-separated groups to run")
	flag.Parse()
	groups := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		groups[strings.TrimSpace(g)] = true
	}

	logf, err := os.CreateTemp("", "fetchmesh-bench-*.log")
	if err != nil {
		fail(err)
	}
	defer logf.Close()
	absBin, _ := filepath.Abs(*bin)
	m, err := mesh.Start(mesh.Options{BinDir: absBin, Log: logf, DecodoEmulator: true})
	if err != nil {
		fail(fmt.Errorf("%w (log: %s)", err, logf.Name()))
	}
	defer m.Stop()
	ctx := context.Background()

	if groups["static"] {
		if err := benchStatic(ctx, m, *pages, *rounds); err != nil {
			fail(err)
		}
		if *rssURLs > 0 {
			if err := benchGatewayRSS(ctx, m, *rssURLs); err != nil {
				fail(err)
			}
		}
	}
	if groups["render"] {
		if err := benchRender(ctx, m, *renderPages, 3); err != nil {
			fail(err)
		}
	}
	if groups["mix"] {
		if err := benchMix(ctx, m, *mixURLs); err != nil {
			fail(err)
		}
	}
	m.Stop()
	if groups["coordinator"] {
		if err := benchCoordinator(ctx, absBin, 200, 20, 4, 5*time.Second); err != nil {
			fail(err)
		}
	}
	if groups["tracing"] {
		root, err := mesh.RepoRoot()
		if err != nil {
			fail(err)
		}
		if err := benchTracing(ctx, root, absBin, *pages, *rounds); err != nil {
			fail(err)
		}
	}
	if groups["scenario1"] {
		if err := benchScenario1(ctx, absBin); err != nil {
			fail(err)
		}
	}
	printTable()
}

func printTable() {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tunit\tnote")
	for _, f := range figures {
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%s\n", f.name, f.value, f.unit, f.note)
	}
	tw.Flush()
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// since returns seconds elapsed, at least a microsecond.
func since(t time.Time) float64 { return max(time.Since(t).Seconds(), 1e-6) }
