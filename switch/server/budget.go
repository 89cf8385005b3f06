package server

import (
	"sync"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/quic-go/quic-go"
)

// budget bounds the bytes of filing bodies being received and not yet
// stored, so that no terminal, and no set of terminals, can make the
// switch allocate without bound by announcing bodies it never sends (issue
// 15, finding 3). A filing reserves its bodies' bytes before reading them
// and gives them back once they are stored or the request failed. The last
// `reserve` bytes are kept for FLASH bodies.
type budget struct {
	mu      sync.Mutex
	limit   int64
	reserve int64
	used    int64
	freed   chan struct{} // closed, and replaced, whenever bytes are given back
}

func newBudget(limit, reserve int64) *budget {
	return &budget{limit: limit, reserve: reserve, freed: make(chan struct{})}
}

// take reserves a request's bytes, routine (not FLASH) and flash,
// waiting up to wait for others to give some back; it reports whether it
// did. All of them must fit in the limit, and the routine ones below the
// FLASH reserve: the reserve is only ever taken by FLASH bytes, also in a
// batch that mixes precedences.
func (b *budget) take(routine, flash int64, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		b.mu.Lock()
		if b.used+routine+flash <= b.limit && (routine == 0 || b.used+routine <= b.limit-b.reserve) {
			b.used += routine + flash
			b.mu.Unlock()
			return true
		}
		freed := b.freed
		b.mu.Unlock()
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(left)
		select {
		case <-freed:
			t.Stop()
		case <-t.C:
			return false
		}
	}
}

// give returns n bytes taken before.
func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	close(b.freed)
	b.freed = make(chan struct{})
	b.mu.Unlock()
}

// slots bounds how many of a kind of work run at once.
type slots chan struct{}

// take waits up to wait for a slot and reports whether it got one.
func (s slots) take(wait time.Duration) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// give returns a slot.
func (s slots) give() { <-s }

// takeBodies takes a request's body bytes from the switch's budget,
// waiting up to bodyBudgetWait; if they do not fit, it refuses the request
// (op, msg: Unavailable, retry after retryBudget) and returns false.
func (sess *session) takeBodies(str *quic.Stream, routine, flash int64, op, msg string) bool {
	if sess.s.bodies.take(routine, flash, bodyBudgetWait) {
		return true
	}
	e := fault.E(op, fault.Unavailable, msg)
	e.RetryAfter = retryBudget
	sess.replyError(str, e)
	str.CancelRead(streamBusy)
	return false
}
