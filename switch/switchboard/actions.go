package switchboard

import (
	"cmp"
	"slices"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// Custody actions from outside a delivery: operators' and the timers'.
// Those that leave a delivery in flight alone (hold, cancel, expiry) pause
// hand-outs to the telegram's agencies, take the snapshot of its
// hand-outs, and keep the pause until the store has committed, so nothing
// is handed out between the snapshot and the commit.

// withFrozen runs fn with hand-outs to telegram id's attached agencies
// paused, giving it what of the telegram is in flight.
func (b *Board) withFrozen(id telegram.ID, fn func(store.InFlight) error) error {
	h, err := b.store.Header(id)
	if fault.Is(fault.NotExist, err) {
		return fn(nil) // the store says so, in the caller's words
	} else if err != nil {
		return err
	}
	return b.freeze(h.Addressees(), func(it schedule.Item) bool { return it.ID == id }, fn)
}

// freeze runs fn with hand-outs to the attached agencies among addrs
// paused, giving it their deliveries in flight that match.
func (b *Board) freeze(addrs []telegram.Address, match func(schedule.Item) bool, fn func(store.InFlight) error) error {
	var ags []*agency
	b.mu.Lock()
	for _, a := range addrs {
		if ag := b.agencies[a]; ag != nil && !slices.Contains(ags, ag) {
			ags = append(ags, ag)
		}
	}
	b.mu.Unlock()
	slices.SortFunc(ags, func(x, y *agency) int { return cmp.Compare(x.addr, y.addr) }) // one order: no deadlock between two freezes
	for _, ag := range ags {
		ag.gate.Lock()
		defer ag.gate.Unlock()
	}
	busy := store.InFlight{}
	for _, ag := range ags {
		b.mu.Lock()
		seats := make([]*Seat, 0, len(ag.seats))
		for s := range ag.seats {
			seats = append(seats, s)
		}
		b.mu.Unlock()
		for _, s := range seats {
			s.mu.Lock()
			for _, it := range s.tags {
				if it.Prec != 0 && match(it) {
					busy[store.Slot{Agency: ag.addr, Seq: it.Seq}] = true
				}
			}
			s.mu.Unlock()
		}
	}
	return fn(busy)
}

// MoveQueue re-addresses the copies waiting for old to new (a merger),
// those classified up to clearance, in commits of a few hundred, with
// hand-outs to old paused during each: see store.MoveQueue. It returns
// how many moved; deliveries in flight, parked and quarantined copies
// stay.
func (b *Board) MoveQueue(old, new telegram.Address, actor string, clearance telegram.Classification) (int, error) {
	const batch = 256
	total := 0
	for {
		var res store.MoveResult
		err := b.freeze([]telegram.Address{old}, func(schedule.Item) bool { return true }, func(busy store.InFlight) error {
			var err error
			if res, err = b.store.MoveQueue(old, new, actor, clearance, busy, batch); err == nil {
				for _, w := range res.Removed {
					b.drop(w)
				}
			}
			return err
		})
		total += res.Moved
		if err != nil || res.Moved < batch {
			b.log.Info("queue moved", zap.Stringer("from", old), zap.Stringer("to", new), zap.Int("moved", total), zap.String("actor", actor))
			return total, err
		}
	}
}

// Hold takes telegram id out of its pending addressees' queues until
// Release, leaving deliveries in flight alone.
func (b *Board) Hold(id telegram.ID, actor string) (res store.OpResult, err error) {
	err = b.withFrozen(id, func(busy store.InFlight) error {
		if res, err = b.store.Hold(id, actor, busy); err == nil {
			b.dropped(id, "held", res.Removed)
		}
		return err
	})
	return res, err
}

// Release puts a held telegram back in its addressees' queues.
func (b *Board) Release(id telegram.ID, actor string) (store.OpResult, error) {
	return b.store.Release(id, actor)
}

// Requeue puts a parked or quarantined telegram back in its addressees'
// queues, its attempts counted afresh.
func (b *Board) Requeue(id telegram.ID, actor string) (store.OpResult, error) {
	return b.store.Requeue(id, actor)
}

// Cancel withdraws telegram id from every addressee still waiting for it,
// leaving deliveries in flight to their acknowledgement.
func (b *Board) Cancel(id telegram.ID, actor, reason string) (res store.OpResult, err error) {
	err = b.withFrozen(id, func(busy store.InFlight) error {
		if res, err = b.store.Cancel(id, actor, reason, busy); err == nil {
			b.dropped(id, "cancelled", res.Removed)
		}
		return err
	})
	return res, err
}

// HoldAgency holds (on) or releases (off) every delivery to agency.
func (b *Board) HoldAgency(agency telegram.Address, actor string, on bool) error {
	return b.store.HoldAgency(agency, actor, on)
}

// expire withdraws telegram id from every addressee that does not have it
// yet, except deliveries in flight: those are settled by their
// acknowledgement, or expire when they come back.
func (b *Board) expire(id telegram.ID) {
	err := b.withFrozen(id, func(busy store.InFlight) error {
		ws, err := b.store.Withdraw(id, store.ReasonExpired, "", busy)
		if err == nil {
			b.dropped(id, store.ReasonExpired, ws)
		}
		return err
	})
	if err != nil {
		b.log.Error("cannot expire a telegram", zap.Stringer("id", id), zap.Error(err))
	}
}

// dropped tells the schedulers that entries left the queues, and logs it.
func (b *Board) dropped(id telegram.ID, reason string, ws []store.Withdrawn) {
	for _, w := range ws {
		b.drop(w)
		b.log.Info("telegram withdrawn", zap.Stringer("id", id), zap.Stringer("addressee", w.Queue.Agency),
			zap.Stringer("precedence", w.Queue.Prec), zap.String("reason", reason))
	}
}

// undefer queues deferred telegram id for its addressees still waiting.
func (b *Board) undefer(id telegram.ID) bool {
	queued, err := b.store.Undefer(id)
	if err != nil {
		b.log.Error("cannot queue a deferred telegram", zap.Stringer("id", id), zap.Error(err))
		return false
	}
	for _, a := range queued {
		b.log.Info("deferred telegram queued", zap.Stringer("id", id), zap.Stringer("addressee", a))
	}
	return true
}

// UndeferBetween queues now every telegram deferred to a time from from
// to to (both included), as if that time had come, and returns how many.
func (b *Board) UndeferBetween(from, to time.Time) (int, error) {
	n := 0
	if !b.forDue(store.DueDeferral, store.DueFrom(store.DueDeferral, from), to, func(id telegram.ID) bool {
		if !b.undefer(id) {
			return false
		}
		n++
		return true
	}) {
		return n, fault.E("undefer", fault.Internal, "cannot queue every deferred telegram (see the log)")
	}
	return n, nil
}

// RunTimers handles every custody deadline due at now: deferred
// telegrams whose time came are queued, expired ones withdrawn, late ones
// marked overdue (targets gives each precedence's, for the log), and
// settled ones whose retention ended purged from the journal. Call it
// only on a clock the switch trusts: a wrong clock would withdraw
// telegrams and tell their senders so, for good.
func (b *Board) RunTimers(now time.Time, targets map[telegram.Precedence]time.Duration) {
	b.forDue(store.DueDeferral, nil, now, b.undefer)
	b.forDue(store.DueExpiry, nil, now, func(id telegram.ID) bool { b.expire(id); return true })
	b.forDue(store.DueOverdue, nil, now, func(id telegram.ID) bool {
		late, err := b.store.MarkOverdue(id)
		if err != nil {
			b.log.Error("cannot mark a telegram overdue", zap.Stringer("id", id), zap.Error(err))
			return false
		}
		for _, o := range late {
			b.log.Warn("telegram overdue", zap.Stringer("id", id), zap.Stringer("addressee", o.Agency),
				zap.Stringer("precedence", o.Prec), zap.Duration("age", o.Age), zap.Duration("target", targets[o.Prec]))
		}
		return true
	})
	for {
		n, err := b.store.PurgeDue(now, 256)
		if err != nil {
			b.log.Error("cannot purge the journal", zap.Error(err))
			break
		}
		if n == 0 {
			break
		}
		b.log.Info("journal purged", zap.Int("telegrams", n))
	}
}

// forDue calls fn for each telegram whose deadline of kind is due at now,
// after cursor (nil: from the first), in pages, until none is left or fn
// returns false. It reports whether it went through them all.
func (b *Board) forDue(kind byte, cursor []byte, now time.Time, fn func(telegram.ID) bool) bool {
	const page = 256
	for {
		ids, next, err := b.store.Due(kind, now, cursor, page)
		if err != nil {
			b.log.Error("cannot read deadlines", zap.Error(err))
			return false
		}
		for _, id := range ids {
			if !fn(id) {
				return false
			}
		}
		if len(ids) < page {
			return true
		}
		cursor = next
	}
}

// drop tells w's scheduler that its entry left the queue.
func (b *Board) drop(w store.Withdrawn) {
	b.mu.Lock()
	ag := b.agencies[w.Queue.Agency]
	b.mu.Unlock()
	if ag != nil {
		ag.sched.Drop(w.Queue.Prec, w.Queue.Class, w.Seq)
	}
}
