package mesh

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Jaeger is a running Jaeger (all-in-one, in memory).
type Jaeger struct {
	// OTLP is the OTLP/gRPC endpoint (http://host:port) for OTEL_EXPORTER_OTLP_ENDPOINT.
	OTLP string
	// QueryURL is the base URL of the UI and HTTP API.
	QueryURL string
	proc     *Proc
}

// freePort returns a free loopback address (closed at once: a tiny race
// that a test can afford).
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// StartJaeger runs bin with config on the given query and OTLP addresses
// (free ports when empty) and waits until its API answers.
func StartJaeger(bin, config, queryAddr, otlpAddr string, logw io.Writer) (*Jaeger, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("no Jaeger binary at %s: run `make jaeger-bin` (%w)", bin, err)
	}
	addrs := map[string]string{"JAEGER_QUERY_HTTP": queryAddr, "JAEGER_OTLP_GRPC": otlpAddr, "JAEGER_QUERY_GRPC": "", "JAEGER_OTLP_HTTP": "", "JAEGER_HEALTH": ""}
	env := os.Environ()
	for k, v := range addrs {
		if v == "" {
			p, err := freePort()
			if err != nil {
				return nil, err
			}
			addrs[k] = p
		}
		env = append(env, k+"="+addrs[k])
	}
	cmd := exec.Command(bin, "--config", config)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = prefixed(logw, "jaeger"), prefixed(logw, "jaeger")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Name: "jaeger", cmd: cmd, exited: make(chan struct{})}
	go func() { p.exitErr = cmd.Wait(); close(p.exited) }()
	j := &Jaeger{OTLP: "http://" + addrs["JAEGER_OTLP_GRPC"], QueryURL: "http://" + addrs["JAEGER_QUERY_HTTP"], proc: p}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return nil, fmt.Errorf("jaeger exited: %v", p.exitErr)
		default:
		}
		if resp, err := http.Get(j.QueryURL + "/api/services"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return j, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Stop(time.Second)
	return nil, fmt.Errorf("jaeger did not answer at %s", j.QueryURL)
}

// Stop stops Jaeger.
func (j *Jaeger) Stop() { j.proc.Stop(5 * time.Second) }

// OTELEnv is the environment that makes a service export its traces to j.
func (j *Jaeger) OTELEnv() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + j.OTLP, "OTEL_EXPORTER_OTLP_INSECURE=true", "OTEL_BSP_SCHEDULE_DELAY=200"}
}

type prefixWriter struct {
	w    io.Writer
	name string
}

func prefixed(w io.Writer, name string) io.Writer { return &prefixWriter{w, name} }

func (p *prefixWriter) Write(b []byte) (int, error) {
	fmt.Fprintf(p.w, "%s | %s", p.name, b)
	return len(b), nil
}
