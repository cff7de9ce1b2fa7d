// End-to-end tests: the test web and all five services run as real
// processes on loopback, and the tests talk to the gateway over gRPC and
// REST as clients do.
package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fetchmesh/fetchmesh/e2e/mesh"
)

var (
	binDir   string
	repoRoot string
	shared   *mesh.Mesh // one mesh for the tests that do not disturb it
	logPath  string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := mesh.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = root
	tmp, err := os.MkdirTemp("", "fetchmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	binDir = filepath.Join(tmp, "bin")
	if err := mesh.Build(context.Background(), root, binDir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logPath = filepath.Join(tmp, "mesh.log")
	logf, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer logf.Close()
	shared, err = mesh.Start(mesh.Options{BinDir: binDir, Log: logf, DecodoEmulator: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		dumpLog()
		return 1
	}
	code := m.Run()
	shared.Stop()
	if code != 0 {
		dumpLog()
	}
	return code
}

func dumpLog() {
	b, _ := os.ReadFile(logPath)
	if len(b) > 20000 {
		b = b[len(b)-20000:]
	}
	fmt.Fprintf(os.Stderr, "--- last of the mesh's log ---\n%s\n", b)
}
