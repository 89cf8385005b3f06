package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Possible duplicates across a crash. A delivery attempt is counted lazily
// (it rides the next commit, see Attempt), so a crash can lose the count
// of a telegram a terminal had already stored, and its redelivery after
// the restart, perhaps to another terminal of the agency, would go out
// without the possible-duplicate flag. Waiting for the count before each
// hand-out would cost every delivery a commit; instead the store records
// two facts that cost nothing per delivery:
//
//   - a clean-stop marker, written at Close (unless a commit failed in the
//     run) and removed at Open: without it, the last run crashed, and Open
//     records the first queue sequence of the new run as the suspect
//     bound (kept until the next crash moves it up);
//   - a receiving marker per agency, written (durably) when an agency's
//     first terminal subscribes in a run: the agencies that may have had
//     telegrams in flight.
//
// The switch flags the first entries of each queue of a receiving agency
// (as many as could have been in flight: read-ahead plus the windows of the
// agency's terminals) filed before the latest crash. Both facts outlive
// clean stops: an agency that does not reconnect in the run after a crash
// still gets its suspect telegrams flagged in a later one.

// cleanKey is present while the store is closed after a clean stop;
// suspectKey holds the suspect bound (SuspectBelow).
var cleanKey, suspectKey = metaKey("clean"), metaKey("suspect")

// receivingKey is U<agency tag>: the agency had a terminal receiving since
// the last clean stop (empty value).
func (ks keyspace) receivingKey(a telegram.Address) []byte { return ks.agencyKey(pReceiving, a) }

// SuspectBelow is the queue sequence below which entries may have been
// handed out in an earlier run without their attempt being counted: the
// first sequence of the run after the latest crash (zero if the store
// never crashed).
func (s *Store) SuspectBelow() uint64 { return s.suspectBelow }

// Receiving records, durably, that agency has a terminal receiving. It
// returns after fsync and reports whether the marker was already there
// (left by a run that did not stop cleanly, or set earlier in this one).
func (s *Store) Receiving(agency telegram.Address) (already bool, err error) {
	key := s.ks.receivingKey(agency)
	err = s.submit(&op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		if _, err := c.txn.Get(key); err == nil {
			already = true
			return nil
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		return c.txn.Set(key, nil)
	}})
	return already, err
}

// recoverStop reads whether the store was closed cleanly last time and
// sets the suspect bound: after a crash, the first sequence of this run,
// recorded; otherwise the one recorded at the latest crash. It removes the
// clean-stop marker (durably) so that a crash from now on shows.
func (s *Store) recoverStop() error {
	if s.opts.Replicate != nil {
		// A node of a group takes over from another leader: whatever that
		// one handed out may be in flight, as after a crash (replica.go).
		if s.st.qseq > 0 {
			s.suspectBelow = s.st.qseq + 1
		}
		return nil
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		_, err := txn.Get(cleanKey)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound) && s.st.qseq == 0:
			return nil // a new store, or one that never queued anything
		case errors.Is(err, badger.ErrKeyNotFound):
			s.suspectBelow = s.st.qseq + 1
			return txn.Set(suspectKey, s.sealValue(suspectKey, putU64(s.suspectBelow)))
		case err != nil:
			return err
		}
		if s.suspectBelow, err = s.getU64(txn, suspectKey); err != nil {
			return err
		}
		return txn.Delete(cleanKey)
	})
	if err != nil {
		return fault.E("store.open", fault.Internal, "cannot read the clean-stop marker", err)
	}
	return nil
}

// markClean records a clean stop: every submitted write is committed.
func (s *Store) markClean() error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(cleanKey, nil) })
}
