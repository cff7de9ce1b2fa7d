// Command fetchctl sends URLs to a fetchmesh gateway and streams the results
// as NDJSON, one JSON object per line, as each URL finishes.
//
//	fetchctl fetch urls.txt          # one URL per line; "-" or nothing reads stdin
//	fetchctl fetch -o out.ndjson -mode render urls.txt
//	fetchctl pool                    # render pool status
//
// Batches longer than 10,000 URLs are sent as consecutive batches; indices in
// the output still count from the first line of the input. The exit status is
// 0 when every batch completed (whatever each URL's outcome), 1 on a
// transport or batch error, 2 on bad usage.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/fetchmesh/fetchmesh/client"
	gatewayv1 "github.com/fetchmesh/fetchmesh/gen/go/fetchmesh/gateway/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
)

const maxBatch = 10_000

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  fetchctl fetch [flags] [urls.txt | -]   fetch URLs (one per line; # comments) and stream NDJSON
  fetchctl pool [flags]                    show the render pool
run "fetchctl fetch -h" for the flags
`)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "fetch":
		return fetchCmd(ctx, args[1:], stdin, stdout, stderr)
	case "pool":
		return poolCmd(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "fetchctl: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

var modes = map[string]gatewayv1.Mode{
	"auto": gatewayv1.Mode_MODE_AUTO, "static": gatewayv1.Mode_MODE_STATIC_ONLY,
	"render": gatewayv1.Mode_MODE_FORCE_RENDER, "decodo": gatewayv1.Mode_MODE_FORCE_DECODO,
}

func fetchCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("FETCHMESH_GATEWAY", "127.0.0.1:7100"), "gateway gRPC address (env FETCHMESH_GATEWAY)")
	out := fs.String("o", "", "write NDJSON to this file instead of stdout")
	mode := fs.String("mode", "auto", "auto, static, render or decodo")
	conc := fs.Int("concurrency", 0, "static fetches in flight (0: the gateway's default, 100)")
	timeout := fs.Duration("timeout", 0, "per-URL deadline across tiers (0: the gateway's default, 120s)")
	noBody := fs.Bool("no-body", false, "leave page bodies out of the output")
	quiet := fs.Bool("q", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, ok := modes[*mode]
	if !ok {
		fmt.Fprintf(stderr, "fetchctl: -mode %q: want auto, static, render or decodo\n", *mode)
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "fetchctl: give one URL file (or - for stdin)")
		return 2
	}
	in := stdin
	if name := fs.Arg(0); name != "" && name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, "fetchctl:", err)
			return 1
		}
		defer f.Close()
		in = f
	}
	urls, err := readURLs(in)
	if err != nil {
		fmt.Fprintln(stderr, "fetchctl: reading URLs:", err)
		return 1
	}
	if len(urls) == 0 {
		fmt.Fprintln(stderr, "fetchctl: no URLs given")
		return 2
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "fetchctl:", err)
			return 1
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	defer bw.Flush()

	opts := &gatewayv1.FetchOptions{Mode: m, StaticConcurrency: int32(*conc)}
	if *timeout > 0 {
		opts.UrlTimeout = durationpb.New(*timeout)
	}
	c, err := client.Dial(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "fetchctl:", err)
		return 1
	}
	defer c.Close()

	var bar *progress
	if !*quiet && isTerminal(stdout) {
		// Results that go to the terminal too are written between redraws.
		bar = newProgress(stderr, len(urls), *out == "")
	}
	enc := protojson.MarshalOptions{EmitDefaultValues: true}
	for off := 0; off < len(urls); off += maxBatch {
		chunk := urls[off:min(off+maxBatch, len(urls))]
		for ev, err := range c.FetchBatch(ctx, chunk, opts) {
			if err != nil {
				bar.clear()
				fmt.Fprintln(stderr, "fetchctl:", err)
				return 1
			}
			if r := ev.GetResult(); r != nil {
				r.Index += int32(off)
				if *noBody && r.GetPage() != nil {
					r.Page.Body = nil
				}
				bar.add(r.GetOutcome())
			}
			line, err := enc.Marshal(ev)
			if err != nil {
				fmt.Fprintln(stderr, "fetchctl:", err)
				return 1
			}
			bar.clear()
			bw.Write(line)
			bw.WriteByte('\n')
			if bar != nil && *out == "" {
				bw.Flush()
			}
			bar.draw()
		}
	}
	bar.done()
	if err := bw.Flush(); err != nil {
		fmt.Fprintln(stderr, "fetchctl:", err)
		return 1
	}
	return 0
}

func poolCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pool", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("FETCHMESH_GATEWAY", "127.0.0.1:7100"), "gateway gRPC address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := client.Dial(*addr)
	if err != nil {
		fmt.Fprintln(stderr, "fetchctl:", err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.API().GetPoolStatus(ctx, &gatewayv1.GetPoolStatusRequest{})
	if err != nil {
		fmt.Fprintln(stderr, "fetchctl:", err)
		return 1
	}
	b, _ := protojson.MarshalOptions{Multiline: true}.Marshal(resp)
	fmt.Fprintln(stdout, string(b))
	return 0
}

// readURLs reads one URL per line, skipping blank lines and # comments.
// Lines may be long (up to 1 MiB) so overlong URLs reach the gateway and get
// their own per-URL error.
func readURLs(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var urls []string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		urls = append(urls, line)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line is longer than 1 MiB")
		}
		return nil, err
	}
	return urls, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
