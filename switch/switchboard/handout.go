package switchboard

import (
	"errors"
	"io"

	"github.com/dienbao/dienbao/certs"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/schedule"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// ErrWithdrawn says a hand-out must not be written: the telegram expired,
// was parked, held or settled meanwhile. Its slot is released already.
var ErrWithdrawn = errors.New("withdrawn")

// Delivery is a hand-out cleared to be written: the header, whether to
// flag it as a possible duplicate, and its body, a chunk at a time.
type Delivery struct {
	Header            telegram.Header
	PossibleDuplicate bool
	first             []byte
	body              *store.Body
	read              bool
}

// Next returns the body's next chunk, or io.EOF after the last. An
// integrity error means the body is damaged: Quarantine the hand-out.
func (d *Delivery) Next() ([]byte, error) {
	if !d.read {
		d.read = true
		if d.first != nil {
			return d.first, nil
		}
		return nil, io.EOF
	}
	return d.body.Next()
}

// Prepare is the check before a telegram hand-out is written: custody's
// Offer on the addressee's state as stored now. A telegram that must not
// go out is withdrawn (expired, or parked after its failed attempts) or
// skipped (settled, held between the hand-out and now), its slot released,
// and ErrWithdrawn returned. Otherwise the attempt is counted (lazily: it
// rides the next commit) and the delivery returned; its first body chunk
// is read and checked before anything is written, so a damaged telegram
// of up to one chunk never touches the stream. An integrity error means
// the records are damaged: Quarantine the hand-out.
func (s *Seat) Prepare(it schedule.Item) (*Delivery, error) {
	st := s.b.store
	agency := s.who.Agency
	if it.Dup {
		// Handed out before: its attempt count must be complete before
		// the count decides whether it goes out again. (Here, not where
		// the seat's items are returned: a writer may still count an
		// attempt after that. Under load the flush rides the next group
		// commit.)
		if err := st.FlushAttempts(); err != nil {
			return nil, err
		}
	}
	h, cs, body, err := st.ForDelivery(it.ID, agency)
	if err != nil {
		return nil, err
	}
	decision, dup := custody.Offer(cs, s.b.cfg.Expired(h), it.Suspect, it.Dup, s.b.policy())
	switch decision {
	case custody.Skip:
		// Settled, or held by an operator between the hand-out and now
		// (the hold took it out of the queue; the scheduler is told just
		// after the hold's commit).
		s.release(it)
		return nil, ErrWithdrawn
	case custody.Withdraw:
		return nil, s.withdraw(it, store.ReasonExpired)
	case custody.ParkIt:
		s.log.Warn("telegram parked after failed attempts", zap.Stringer("id", it.ID), zap.Int("attempts", cs.Attempts))
		return nil, s.withdraw(it, store.ReasonParked)
	}
	first, err := body.Next()
	if err != nil && err != io.EOF {
		return nil, err
	}
	// A hand-over to the next switch that fails is the link's failure,
	// not the addressee's: counted as cut, it never parks the telegram.
	st.Attempt(h, agency, s.terminal, it.Suspect || s.who.Role == certs.Switch)
	return &Delivery{Header: h, PossibleDuplicate: dup, first: first, body: body}, nil
}

// Refuse records that the next switch refused a hand-out for reason (no
// route, loop detected, unknown addressee): NOT_DELIVERED to the
// addressee, with that reason, reported to the sender.
func (s *Seat) Refuse(it schedule.Item, reason string) error {
	err := s.withdraw(it, reason)
	if errors.Is(err, ErrWithdrawn) {
		return nil
	}
	return err
}

// withdraw takes a handed-out telegram out of this agency's queue for
// reason and releases its slot.
func (s *Seat) withdraw(it schedule.Item, reason string) error {
	ws, err := s.b.store.Withdraw(it.ID, reason, s.who.Agency, nil)
	if err != nil {
		return err
	}
	s.b.dropped(it.ID, reason, ws)
	s.release(it)
	return ErrWithdrawn
}

// Quarantine handles a hand-out whose stored records fail their integrity
// check: it is never delivered; its queue entry goes to the parked list
// for an operator (to restore from backup), the event is logged and
// audited, and the seat goes on with the rest.
func (s *Seat) Quarantine(it schedule.Item, cause error) {
	s.log.Error("telegram failed its integrity check; not delivered, parked for an operator",
		zap.Stringer("id", it.ID), zap.Error(cause))
	q := store.SubQueue{Agency: s.who.Agency, Prec: it.Prec, Class: it.Class}
	if err := s.b.store.Quarantine(q, it.Seq, it.ID, cause.Error()); err != nil {
		s.log.Error("cannot quarantine the telegram", zap.Stringer("id", it.ID), zap.Error(err))
		return // left in flight: it goes back to the queue when the seat closes
	}
	s.release(it)
}
