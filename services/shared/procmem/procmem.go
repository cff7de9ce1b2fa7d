// Package procmem measures a process tree's memory as Linux accounts it.
// Chrome runs as dozens of processes sharing pages: summing RSS counts the
// shared pages many times, and the largest process alone under-reports
// 3-10x, so render nodes and benchmarks use the tree's PSS (each shared page
// split between the processes that map it).
package procmem

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// TreePSS returns the summed PSS, in bytes, of pid and all its descendants.
func TreePSS(pid int) (int64, error) {
	children, err := childMap()
	if err != nil {
		return 0, err
	}
	var total int64
	stack := []int{pid}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if kb, err := pssKB(p); err == nil {
			total += kb * 1024
		} else if p == pid {
			return 0, err
		}
		stack = append(stack, children[p]...)
	}
	return total, nil
}

// Descendants returns the pids of pid's descendants (not pid itself).
func Descendants(pid int) ([]int, error) {
	children, err := childMap()
	if err != nil {
		return nil, err
	}
	var out []int
	stack := append([]int(nil), children[pid]...)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, p)
		stack = append(stack, children[p]...)
	}
	return out, nil
}

func childMap() (map[int][]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces: the
		// fields after the last ')' are state, then ppid.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	return children, nil
}

func pssKB(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no Pss in smaps_rollup of %d", pid)
}
