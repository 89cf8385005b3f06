package schedule

import (
	"sort"
	"sync"

	"github.com/dienbao/dienbao/switch/telegram"
)

// ReadAhead is how many entries one sub-queue keeps in memory.
const ReadAhead = 64

// Item is one entry handed to a terminal.
type Item struct {
	Seq   uint64
	ID    telegram.ID
	Prec  telegram.Precedence // zero for receipts
	Class telegram.Classification
	// Dup is set when the item was handed out before and came back
	// unacknowledged, or may have been handed out before a crash.
	Dup bool
	// Suspect is set on the first hand-out after a crash of an entry that
	// may have been in flight then (recover.go): its last attempt may have
	// been cut by the crash rather than failed at the terminal.
	Suspect bool
	Receipt telegram.Receipt // receipts only
	// Tag is the delivery tag the session gave this hand-out (set by the
	// caller; the scheduler ignores it).
	Tag uint64
}

// Loader reads entries with sequence >= from from durable storage, in
// order. For receipts, prec and class are zero.
type Loader func(prec telegram.Precedence, class telegram.Classification, from uint64, limit int) ([]Item, error)

// Result says what Next found.
type Result uint8

// Results of Next.
const (
	Empty   Result = iota // nothing is waiting for this terminal
	Got                   // an item was handed out
	Blocked               // something is waiting, but its window is full
)

// Agency is the scheduling state of one agency's queues. It is safe for
// concurrent use by the agency's sessions.
type Agency struct {
	mu       sync.Mutex
	load     Loader
	subs     [4][4]*sub // [rank][class-1]
	receipts *sub
}

// sub is one (precedence, classification) sub-queue, or a receipt queue.
type sub struct {
	prec     telegram.Precedence
	class    telegram.Classification
	next     uint64 // cursor: every entry below it is buffered, in flight or gone
	buf      []Item // read but not handed out, by sequence
	inflight map[uint64]Item
	dirty    bool   // entries at or after next may have been added
	atEnd    bool   // the last read reached the end of the queue
	suspect  uint64 // entries below it are handed out flagged Dup (recover.go)
}

// NewAgency builds an agency's state. heads gives each sub-queue's
// persisted head ([rank][class-1]) and rhead the receipt queue's.
func NewAgency(load Loader, heads [4][4]uint64, rhead uint64) *Agency {
	a := &Agency{load: load}
	for r := range a.subs {
		for c := range a.subs[r] {
			h := max(heads[r][c], 1)
			a.subs[r][c] = &sub{prec: telegram.PrecedenceOfRank(r), class: telegram.Classification(c + 1),
				next: h, inflight: map[uint64]Item{}}
		}
	}
	h := max(rhead, 1)
	a.receipts = &sub{next: h, inflight: map[uint64]Item{}}
	return a
}

func (a *Agency) subOf(it Item) *sub {
	if it.Prec == 0 {
		return a.receipts
	}
	return a.subs[it.Prec.Rank()][it.Class-1]
}

// Notify tells the agency that it was committed to a sub-queue (it.Prec
// zero: the receipt queue; it carries Seq and ID, and Receipt for a
// receipt). Notifications come in commit order. When the sub-queue has
// been read to its end and nothing is pending, the entry is buffered at
// once, so the queue need not be read again from storage; otherwise the
// sub-queue is read from its cursor in due course.
func (a *Agency) Notify(it Item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.receipts
	if it.Prec != 0 {
		s = a.subs[it.Prec.Rank()][it.Class-1]
	}
	switch {
	case it.Seq < s.next:
		// Already read (the read that found it came after the commit).
	case s.dirty || !s.atEnd || len(s.buf) >= ReadAhead:
		s.dirty = true
	default:
		it.Prec, it.Class = s.prec, s.class
		s.buf = append(s.buf, it)
		s.next = it.Seq + 1
	}
}

// peek returns the first buffered entry of s, reading ahead if needed.
func (a *Agency) peek(s *sub) (Item, bool, error) {
	if len(s.buf) == 0 && (s.dirty || !s.atEnd) {
		s.dirty = false
		items, err := a.load(s.prec, s.class, s.next, ReadAhead)
		if err != nil {
			s.dirty = true
			return Item{}, false, err
		}
		for _, it := range items {
			it.Prec, it.Class = s.prec, s.class
			s.buf = append(s.buf, it)
		}
		if n := len(items); n > 0 {
			s.next = items[n-1].Seq + 1
		}
		s.atEnd = len(items) < ReadAhead
	}
	if len(s.buf) == 0 {
		return Item{}, false, nil
	}
	return s.buf[0], true, nil
}

// Next hands out the next telegram for a terminal cleared to clearance.
// inflight reports how many telegrams of a precedence the terminal holds
// unacknowledged; window is the most it may hold per precedence.
//
// A precedence is served only when every more urgent one has nothing
// waiting and nothing in flight to this terminal. So a backlog reaches the
// terminal strictly in precedence order (the terminal handles precedence
// streams concurrently, so in-flight lower traffic could otherwise be
// stored first), while a FLASH that arrives during ROUTINE transfers is
// handed out at once on its own stream.
func (a *Agency) Next(clearance telegram.Classification, inflight func(telegram.Precedence) int, window int) (Item, Result, error) {
	return a.NextOf(clearance, AllRanks, inflight, window)
}

// AllRanks is the mask of every precedence's rank.
const AllRanks uint8 = 1<<4 - 1

