package store

import (
	"context"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// ResealStats says what a re-seal did.
type ResealStats struct {
	Passes   int      // full passes over the store
	Resealed int      // records re-sealed under the current key
	Retired  []uint32 // data keys dropped from the keyring
	Damaged  int      // records that failed their integrity check, left as they were
}

// Reseal re-seals, under the keyring's current key, every record sealed
// under an older one, then retires the older keys. It runs beside normal
// traffic: each page of records is re-sealed by one operation of the commit
// loop, which re-reads the record first, so nothing written meanwhile is
// lost. A key is retired only after a complete pass finds no record still
// using it (a write that was being sealed at the moment of rotation is
// caught by the next pass). Interrupted (crash, shutdown), it is simply run
// again: until it finishes, the keyring keeps every key a record may use.
func (s *Store) Reseal(ctx context.Context) (ResealStats, error) {
	var st ResealStats
	if s.ring == nil {
		return st, nil
	}
	for {
		current := s.ring.Current()
		found, err := s.resealPass(ctx, current, &st)
		if err != nil {
			return st, err
		}
		st.Passes++
		if found == 0 && s.ring.Current() == current {
			break
		}
	}
	current := s.ring.Current()
	for _, id := range s.ring.IDs() {
		if id == current {
			continue
		}
		s.views.Lock() // no read still holds a snapshot from before the re-seal
		err := s.ring.Retire(id)
		s.views.Unlock()
		if err != nil {
			return st, err
		}
		st.Retired = append(st.Retired, id)
	}
	if len(st.Retired) > 0 {
		err := s.Record(AuditEntry{Actor: "switch", Event: AuditKeyRotation,
			Reason: retiredReason(st)})
		return st, err
	}
	return st, nil
}

func retiredReason(st ResealStats) string {
	s := "retired data key"
	for _, id := range st.Retired {
		s += " " + strconv.FormatUint(uint64(id), 10)
	}
	return s + " after re-sealing " + strconv.Itoa(st.Resealed) + " records"
}

// resealPass walks the whole store once and re-seals what is not under
// current; it returns how many records it re-sealed.
func (s *Store) resealPass(ctx context.Context, current uint32, st *ResealStats) (int, error) {
	const page = 256
	found := 0
	var cursor []byte
	for {
		if err := ctx.Err(); err != nil {
			return found, err
		}
		var keys [][]byte
		var last []byte
		err := s.db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false})
			defer it.Close()
			if cursor == nil {
				it.Rewind()
			} else {
				it.Seek(cursor)
			}
			for n := 0; it.Valid() && n < 4*page && len(keys) < page; it.Next() {
				n++
				item := it.Item()
				last = item.KeyCopy(nil)
				if item.ValueSize() == 0 {
					continue // an empty index marker: nothing sealed
				}
				v, err := item.ValueCopy(nil)
				if err != nil {
					return err
				}
				if id, ok := crypto.KeyIDOf(v); ok && id != current {
					keys = append(keys, item.KeyCopy(nil))
				}
			}
			return nil
		})
		if err != nil {
			return found, fault.E("store.reseal", fault.Internal, "cannot read the store", err)
		}
		if len(keys) > 0 {
			n, bad, err := s.resealKeys(keys, current)
			found += n
			st.Resealed += n
			st.Damaged += bad
			if err != nil {
				return found, err
			}
		}
		if last == nil {
			return found, nil
		}
		cursor = append(last, 0) // the smallest key after last
	}
}

// resealKeys re-seals the given records in one commit, re-reading each
// first. Records deleted meanwhile are skipped; records that fail their
// integrity check are left as they are and counted as damaged.
func (s *Store) resealKeys(keys [][]byte, current uint32) (resealed, damaged int, err error) {
	err = s.submit(&op{prec: telegram.Routine, apply: func(c *commitCtx) error {
		resealed, damaged = 0, 0
		type rec struct{ key, plain []byte }
		var todo []rec
		for _, k := range keys {
			item, err := c.txn.Get(k)
			if err != nil {
				continue // deleted meanwhile
			}
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			if id, ok := crypto.KeyIDOf(raw); !ok || id == current {
				continue
			}
			plain, err := s.ring.Open(nil, k, raw)
			if err != nil {
				damaged++
				continue
			}
			todo = append(todo, rec{k, plain})
		}
		// Writes only from here.
		for _, r := range todo {
			if err := c.set(r.key, r.plain); err != nil {
				return err
			}
		}
		resealed = len(todo)
		return nil
	}})
	return resealed, damaged, err
}
