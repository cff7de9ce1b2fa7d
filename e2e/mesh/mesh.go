// Package mesh builds fetchmesh's commands and starts the mesh as real
// processes on loopback: the test web, the five services, in dependency
// order, each on its own port. `make run`, the end-to-end tests and the
// benchmarks all start the mesh through it.
package mesh

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Commands maps each command to its package, relative to the repository root.
var Commands = map[string]string{
	"gateway":            "./services/gateway/cmd/gateway",
	"static-fetcher":     "./services/static-fetcher/cmd/static-fetcher",
	"render-coordinator": "./services/render-coordinator/cmd/render-coordinator",
	"render-node":        "./services/render-node/cmd/render-node",
	"render-node-sim":    "./services/render-node/cmd/render-node-sim",
	"decodo-proxy":       "./services/decodo-proxy/cmd/decodo-proxy",
	"testweb":            "./testweb/cmd/testweb",
	"decodo-emulator":    "./testweb/cmd/decodo-emulator",
	"fetchctl":           "./client/cmd/fetchctl",
}

// RepoRoot finds the repository root (the folder holding go.work) from the
// working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

// Build compiles the named commands (all when none are named) into dir.
func Build(ctx context.Context, root, dir string, names ...string) error {
	if len(names) == 0 {
		for n := range Commands {
			names = append(names, n)
		}
	}
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	for _, n := range names {
		pkg, ok := Commands[n]
		if !ok {
			return fmt.Errorf("unknown command %q", n)
		}
		args = append(args, pkg)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// Proc is one running process of the mesh.
type Proc struct {
	Name    string
	bin     string            // command name, for Restart
	args    []string          // flags it was started with
	Addrs   map[string]string // from its "serving" log line: grpc, rest, http
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// Exited is closed when the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Err is how the process ended (valid once Exited is closed).
func (p *Proc) Err() error { return p.exitErr }

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop asks the process to stop (SIGTERM) and kills it after grace.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

var (
	servingText = regexp.MustCompile(`serving (?:http://)?(\S+)`)
	startWait   = 60 * time.Second
)

// StartProc runs bin with args, sending its stderr and stdout to logw, and
// waits for its "serving" log line, from which it reads its addresses.
func StartProc(name, bin string, args []string, env []string, logw io.Writer) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the launcher
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	ready := make(chan map[string]string, 1)
	var (
		once     sync.Once
		lastLine string // written by the reader until scanned closes
		scanned  = make(chan struct{})
	)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintf(logw, "%s | %s\n", name, line)
			if addrs := parseServing(line); addrs != nil {
				once.Do(func() { ready <- addrs })
			} else if strings.TrimSpace(line) != "" {
				lastLine = line
			}
		}
		close(scanned)
		io.Copy(io.Discard, pr)
	}()
	select {
	case addrs := <-ready:
		p.Addrs = addrs
		return p, nil
	case <-p.exited:
		<-scanned // its last words say why
		return nil, fmt.Errorf("%s exited before serving (%v): %s", name, p.exitErr, lastLine)
	case <-time.After(startWait):
		p.Stop(time.Second)
		return nil, fmt.Errorf("%s did not start serving within %s", name, startWait)
	}
}

// parseServing reads addresses from a JSON log line {"msg":"serving",...}
// or a plain "serving http://addr" line.
func parseServing(line string) map[string]string {
	if strings.HasPrefix(line, "{") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["msg"] != "serving" {
			return nil
		}
		addrs := map[string]string{}
		for _, k := range []string{"grpc", "rest", "http", "metrics"} {
			if v, ok := rec[k].(string); ok {
				addrs[k] = strings.TrimPrefix(v, "http://")
			}
		}
		return addrs
	}
	if m := servingText.FindStringSubmatch(line); m != nil {
		return map[string]string{"http": m[1]}
	}
	return nil
}
