package switchboard

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// ranks masks what the seat takes: bit r for the precedence of rank r,
	// bit ReceiptRank for delivery reports (all, unless SetRanks).
	ranks atomic.Uint32
	// window is the most hand-outs in flight per rank (Config.Window,
	// unless SetWindow).
	window atomic.Int32
	// stopped: the terminal ended its subscription (Stop); what it holds
	// is still acknowledged.
	stopped atomic.Bool
}

// Stop ends the subscription at the terminal's request: nothing more is
// handed out to the seat, and what it holds in flight may still be
// acknowledged. The session closes once InFlight is zero, so a terminal
// that stops as a telegram reaches it stores and acknowledges it instead
// of cutting it off (which would send it again, flagged as a possible
// duplicate).
func (s *Seat) Stop() { s.stopped.Store(true) }

// Stopped reports whether the terminal ended its subscription.
func (s *Seat) Stopped() bool { return s.stopped.Load() }

// SetWindow sets the most hand-outs the seat holds in flight per rank (a
// link to the next switch batches more than a terminal's window).
func (s *Seat) SetWindow(n int) { s.window.Store(int32(n)) }

// AllRanks is the mask of every precedence and delivery reports.
const AllRanks = 1<<(ReceiptRank+1) - 1

// SetRanks limits what the seat takes from now on to the ranks set in
// mask (bit r: the precedence of rank r; bit ReceiptRank: delivery
// reports), for a link that carries only the precedences routed over it.
// What is in flight stays in flight.
func (s *Seat) SetRanks(mask uint32) { s.ranks.Store(mask & AllRanks) }

// Agency is the agency the seat receives for.
func (s *Seat) Agency() telegram.Address { return s.who.Agency }

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
	return s.NextIn(AllRanks)
}

// NextIn is NextTelegram among the precedences whose ranks are set in mask
// as well as in the seat's own (SetRanks): a link whose channel for a
// precedence is full takes no more of it for now, but goes on with the
// others.
func (s *Seat) NextIn(mask uint32) (schedule.Item, Result, error) {
	ranks := uint8(s.ranks.Load() & mask & uint32(schedule.AllRanks))
	if !s.inbox || s.ag.held.Load() || ranks == 0 || s.stopped.Load() {
		return schedule.Item{}, Empty, nil
	}
	s.ag.gate.RLock()
	defer s.ag.gate.RUnlock()
	it, res, err := s.ag.sched.NextOf(s.who.Clearance, ranks, func(p telegram.Precedence) int { return s.inflightOf(p.Rank()) }, int(s.window.Load()))
	if res == Got {
		var ok bool
		if it, ok = s.tag(it); !ok {
			return schedule.Item{}, Blocked, nil
		}
	}
	return it, res, err
}

// NextReceipt hands out the next delivery report, tagged, if the window
// allows. ok is false when there is none (or the window is full: full
// says which).
func (s *Seat) NextReceipt() (it schedule.Item, ok, full bool, err error) {
	if !s.receipts || s.ranks.Load()&(1<<ReceiptRank) == 0 || s.stopped.Load() {
		return it, false, false, nil
	}
	if s.inflightOf(ReceiptRank) >= int(s.window.Load()) {
		return it, false, true, nil
	}
	s.ag.gate.RLock()
	defer s.ag.gate.RUnlock()
	it, ok, err = s.ag.sched.NextReceipt()
	if ok {
		if it, ok = s.tag(it); !ok {
			return schedule.Item{}, false, true, nil
		}
	}
	return it, ok, false, err
}

// tag records a hand-out under a new delivery tag. A seat closed since the
// scheduler handed the item out (its session ended meanwhile: Close has
// already given back what it held) takes nothing: the item goes back as
// it was, not flagged, since it never went out, and ok is false. Without
// that it would stay in flight to no one, and no other terminal of the
// agency would be handed it until the agency's state was dropped.
func (s *Seat) tag(it schedule.Item) (_ schedule.Item, ok bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		// (Not under s.mu: the scheduler calls back into the seat, under
		// its own lock, for the window.)
		s.ag.sched.Untake(it)
		return it, false
	}
	defer s.mu.Unlock()
	s.nextTag++
	it.Tag = s.nextTag
	s.inflight[Rank(it)]++
	s.tags[it.Tag] = it
	return it, true
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

