package procmem_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/fetchmesh/fetchmesh/services/shared/procmem"
)

func TestTreePSS_CountsChildren(t *testing.T) {
	self, err := procmem.TreePSS(os.Getpid())
	if err != nil || self <= 0 {
		t.Fatalf("own PSS %d, %v", self, err)
	}
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command")
	}
	defer cmd.Process.Kill()
	kids, err := procmem.Descendants(os.Getpid())
	if err != nil || len(kids) == 0 {
		t.Fatalf("descendants %v, %v", kids, err)
	}
	withChild, _ := procmem.TreePSS(os.Getpid())
	if withChild <= 0 {
		t.Errorf("tree PSS %d", withChild)
	}
}
