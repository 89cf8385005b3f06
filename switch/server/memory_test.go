package server

import (
	"runtime/debug"
	"testing"
)

// The memory limit follows the sessions, a step of 64 at a time, and is
// left alone when the server does not manage it.
func TestMemoryLimitFollowsSessions(t *testing.T) {
	saved := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(saved)
	const base = 100 << 20
	s := &Server{cfg: Config{MemoryLimit: base}}
	for _, c := range []struct {
		sessions int
		want     int64
	}{{1, base + 64*SessionMemory}, {64, base + 64*SessionMemory}, {65, base + 128*SessionMemory}, {11000, base + 11008*SessionMemory}, {0, base}} {
		s.tuneMemory(c.sessions)
		if got := debug.SetMemoryLimit(-1); got != c.want {
			t.Errorf("%d sessions: limit %d, want %d", c.sessions, got, c.want)
		}
	}
	debug.SetMemoryLimit(12345 << 10)
	(&Server{}).tuneMemory(5000)
	if got := debug.SetMemoryLimit(-1); got != 12345<<10 {
		t.Errorf("an unmanaged limit was changed to %d", got)
	}
}
