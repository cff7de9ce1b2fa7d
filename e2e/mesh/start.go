package mesh

import (
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// Options choose the mesh's addresses and extras. Empty addresses mean
// "127.0.0.1:0": a free port, read back from the process's log.
type Options struct {
	BinDir string
	Log    io.Writer // every process's output, line-prefixed with its name

	TestWeb, GatewayGRPC, GatewayHTTP, StaticFetcher, Coordinator, RenderNode, DecodoProxy string

	// RenderNodes is how many real render nodes to start (default 1),
	// named node-1, node-2, ...
	RenderNodes int
	// SimNodes, when set, starts this many SIMULATED nodes (render-node-sim,
	// named sim-1, ...) instead of real ones; each render takes SimRenderTime.
	SimNodes      int
	SimRenderTime time.Duration

	// DecodoEmulator starts the local Decodo emulator and gives the
	// decodo-proxy its address and credentials; without it the proxy has no
	// credentials and answers "Decodo not configured".
	DecodoEmulator bool

	// Jaeger, when set, is a running Jaeger every service exports its
	// traces to.
	Jaeger *Jaeger

	// Args and Env add flags and environment variables per process name;
	// EnvAll adds environment variables to every service.
	Args   map[string][]string
	Env    map[string][]string
	EnvAll []string
}

// Mesh is the running mesh.
type Mesh struct {
	opts  Options
	procs []*Proc // in start order
	// TestWeb is the test web's host:port; TestWebURL its base URL.
	TestWeb, TestWebURL string
	// GatewayGRPC is the gateway's gRPC host:port; RESTURL its REST base URL.
	GatewayGRPC, RESTURL string
	// DecodoEmulatorURL is the emulator's base URL when it runs.
	DecodoEmulatorURL string
}

// EmulatorUser and EmulatorPassword are the credentials the mesh gives the
// Decodo emulator and the decodo-proxy.
const (
	EmulatorUser     = "fetchmesh"
	EmulatorPassword = "emulator-secret-7f3a"
)

func or0(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

// Start starts the test web and the five services, in dependency order.
// On error, whatever was started is stopped.
func Start(o Options) (_ *Mesh, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	m := &Mesh{opts: o}
	defer func() {
		if err != nil {
			m.Stop()
		}
	}()
	start := func(name string, args ...string) (*Proc, error) {
		p, err := m.startProc(name, name, args)
		if err != nil {
			return nil, err
		}
		m.procs = append(m.procs, p)
		return p, nil
	}
	web, err := start("testweb", "-listen", or0(o.TestWeb))
	if err != nil {
		return nil, err
	}
	m.TestWeb = web.Addrs["http"]
	m.TestWebURL = "http://" + m.TestWeb
	static, err := start("static-fetcher", "-listen", or0(o.StaticFetcher), "-ssrf-allow", m.TestWeb)
	if err != nil {
		return nil, err
	}
	coord, err := start("render-coordinator", "-listen", or0(o.Coordinator))
	if err != nil {
		return nil, err
	}
	for i := 1; i <= o.SimNodes; i++ {
		id := fmt.Sprintf("sim-%d", i)
		p, err := m.startProc(id, "render-node-sim", []string{"-listen", "127.0.0.1:0", "-coordinator", coord.Addrs["grpc"], "-node-id", id,
			"-render-time", o.SimRenderTime.String()})
		if err != nil {
			return nil, err
		}
		m.procs = append(m.procs, p)
	}
	for i := 1; o.SimNodes == 0 && i <= max(o.RenderNodes, 1); i++ {
		listen := "127.0.0.1:0"
		if i == 1 {
			listen = or0(o.RenderNode)
		}
		id := fmt.Sprintf("node-%d", i)
		p, err := m.startProc(id, "render-node", []string{"-listen", listen, "-coordinator", coord.Addrs["grpc"], "-ssrf-allow", m.TestWeb, "-node-id", id})
		if err != nil {
			return nil, err
		}
		m.procs = append(m.procs, p)
	}
	decodoArgs := []string{"-listen", or0(o.DecodoProxy)}
	if o.DecodoEmulator {
		emu, err := start("decodo-emulator", "-listen", "127.0.0.1:0", "-user", EmulatorUser, "-pass", EmulatorPassword, "-allow-origin", m.TestWebURL)
		if err != nil {
			return nil, err
		}
		m.DecodoEmulatorURL = "http://" + emu.Addrs["http"]
		// Fast retries for tests and demos; the credentials go in the
		// environment, never on the command line.
		decodoArgs = append(decodoArgs, "-api-url", m.DecodoEmulatorURL, "-backoff", "100ms")
		if m.opts.Env == nil {
			m.opts.Env = map[string][]string{}
		}
		m.opts.Env["decodo-proxy"] = append(m.opts.Env["decodo-proxy"], "FETCHMESH_DECODO_USERNAME="+EmulatorUser, "FETCHMESH_DECODO_PASSWORD="+EmulatorPassword)
	}
	decodo, err := start("decodo-proxy", decodoArgs...)
	if err != nil {
		return nil, err
	}
	gw, err := start("gateway", "-listen", or0(o.GatewayGRPC), "-http-listen", or0(o.GatewayHTTP),
		"-static-fetcher", static.Addrs["grpc"], "-render-coordinator", coord.Addrs["grpc"], "-decodo-proxy", decodo.Addrs["grpc"])
	if err != nil {
		return nil, err
	}
	m.GatewayGRPC = gw.Addrs["grpc"]
	m.RESTURL = "http://" + gw.Addrs["rest"]
	if m.GatewayGRPC == "" || gw.Addrs["rest"] == "" {
		return nil, fmt.Errorf("gateway did not report its addresses: %v", gw.Addrs)
	}
	return m, nil
}

// startProc runs the command bin as the process called name.
func (m *Mesh) startProc(name, bin string, args []string) (*Proc, error) {
	args = append(args, m.opts.Args[bin]...)
	env := append(append([]string(nil), m.opts.Env[bin]...), m.opts.EnvAll...)
	if m.opts.Jaeger != nil {
		env = append(env, m.opts.Jaeger.OTELEnv()...)
	}
	p, err := StartProc(name, filepath.Join(m.opts.BinDir, bin), args, env, m.opts.Log)
	if err != nil {
		return nil, err
	}
	p.bin, p.args = bin, args
	return p, nil
}

// Restart starts the named process again (after it stopped or was killed)
// with the same flags, listening on the same address.
func (m *Mesh) Restart(name string) (*Proc, error) {
	for i, p := range m.procs {
		if p.Name != name {
			continue
		}
		p.Stop(5 * time.Second)
		args := append([]string(nil), p.args...)
		for j := 0; j+1 < len(args); j++ {
			if args[j] == "-listen" {
				args[j+1] = p.Addrs["grpc"]
			}
		}
		np, err := m.startProc(name, p.bin, args)
		if err != nil {
			return nil, err
		}
		m.procs[i] = np
		return np, nil
	}
	return nil, fmt.Errorf("no process %q", name)
}

// Proc returns the named process, or nil.
func (m *Mesh) Proc(name string) *Proc {
	for _, p := range m.procs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Procs returns every process in start order.
func (m *Mesh) Procs() []*Proc { return m.procs }

// Stop stops every process, the last started first.
func (m *Mesh) Stop() {
	for i := len(m.procs) - 1; i >= 0; i-- {
		m.procs[i].Stop(15 * time.Second)
	}
}
