package store

import (
	"bytes"
	"encoding/binary"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// AuditQuery selects audit entries. Zero fields do not filter.
type AuditQuery struct {
	ID             telegram.ID
	Agency         telegram.Address // as sender (From) or addressee (To)
	Event          string
	Precedence     telegram.Precedence
	Classification telegram.Classification
	Since, Until   time.Time // inclusive
	From, To       uint64    // index range [From, To); To 0: no bound
	Newest         bool      // newest first
	Limit          int       // default 100
}

// MaxQueryLimit bounds one page of a query.
const MaxQueryLimit = 10000

// QueryAudit returns the entries q selects, up to q.Limit, in the order
// asked. A telegram ID or an agency is looked up in an index; a time range
// is found by binary search (entry times never go backwards: the commit
// loop's clock is held monotonic across restarts); other filters are
// checked on each entry of the range.
func (s *Store) QueryAudit(q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > MaxQueryLimit {
		q.Limit = MaxQueryLimit
	}
	var out []AuditEntry
	err := s.view(func(txn *badger.Txn) error {
		size, err := s.getU64(txn, metaKey("aseq"))
		if err != nil {
			return err
		}
		lo, hi := q.From, size
		if q.To > 0 && q.To < hi {
			hi = q.To
		}
		if !q.Since.IsZero() {
			n, err := s.firstAfter(txn, size, func(t time.Time) bool { return !t.Before(q.Since) })
			if err != nil {
				return err
			}
			lo = max(lo, n)
		}
		if !q.Until.IsZero() {
			n, err := s.firstAfter(txn, size, func(t time.Time) bool { return t.After(q.Until) })
			if err != nil {
				return err
			}
			hi = min(hi, n)
		}
		if lo >= hi {
			return nil
		}
		prefix := []byte{pAudit}
		switch {
		case !q.ID.IsZero():
			prefix = idKey(pAuditID, q.ID)
		case q.Agency != "":
			prefix = s.ks.agencyKey(pAuditAgency, q.Agency)
		}
		return s.walkAudit(txn, prefix, lo, hi, q.Newest, func(index uint64) (bool, error) {
			e, _, err := s.auditAt(txn, index)
			if err != nil {
				return false, err
			}
			if q.match(e) {
				out = append(out, e)
			}
			return len(out) < q.Limit, nil
		})
	})
	return out, err
}

func (q AuditQuery) match(e AuditEntry) bool {
	return (q.ID.IsZero() || e.ID == q.ID) &&
		(q.Agency == "" || e.From == q.Agency || e.To == q.Agency) &&
		(q.Event == "" || e.Event == q.Event) &&
		(q.Precedence == 0 || e.Precedence == q.Precedence) &&
		(q.Classification == 0 || e.Classification == q.Classification)
}

// walkAudit visits the indices under prefix (the log itself, or an index)
// in [lo, hi), in either direction, until fn returns false.
func (s *Store) walkAudit(txn *badger.Txn, prefix []byte, lo, hi uint64, reverse bool, fn func(uint64) (bool, error)) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: reverse})
	defer it.Close()
	seek := binary.BigEndian.AppendUint64(bytes.Clone(prefix), lo)
	if reverse {
		seek = binary.BigEndian.AppendUint64(bytes.Clone(prefix), hi-1)
	}
	for it.Seek(seek); it.Valid(); it.Next() {
		k := it.Item().Key()
		if len(k) != len(prefix)+8 {
			continue
		}
		index := binary.BigEndian.Uint64(k[len(prefix):])
		if index < lo || index >= hi {
			break
		}
		more, err := fn(index)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// auditIndex lists up to limit indices under an index prefix in [lo, hi).
func (s *Store) auditIndex(txn *badger.Txn, prefix []byte, lo, hi uint64, reverse bool, limit int) ([]uint64, error) {
	var out []uint64
	err := s.walkAudit(txn, prefix, lo, hi, reverse, func(i uint64) (bool, error) {
		out = append(out, i)
		return len(out) < limit, nil
	})
	return out, err
}

// firstAfter is the smallest index whose entry's time satisfies ok (size
// if none), found by binary search.
func (s *Store) firstAfter(txn *badger.Txn, size uint64, ok func(time.Time) bool) (uint64, error) {
	var ferr error
	n := sort.Search(int(size), func(i int) bool {
		if ferr != nil {
			return true
		}
		e, _, err := s.auditAt(txn, uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		return ok(e.At)
	})
	if ferr != nil {
		return 0, fault.E("store.audit", fault.Integrity, "cannot search the audit log by time", ferr)
	}
	return uint64(n), nil
}
