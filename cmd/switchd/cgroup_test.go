package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// memCgroup is a cgroup-v1 memory controller group with a hard limit: the
// kernel charges a process's anonymous memory and its page cache (the
// mapped Badger files) to it, reclaims page cache to stay under the limit,
// and OOM-kills the process if its own memory does not fit.
type memCgroup struct {
	dir string
}

// newMemCgroup creates a group limited to limit bytes, or returns nil if
// this machine does not let the test create one.
func newMemCgroup(t *testing.T, limit int64) *memCgroup {
	t.Helper()
	root := "/sys/fs/cgroup/memory"
	if _, err := os.Stat(filepath.Join(root, "memory.limit_in_bytes")); err != nil {
		return nil
	}
	dir := filepath.Join(root, fmt.Sprintf("dienbao-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		return nil
	}
	return &memCgroup{dir: dir}
}

// command runs bin with args inside the group from its first instruction.
func (g *memCgroup) command(bin string, args ...string) *exec.Cmd {
	script := `echo $$ > "` + filepath.Join(g.dir, "cgroup.procs") + `" && exec "$0" "$@"`
	return exec.Command("sh", append([]string{"-c", script, bin}, args...)...)
}

// peak is the most memory ever charged to the group, page cache included.
func (g *memCgroup) peak() int64 {
	b, _ := os.ReadFile(filepath.Join(g.dir, "memory.max_usage_in_bytes"))
	v, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return v
}

// oomKills is how many processes the kernel killed for the limit.
func (g *memCgroup) oomKills() int {
	b, _ := os.ReadFile(filepath.Join(g.dir, "memory.oom_control"))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}
