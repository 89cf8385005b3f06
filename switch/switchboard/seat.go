package switchboard

import (
	"errors"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// ReceiptRank is the rank of delivery reports among a seat's hand-outs
// (telegrams use their precedence's rank, 0 to 3).
const ReceiptRank = 4

// Seat is one subscribed terminal session: what it was handed and has not
// acknowledged, each under a delivery tag of its own.
type Seat struct {
	b               *Board
	ag              *agency
	who             certs.Identity
	terminal        string
	inbox, receipts bool
	wake            func()
	log             *zap.Logger
	mu              sync.Mutex
	tags            map[uint64]schedule.Item // handed out, not acknowledged
	sent            map[uint64]time.Time     // written, awaiting acknowledgement
	nextTag         uint64
	inflight        [5]int // per rank; [ReceiptRank] is delivery reports
	closed          bool
}

// Rank is the rank an item goes out at: its precedence's, or ReceiptRank.
func Rank(it schedule.Item) int {
	if it.Prec == 0 {
		return ReceiptRank
	}
	return it.Prec.Rank()
}

// Result of NextTelegram.
type Result = schedule.Result

// Results, as the scheduler's.
const (
	Empty   = schedule.Empty
	Got     = schedule.Got
	Blocked = schedule.Blocked
)

// NextTelegram hands out the next telegram for this terminal, tagged, if
// its window allows. Empty says nothing is waiting for it, or its agency
// is held by an operator (nothing will come until released).
func (s *Seat) NextTelegram() (schedule.Item, Result, error) {
	if !s.inbox || s.ag.held.Load() {
		return schedule.Item{}, Empty, nil
	}
	s.ag.gate.RLock()
	defer s.ag.gate.RUnlock()
	it, res, err := s.ag.sched.Next(s.who.Clearance, func(p telegram.Precedence) int { return s.inflightOf(p.Rank()) }, s.b.cfg.Window)
	if res == Got {
		it = s.tag(it)
	}
	return it, res, err
}

// NextReceipt hands out the next delivery report, tagged, if the window
// allows. ok is false when there is none (or the window is full: full
// says which).
func (s *Seat) NextReceipt() (it schedule.Item, ok, full bool, err error) {
	if !s.receipts {
		return it, false, false, nil
	}
	if s.inflightOf(ReceiptRank) >= s.b.cfg.Window {
		return it, false, true, nil
	}
	s.ag.gate.RLock()
	defer s.ag.gate.RUnlock()
	it, ok, err = s.ag.sched.NextReceipt()
	if ok {
		it = s.tag(it)
	}
	return it, ok, false, err
}

func (s *Seat) tag(it schedule.Item) schedule.Item {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextTag++
	it.Tag = s.nextTag
	s.inflight[Rank(it)]++
	s.tags[it.Tag] = it
	return it
}

func (s *Seat) inflightOf(rank int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight[rank]
}

// InFlight is how many hand-outs the seat holds unacknowledged.
func (s *Seat) InFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tags)
}

// Written records that the hand-out tagged tag is on the wire: from now
// its acknowledgement is awaited (Late).
func (s *Seat) Written(tag uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tags[tag]; ok {
		s.sent[tag] = time.Now()
	}
}

// Late counts the deliveries written more than the acknowledgement
// timeout before now and still unacknowledged.
func (s *Seat) Late(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	late := 0
	for _, at := range s.sent {
		if now.Sub(at) > s.b.cfg.AckTimeout {
			late++
		}
	}
	return late
}

// ErrUnknownTag is an acknowledgement for a hand-out this seat never made
// (or already settled), or made on another stream.
var ErrUnknownTag = errors.New("acknowledgement for a delivery never made")

// Ack takes a terminal's acknowledgement, read on the stream of rank, of
// the hand-out tagged tag: it is made durable in the background (the
// store's group commit), then the window slot is freed. An
// acknowledgement that is not made durable leaves the hand-out in flight:
// it goes back to the queue with the seat. A tag handed out on another
// stream (a telegram's acknowledged on the receipt stream) is unknown.
func (s *Seat) Ack(tag uint64, rank int) error {
	s.mu.Lock()
	it, ok := s.tags[tag]
	s.mu.Unlock()
	if !ok || Rank(it) != rank {
		return ErrUnknownTag
	}
	go s.commitAck(it)
	return nil
}

func (s *Seat) commitAck(it schedule.Item) {
	head := s.ag.sched.HeadAfterAck(it)
	var err error
	if it.Prec == 0 {
		_, err = s.b.store.AckReceipt(s.who.Agency, it.Seq, s.terminal, head)
	} else {
		q := store.SubQueue{Agency: s.who.Agency, Prec: it.Prec, Class: it.Class}
		var done bool
		done, err = s.b.store.Ack(store.Ack{Queue: q, Seq: it.Seq, ID: it.ID, Terminal: s.terminal, Head: head})
		if err == nil && done {
			s.log.Info("telegram delivered", zap.Stringer("id", it.ID), zap.Stringer("precedence", it.Prec))
			if s.b.cfg.Delivered != nil {
				s.b.cfg.Delivered(it.Prec, time.Since(it.ID.Time()))
			}
		}
	}
	if err != nil {
		s.log.Error("acknowledgement not recorded", zap.Error(err))
		return
	}
	s.release(it)
}

// Return gives back a hand-out that could not be written (its stream
// could not be opened): it goes out again, flagged.
func (s *Seat) Return(it schedule.Item) {
	s.untag(it)
	s.ag.sched.Return([]schedule.Item{it})
}

// untag forgets a hand-out's tag and frees its window slot.
func (s *Seat) untag(it schedule.Item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tags[it.Tag]; ok {
		delete(s.tags, it.Tag)
		delete(s.sent, it.Tag)
		s.inflight[Rank(it)]--
	}
}

// release frees the window slot of a hand-out that is settled
// (acknowledged or withdrawn) and wakes the seat.
func (s *Seat) release(it schedule.Item) {
	s.ag.sched.Acked(it)
	s.untag(it)
	s.wake()
}

// Close returns everything handed out but unacknowledged to the queues
// (flagged possible duplicate for the next terminal) and leaves the
// agency. The seat hands out nothing more.
func (s *Seat) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	back := make([]schedule.Item, 0, len(s.tags))
	for _, it := range s.tags {
		back = append(back, it)
	}
	s.tags = map[uint64]schedule.Item{}
	s.sent = map[uint64]time.Time{}
	s.inflight = [5]int{}
	s.mu.Unlock()
	s.ag.sched.Return(back)
	s.b.detach(s)
}
