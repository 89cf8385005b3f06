package server

import "runtime/debug"

// The Go runtime's soft memory limit keeps the heap near what is live
// (queues live on disk, so the switch needs little). But each connected
// session holds memory of its own (QUIC connection state, buffers,
// goroutine stacks): with 11,000 sessions the switch's Go memory came to
// some 800 MB. Against a fixed limit of 192 MiB the garbage collector then
// ran without pause: 1.8 of the machine's 2 cores with nothing but 10
// telegrams a second to do. So the limit grows with the sessions:
// Config.MemoryLimit plus SessionMemory for each, set again whenever the
// count crosses a step of sessionStep. Measured with 11,000 sessions: 0.48
// cores at that load, and 933 MiB at peak (970 MiB under a 16 x 16
// flood), under the 1 GiB the switch is allowed for them.

// SessionMemory is what the memory limit allows for each session.
const SessionMemory = 96 << 10

const sessionStep = 64

// tuneMemory sets the memory limit for n sessions (s.mu held), if the
// server manages it.
func (s *Server) tuneMemory(n int) {
	if s.cfg.MemoryLimit <= 0 {
		return
	}
	step := (n + sessionStep - 1) / sessionStep
	if step == s.memStep {
		return
	}
	s.memStep = step
	debug.SetMemoryLimit(s.cfg.MemoryLimit + int64(step*sessionStep)*SessionMemory)
}