// AckAll takes the acknowledgements a terminal sent in one frame, read on
// the stream of rank, in the order it stored them, of the hand-outs
// tagged tags: they are made durable in the background, in one commit of
// the store's group commit, then their window slots are freed. An
// acknowledgement that is not made durable leaves its hand-out in flight:
// it goes back to the queue with the seat. If any tag is unknown (never
// handed out, settled, or handed out on another stream: a telegram's
// acknowledged on the receipt stream), none is taken.
func (s *Seat) AckAll(tags []uint64, rank int) error {
	its, err := s.tagged(tags, rank)
	if err != nil {
		return err
	}
	go s.commitAcks(its, settled{})
	return nil
}

// Reject records, in the background, that the terminal refused the
// telegram handed out under tag (it failed end-to-end verification): it
// is settled not delivered, reason why, and the sender told.
func (s *Seat) Reject(tag uint64, rank int, why, detail string) error {
	its, err := s.tagged([]uint64{tag}, rank)
	if err != nil {
		return err
	}
	if its[0].Prec == 0 {
		return fmt.Errorf("%w (tag %d is a delivery report, which is not sealed)", ErrUnknownTag, tag)
	}
	go s.commitAcks(its, settled{reject: why, detail: detail})
	return nil
}

// AckRelayed records, as AckAll does (in the background), that the next
// switch via took custody of the hand-outs tagged tags, sent on channel
// rank of its link with the sequence numbers seqs.
func (s *Seat) AckRelayed(tags []uint64, rank int, via string, seqs []uint64) error {
	its, err := s.tagged(tags, rank)
	if err != nil {
		return err
	}
	go s.commitAcks(its, settled{via: via, seqs: seqs})
	return nil
}

// tagged looks up the hand-outs tagged tags, all of rank.
func (s *Seat) tagged(tags []uint64, rank int) ([]schedule.Item, error) {
	its := make([]schedule.Item, len(tags))
	s.mu.Lock()
	for i, tag := range tags {
		it, ok := s.tags[tag]
		if !ok || Rank(it) != rank {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w (tag %d)", ErrUnknownTag, tag)
		}
		its[i] = it
	}
	s.mu.Unlock()
	return its, nil
}

// settled says how hand-outs were settled: acknowledged by the terminal
// (zero), taken over by the next switch via (on its link's sequence
// numbers seqs), or refused by the terminal (reject: why; detail: what
// failed).
type settled struct {
	via            string
	seqs           []uint64
	reject, detail string
}

func (s *Seat) commitAcks(its []schedule.Item, how settled) {
	via, seqs := how.via, how.seqs
	heads := s.ag.sched.HeadsAfterAcks(its)
	var res []store.Acked
	if its[0].Prec == 0 {
		as := make([]store.ReceiptAck, len(its))
		for i, it := range its {
			as[i] = store.ReceiptAck{Seq: it.Seq, Head: heads[i]}
			if via != "" {
				as[i].Via, as[i].LinkSeq = via, seqs[i]
			}
		}
		res = s.b.store.AckReceipts(s.who.Agency, as, s.terminal)
	} else {
		as := make([]store.Ack, len(its))
		for i, it := range its {
			as[i] = store.Ack{Queue: store.SubQueue{Agency: s.who.Agency, Prec: it.Prec, Class: it.Class},
				Seq: it.Seq, ID: it.ID, Terminal: s.terminal, Head: heads[i], Reject: how.reject, Detail: how.detail}
			if via != "" {
				as[i].Via, as[i].LinkSeq = via, seqs[i]
			}
		}
		res = s.b.store.AckAll(as)
	}
	for i, it := range its {
		if res[i].Err != nil {
			s.log.Error("acknowledgement not recorded", zap.Error(res[i].Err))
			continue
		}
		switch {
		case !res[i].Done || it.Prec == 0 || via != "":
		case how.reject != "":
			s.log.Warn("telegram refused by the addressee's terminal: end-to-end verification failed",
				zap.Stringer("id", it.ID), zap.String("reason", how.reject), zap.String("detail", how.detail))
		default:
			s.log.Info("telegram delivered", zap.Stringer("id", it.ID), zap.Stringer("precedence", it.Prec))
			if s.b.cfg.Delivered != nil {
				s.b.cfg.Delivered(it.Prec, time.Since(it.ID.Time()))
			}
		}
		s.release(it)
	}
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