// NextOf is Next among the precedences whose ranks are set in ranks (bit
// r for rank r): the others are left alone, neither handed out nor
// holding back the rest (a link to a next switch carries only the
// precedences routed over it).
func (a *Agency) NextOf(clearance telegram.Classification, ranks uint8, inflight func(telegram.Precedence) int, window int) (Item, Result, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for r := range a.subs {
		if ranks&(1<<r) == 0 {
			continue
		}
		var best *sub
		var bestItem Item
		for c := 0; c < int(clearance) && c < 4; c++ {
			s := a.subs[r][c]
			it, ok, err := a.peek(s)
			if err != nil {
				return Item{}, Empty, err
			}
			if ok && (best == nil || it.Seq < bestItem.Seq) {
				best, bestItem = s, it
			}
		}
		n := inflight(telegram.PrecedenceOfRank(r))
		if best == nil {
			if n > 0 {
				return Item{}, Blocked, nil
			}
			continue
		}
		if n >= window {
			return Item{}, Blocked, nil
		}
		best.buf = best.buf[1:]
		if bestItem.Seq < best.suspect {
			bestItem.Suspect = !bestItem.Dup // not again once it came back in this run
			bestItem.Dup = true
		}
		best.inflight[bestItem.Seq] = bestItem
		return bestItem, Got, nil
	}
	return Item{}, Empty, nil
}

// NextReceipt hands out the next delivery report.
func (a *Agency) NextReceipt() (Item, bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	it, ok, err := a.peek(a.receipts)
	if !ok || err != nil {
		return Item{}, false, err
	}
	a.receipts.buf = a.receipts.buf[1:]
	a.receipts.inflight[it.Seq] = it
	return it, true, nil
}

// HeadsAfterAcks returns, for items acknowledged together, the head each
// one's sub-queue will have once they are, without changing anything: the
// lowest sequence still buffered, in flight (other than them) or not yet
// read. It is safe to persist concurrently with other acknowledgements:
// each value is at or below the true lowest remaining entry.
func (a *Agency) HeadsAfterAcks(its []Item) []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	acked := map[*sub]map[uint64]bool{}
	for _, it := range its {
		s := a.subOf(it)
		if acked[s] == nil {
			acked[s] = map[uint64]bool{}
		}
		acked[s][it.Seq] = true
	}
	heads := make([]uint64, len(its))
	for i, it := range its {
		s := a.subOf(it)
		h := s.next
		if len(s.buf) > 0 {
			h = min(h, s.buf[0].Seq)
		}
		for seq := range s.inflight {
			if !acked[s][seq] {
				h = min(h, seq)
			}
		}
		heads[i] = h
	}
	return heads
}

// Acked forgets an item whose acknowledgement is durable.
func (a *Agency) Acked(it Item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subOf(it)
	delete(s.inflight, it.Seq)
	for i, b := range s.buf {
		if b.Seq == it.Seq {
			s.buf = append(s.buf[:i], s.buf[i+1:]...)
			break
		}
	}
}

// Return puts items handed out but not acknowledged (their session
// dropped) back in their queues, marked as possible duplicates, ahead of
// anything later.
func (a *Agency) Return(items []Item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, it := range items {
		s := a.subOf(it)
		if _, ok := s.inflight[it.Seq]; !ok {
			continue // acknowledged meanwhile
		}
		delete(s.inflight, it.Seq)
		it.Dup, it.Suspect = true, false
		s.putBack(it)
	}
}

// putBack buffers an item again, in sequence order.
func (s *sub) putBack(it Item) {
	i := sort.Search(len(s.buf), func(i int) bool { return s.buf[i].Seq >= it.Seq })
	s.buf = append(s.buf, Item{})
	copy(s.buf[i+1:], s.buf[i:])
	s.buf[i] = it
}

// Untake puts back an item that was handed out (Next, NextOf,
// NextReceipt) but never went out: the terminal's session had ended. It
// is not flagged for it; a mark the hand-out itself set (the first after
// a crash, Suspect) is set again by the next.
func (a *Agency) Untake(it Item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subOf(it)
	if _, ok := s.inflight[it.Seq]; !ok {
		return
	}
	delete(s.inflight, it.Seq)
	if it.Suspect {
		it.Dup, it.Suspect = false, false
	}
	it.Tag = 0
	s.putBack(it)
}

// HoldsReturned reports whether items handed out earlier and returned
// unacknowledged are waiting. Such state carries the possible-duplicate
// marks, so the caller keeps it even when no session is attached.
func (a *Agency) HoldsReturned() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	all := []*sub{a.receipts}
	for r := range a.subs {
		all = append(all, a.subs[r][:]...)
	}
	for _, s := range all {
		for _, it := range s.buf {
			if it.Dup {
				return true
			}
		}
	}
	return false
}

// InFlight reports whether the entry at seq of a sub-queue is handed out
// and not yet acknowledged.
func (a *Agency) InFlight(prec telegram.Precedence, class telegram.Classification, seq uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.subs[prec.Rank()][class-1].inflight[seq]
	return ok
}

// Drop forgets an entry that was withdrawn from the queue (expired,
// parked, cancelled) if it is buffered. An entry not yet read will not be
// read: it is gone from the store.
func (a *Agency) Drop(prec telegram.Precedence, class telegram.Classification, seq uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subs[prec.Rank()][class-1]
	for i, b := range s.buf {
		if b.Seq == seq {
			s.buf = append(s.buf[:i], s.buf[i+1:]...)
			return
		}
	}
}

// Reinsert takes back an entry an operator put in a queue again at its
// old sequence (released or requeued). An entry at or past the read cursor
// is read in due course; one before it is buffered here, in order.
func (a *Agency) Reinsert(it Item) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subOf(it)
	if it.Seq >= s.next {
		s.dirty = true
		return
	}
	if _, ok := s.inflight[it.Seq]; ok {
		return
	}
	i := sort.Search(len(s.buf), func(i int) bool { return s.buf[i].Seq >= it.Seq })
	if i < len(s.buf) && s.buf[i].Seq == it.Seq {
		return
	}
	s.putBack(it)
}
