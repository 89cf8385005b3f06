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
//     run) and removed at Open: without it, the last run crashed;
//   - a receiving marker per agency, written (durably) when an agency's
//     first terminal subscribes in a run, and cleared at a clean stop: the
//     agencies that may have had telegrams in flight.
//
// After a crash, the switch flags the first entries of each queue of a
// receiving agency (as many as could have been in flight: read-ahead plus
// the windows of the agency's terminals) filed before the restart.

// cleanKey is present while the store is closed after a clean stop.
var cleanKey = metaKey("clean")

// receivingKey is U<agency tag>: the agency had a terminal receiving since
// the last clean stop (empty value).
func (ks keyspace) receivingKey(a telegram.Address) []byte { return ks.agencyKey(pReceiving, a) }

// SuspectBelow is the queue sequence below which entries may have been
// handed out in an earlier run without their attempt being counted: after
// a crash, the first sequence of this run; after a clean stop, zero.
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

// readClean reads whether the store was closed cleanly last time, and
// removes the marker (durably) so that a crash from now on shows.
func (s *Store) readClean() (bool, error) {
	clean := true
	err := s.db.Update(func(txn *badger.Txn) error {
		if _, err := txn.Get(cleanKey); errors.Is(err, badger.ErrKeyNotFound) {
			clean = false
			return nil
		} else if err != nil {
			return err
		}
		return txn.Delete(cleanKey)
	})
	if err != nil {
		return false, fault.E("store.open", fault.Internal, "cannot read the clean-stop marker", err)
	}
	return clean, nil
}

// markClean records a clean stop (every submitted write is committed) and
// clears the receiving markers, in one transaction.
func (s *Store) markClean() error {
	return s.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{pReceiving}})
		var keys [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		it.Close()
		for _, k := range keys {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		return txn.Set(cleanKey, nil)
	})
}
