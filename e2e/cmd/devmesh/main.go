// Command devmesh runs the whole mesh locally for `make run`: the five
// services as separate processes on loopback with embedded defaults, plus
// the test web as a demo site (the only address let past the SSRF guard).
// Ctrl-C stops everything; so does any process dying.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
)

func main() {
	bin := flag.String("bin", "bin", "folder holding the built commands")
	logDir := flag.String("logs", ".tmp/run", "folder for the processes' logs")
	emulator := flag.Bool("decodo-emulator", false, "run the local Decodo emulator and give the decodo-proxy its credentials")
	jaegerBin := flag.String("jaeger", ".tmp/bin/jaeger", "Jaeger binary (empty: no Jaeger; traces are not exported)")
	jaegerConfig := flag.String("jaeger-config", "deploy/jaeger/local.yaml", "Jaeger configuration")
	flag.Parse()
	if err := os.MkdirAll(*logDir, 0o755); err != nil {
		fail(err)
	}
	logPath := filepath.Join(*logDir, "mesh.log")
	logf, err := os.Create(logPath)
	if err != nil {
		fail(err)
	}
	defer logf.Close()
	var jaeger *mesh.Jaeger
	if *jaegerBin != "" {
		if jaeger, err = mesh.StartJaeger(*jaegerBin, *jaegerConfig, "127.0.0.1:16686", "127.0.0.1:4317", logf); err != nil {
			fail(err)
		}
		defer jaeger.Stop()
	}
	metrics := func(port int) []string { return []string{"-metrics-listen", fmt.Sprintf("127.0.0.1:%d", port)} }
	m, err := mesh.Start(mesh.Options{
		Jaeger: jaeger,
		Args: map[string][]string{"gateway": metrics(9100), "static-fetcher": metrics(9101), "render-coordinator": metrics(9102),
			"render-node": metrics(9103), "decodo-proxy": metrics(9104)},
		BinDir:         *bin,
		Log:            logf,
		TestWeb:        "127.0.0.1:8089",
		GatewayGRPC:    "127.0.0.1:7100",
		GatewayHTTP:    "127.0.0.1:7180",
		StaticFetcher:  "127.0.0.1:7101",
		Coordinator:    "127.0.0.1:7102",
		RenderNode:     "127.0.0.1:7103",
		DecodoProxy:    "127.0.0.1:7104",
		DecodoEmulator: *emulator,
	})
	if err != nil {
		fail(fmt.Errorf("%w (see %s)", err, logPath))
	}
	decodo := "off (no credentials: URLs that need it say \"Decodo not configured\"; make run DECODO_EMULATOR=1 runs the local emulator)"
	if m.DecodoEmulatorURL != "" {
		decodo = "through the local Decodo emulator at " + m.DecodoEmulatorURL
	}
	fmt.Printf("Decodo tier: %s\n", decodo)
	if jaeger != nil {
		fmt.Printf("Jaeger: %s (each batch's accepted event and every result carry its traceId: %s/api/traces/<traceId>; a Jaeger built from Go modules serves its API, not the web UI)\n", jaeger.QueryURL, jaeger.QueryURL)
	}
	fmt.Println("Metrics (Prometheus format): http://127.0.0.1:9100/metrics (gateway) ... :9104 (decodo-proxy)")
	fmt.Printf(`fetchmesh is running (logs: %s)
  REST      %s   POST /v1/batches:stream, POST /v1/fetch, GET /v1/pool
  OpenAPI   %s/openapi.json
  gRPC      %s   (reflection on: grpcurl -plaintext %s list)
  demo web  %s/  (the only address allowed past the SSRF guard; batch: %s/urls.txt)

Try:
  curl -sN %s/v1/batches:stream -d '{"urls":["%s/article/1","%s/app/inline/2","%s/status/404"]}'

Ctrl-C stops everything.
`, logPath, m.RESTURL, m.RESTURL, m.GatewayGRPC, m.GatewayGRPC, m.TestWebURL, m.TestWebURL,
		m.RESTURL, m.TestWebURL, m.TestWebURL, m.TestWebURL)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	died := make(chan *mesh.Proc, len(m.Procs()))
	for _, p := range m.Procs() {
		go func() { <-p.Exited(); died <- p }()
	}
	code := 0
	select {
	case <-sig:
		fmt.Println("\nstopping...")
	case p := <-died:
		fmt.Fprintf(os.Stderr, "%s exited unexpectedly (%v); stopping the mesh, see %s\n", p.Name, p.Err(), logPath)
		code = 1
	}
	m.Stop()
	fmt.Println("stopped")
	os.Exit(code)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "devmesh:", err)
	os.Exit(1)
}
