package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Hand-out marks. A delivery attempt is counted lazily (it rides the next
// commit, see Attempt), so a crash can lose the count of a telegram that
// a terminal had already received, and the redelivery after the restart
// would go out without the possible-duplicate flag, perhaps to another
// terminal of the agency. To close that gap at no cost per delivery, the
// switch keeps, per sub-queue, a durable hand-out mark: no entry at or
// above it is ever handed out (the switch moves the mark up, by a step of
// many entries, and waits for that commit first). After a crash, every
// entry still queued below its sub-queue's mark may have been handed out,
// and is flagged as a possible duplicate when it next goes out. After a
// clean stop every attempt was committed, so the counts alone say which
// telegrams went out before.

// markKey is M<agency tag><rank:1><class:1> → the sub-queue's hand-out mark.
func (ks keyspace) markKey(q SubQueue) []byte {
	return append(ks.agencyKey(pMark, q.Agency), byte(q.Prec.Rank()), byte(q.Class))
}

// cleanKey is present while the store is closed after a clean stop.
var cleanKey = metaKey("clean")

// Marks returns the hand-out marks of an agency's sub-queues, [rank][class-1].
func (s *Store) Marks(agency telegram.Address) (marks [4][4]uint64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		for r := range marks {
			for c := range marks[r] {
				q := SubQueue{Agency: agency, Prec: telegram.PrecedenceOfRank(r), Class: telegram.Classification(c + 1)}
				if marks[r][c], err = s.getU64(txn, s.ks.markKey(q)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return marks, err
}

// SetMark makes mark the hand-out mark of q. It returns after fsync.
func (s *Store) SetMark(q SubQueue, mark uint64) error {
	return s.submit(&op{prec: q.Prec, apply: func(c *commitCtx) error {
		return c.set(c.s.ks.markKey(q), putU64(mark))
	}})
}

// SuspectBelow is the queue sequence below which entries may have been
// handed out in an earlier run without their attempt being counted: after
// a crash, the first sequence of this run; after a clean stop, zero.
// Entries below both this and their sub-queue's mark are possible
// duplicates.
func (s *Store) SuspectBelow() uint64 { return s.suspectBelow }

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

// markClean records a clean stop: every submitted write is committed.
func (s *Store) markClean() error {
	return s.db.Update(func(txn *badger.Txn) error { return txn.Set(cleanKey, nil) })
}
