package store

import (
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// loopRig drives the commit loop with ops that only note their names.
type loopRig struct {
	s       *Store
	order   []string // appended by the commit loop only
	mu      sync.Mutex
	batches []int // ops per commit
}

func newLoopRig(t *testing.T, maxFilings int) *loopRig {
	t.Helper()
	r := &loopRig{}
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Keyring: testRing(t, dir), MaxFilings: maxFilings, OnBatch: func(n int) {
		r.mu.Lock()
		r.batches = append(r.batches, n)
		r.mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	r.s = s
	return r
}

func (r *loopRig) note(name string) func(*commitCtx) error {
	return func(*commitCtx) error { r.order = append(r.order, name); return nil }
}

// block holds the loop in a commit (of an op named "blocker") until
// release is called, so that what is submitted meanwhile is taken
// together.
func (r *loopRig) block() (blocker *op, release func()) {
	hold, held := make(chan struct{}), make(chan struct{})
	blocker = &op{prec: telegram.Routine, apply: func(*commitCtx) error {
		close(held)
		<-hold
		r.order = append(r.order, "blocker")
		return nil
	}}
	r.s.submitAsync(blocker)
	<-held
	return blocker, func() { close(hold) }
}

// check waits for ops, then compares the order they were applied in and
// the sizes of the commits.
func (r *loopRig) check(t *testing.T, ops []*op, order []string, batches []int, why string) {
	t.Helper()
	for _, o := range ops {
		<-o.done
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if !slices.Equal(r.order, order) {
		t.Errorf("applied in order %v, want %v", r.order, order)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Equal(r.batches, batches) {
		t.Errorf("commits of %v ops, want %v%s", r.batches, batches, why)
	}
}

// A FLASH that arrives while a batch of routine work is being applied
// takes the place of the rest of that batch: it is committed with what
// was applied before it, and the rest follows in the next commit.
func TestFlashPreemptsTheBatchBeingApplied(t *testing.T) {
	r := newLoopRig(t, 0)
	// Two routine ops queue up behind the blocker, to be taken as one batch.
	blocker, release := r.block()
	flash := &op{prec: telegram.Flash, apply: r.note("flash")}
	first := &op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		r.order = append(r.order, "first")
		r.s.submitAsync(flash) // arrives while the batch is being applied
		return nil
	}}
	second := &op{prec: telegram.Routine, apply: r.note("second")}
	r.s.submitAsync(first)
	r.s.submitAsync(second)
	release()
	r.check(t, []*op{blocker, first, flash, second}, []string{"blocker", "first", "flash", "second"}, []int{1, 2, 1},
		": the FLASH must not wait for the second routine op")
}

// Acknowledgements and delivery attempts (the lazy lane) go before new
// filings, and a commit takes at most MaxFilings new ones.
func TestAcknowledgementsGoBeforeFilings(t *testing.T) {
	r := newLoopRig(t, 2)
	blocker, release := r.block()
	ops := []*op{
		{prec: telegram.Routine, apply: r.note("file1")},
		{prec: telegram.Routine, apply: r.note("file2")},
		{prec: telegram.Routine, apply: r.note("file3")},
		{prec: telegram.Routine, lazy: true, apply: r.note("ack")},
	}
	for _, o := range ops {
		r.s.submitAsync(o)
	}
	release()
	r.check(t, append([]*op{blocker}, ops...), []string{"blocker", "ack", "file1", "file2", "file3"}, []int{1, 3, 1},
		" (at most two filings each)")
}

// A lazy op (a delivery attempt's count) rides the next commit, ahead of
// the acknowledgement queued after it; alone, it is still committed.
func TestLazyOpRidesTheNextCommit(t *testing.T) {
	r := newLoopRig(t, 0)
	alone := &op{prec: telegram.Routine, lazy: true, apply: r.note("alone")}
	r.s.submitAsync(alone)
	<-alone.done
	blocker, release := r.block()
	attempt := &op{prec: telegram.Routine, lazy: true, apply: r.note("attempt")}
	ack := &op{prec: telegram.Routine, lazy: true, apply: r.note("ack")}
	r.s.submitAsync(attempt)
	r.s.submitAsync(ack)
	release()
	r.check(t, []*op{alone, blocker, attempt, ack}, []string{"alone", "blocker", "attempt", "ack"}, []int{1, 1, 2}, "")
}

// A FLASH is never queued behind routine work at the door of the commit
// loop: with the loop busy and the routine lane full, a routine submitter
// waits for room, and a FLASH submitted meanwhile still gets into its own
// lane at once (submitters share the store's lock; with an exclusive
// lock this test would hang).
func TestFlashNotBehindAFullLane(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	noop := func(*commitCtx) error { return nil }
	gate, paused := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.Observe(nil, func(int) { once.Do(func() { close(paused); <-gate }) })
	go s.submit(&op{apply: noop}) // the loop stops in the hook after this commit
	<-paused
	for range cap(s.ops) {
		s.submitAsync(&op{apply: noop})
	}
	go s.submitAsync(&op{apply: noop}) // waits for room, holding the lock shared
	for s.mu.TryLock() {               // until it holds it
		s.mu.Unlock()
		runtime.Gosched()
	}
	flash := &op{prec: telegram.Flash, apply: noop}
	s.submitAsync(flash)
	if len(s.urgent) != 1 {
		t.Fatalf("%d in the FLASH lane, want 1", len(s.urgent))
	}
	close(gate)
	<-flash.done
	if flash.err != nil {
		t.Fatal(flash.err)
	}
}
