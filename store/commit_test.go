package store

import (
	"slices"
	"sync"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// A FLASH that arrives while a batch of routine work is being applied
// takes the place of the rest of that batch: it is committed with what
// was applied before it, and the rest follows in the next commit.
func TestFlashPreemptsTheBatchBeingApplied(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var batches []int
	s, err := Open(Options{Dir: dir, Keyring: testRing(t, dir), OnBatch: func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var order []string // appended by the commit loop only
	note := func(name string) func(*commitCtx) error {
		return func(*commitCtx) error { order = append(order, name); return nil }
	}
	// Hold the loop in a first commit while two routine ops queue up
	// behind it, so that they are taken as one batch.
	hold, held := make(chan struct{}), make(chan struct{})
	blocker := &op{prec: telegram.Routine, apply: func(*commitCtx) error {
		close(held)
		<-hold
		order = append(order, "blocker")
		return nil
	}}
	s.submitAsync(blocker)
	<-held
	flash := &op{prec: telegram.Flash, apply: note("flash")}
	first := &op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		order = append(order, "first")
		s.submitAsync(flash) // arrives while the batch is being applied
		return nil
	}}
	second := &op{prec: telegram.Routine, apply: note("second")}
	s.submitAsync(first)
	s.submitAsync(second)
	close(hold)
	for _, o := range []*op{blocker, first, flash, second} {
		<-o.done
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if want := []string{"blocker", "first", "flash", "second"}; !slices.Equal(order, want) {
		t.Errorf("applied in order %v, want %v", order, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 2, 1}; !slices.Equal(batches, want) {
		t.Errorf("commits of %v ops, want %v: the FLASH must not wait for the second routine op", batches, want)
	}
}

// Acknowledgements and delivery attempts (the lazy lane) go before new
// filings, and a commit takes at most MaxFilings new ones.
func TestAcknowledgementsGoBeforeFilings(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var batches []int
	s, err := Open(Options{Dir: dir, Keyring: testRing(t, dir), MaxFilings: 2, OnBatch: func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var order []string
	note := func(name string) func(*commitCtx) error {
		return func(*commitCtx) error { order = append(order, name); return nil }
	}
	hold, held := make(chan struct{}), make(chan struct{})
	blocker := &op{prec: telegram.Routine, apply: func(*commitCtx) error {
		close(held)
		<-hold
		order = append(order, "blocker")
		return nil
	}}
	s.submitAsync(blocker)
	<-held
	ops := []*op{
		{prec: telegram.Routine, apply: note("file1")},
		{prec: telegram.Routine, apply: note("file2")},
		{prec: telegram.Routine, apply: note("file3")},
		{prec: telegram.Routine, lazy: true, apply: note("ack")},
	}
	for _, o := range ops {
		s.submitAsync(o)
	}
	close(hold)
	for _, o := range append([]*op{blocker}, ops...) {
		<-o.done
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if want := []string{"blocker", "ack", "file1", "file2", "file3"}; !slices.Equal(order, want) {
		t.Errorf("applied in order %v, want %v", order, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 3, 1}; !slices.Equal(batches, want) {
		t.Errorf("commits of %v ops, want %v (at most two filings each)", batches, want)
	}
}

// A lazy op (a delivery attempt's count) rides the next commit, ahead of
// the acknowledgement queued after it; alone, it is still committed.
func TestLazyOpRidesTheNextCommit(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var batches []int
	s, err := Open(Options{Dir: dir, Keyring: testRing(t, dir), OnBatch: func(n int) {
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var order []string
	note := func(name string) func(*commitCtx) error {
		return func(*commitCtx) error { order = append(order, name); return nil }
	}
	alone := &op{prec: telegram.Routine, lazy: true, apply: note("alone")}
	s.submitAsync(alone)
	<-alone.done
	hold, held := make(chan struct{}), make(chan struct{})
	blocker := &op{prec: telegram.Routine, apply: func(*commitCtx) error {
		close(held)
		<-hold
		order = append(order, "blocker")
		return nil
	}}
	s.submitAsync(blocker)
	<-held
	attempt := &op{prec: telegram.Routine, lazy: true, apply: note("attempt")}
	ack := &op{prec: telegram.Routine, lazy: true, apply: note("ack")}
	s.submitAsync(attempt)
	s.submitAsync(ack)
	close(hold)
	for _, o := range []*op{alone, blocker, attempt, ack} {
		<-o.done
		if o.err != nil {
			t.Fatal(o.err)
		}
	}
	if want := []string{"alone", "blocker", "attempt", "ack"}; !slices.Equal(order, want) {
		t.Errorf("applied in order %v, want %v", order, want)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []int{1, 1, 2}; !slices.Equal(batches, want) {
		t.Errorf("commits of %v ops, want %v", batches, want)
	}
}
