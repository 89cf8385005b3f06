package auditlog

import (
	"encoding/binary"
	"slices"
	"sort"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Query selects audit entries. Zero fields do not filter.
type Query struct {
	ID             telegram.ID
	Agency         telegram.Address // as sender (From) or addressee (To)
	Event          string
	Precedence     telegram.Precedence
	Classification telegram.Classification
	Since, Until   time.Time // inclusive
	From, To       uint64    // index range [From, To); To 0: no bound
	Newest         bool      // newest first
	Limit          int       // default 100
	Scan           int       // entries read at most (0: no bound); see SelectPage
}

// MaxQueryLimit bounds one page of a query.
const MaxQueryLimit = 10000

// Select returns the entries q selects from the log of size entries, up
// to q.Limit, in the order asked. A telegram ID or an agency is looked up
// in an index; a time range is found by binary search (entry times never
// go backwards: the commit loop's clock is held monotonic across
// restarts); other filters are checked on each entry of the range.
//
// With q.Scan set, at most that many entries are read: a query whose
// filters match little stops there, and Resume says where to go on (the
// next From for oldest first, the next To for newest first).
func (l *Log) Select(tx Txn, size uint64, q Query) ([]audit.Entry, error) {
	out, _, err := l.SelectPage(tx, size, q)
	return out, err
}

// SelectPage is Select, also returning where a query stopped by its scan
// budget would go on (0: it did not stop for the budget).
func (l *Log) SelectPage(tx Txn, size uint64, q Query) ([]audit.Entry, uint64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > MaxQueryLimit {
		q.Limit = MaxQueryLimit
	}
	var out []audit.Entry
	var resume uint64
	err := func() error {
		lo, hi := q.From, size
		if q.To > 0 && q.To < hi {
			hi = q.To
		}
		if !q.Since.IsZero() {
			n, err := firstAfter(tx, size, func(t time.Time) bool { return !t.Before(q.Since) })
			if err != nil {
				return err
			}
			lo = max(lo, n)
		}
		if !q.Until.IsZero() {
			n, err := firstAfter(tx, size, func(t time.Time) bool { return t.After(q.Until) })
			if err != nil {
				return err
			}
			hi = min(hi, n)
		}
		if lo >= hi {
			return nil
		}
		walk := func(fn func(uint64) (bool, error)) error { return walkLeaves(tx, lo, hi, q.Newest, fn) }
		switch {
		case !q.ID.IsZero():
			walk = func(fn func(uint64) (bool, error)) error { return l.walkTelegram(tx, q.ID, lo, hi, q.Newest, fn) }
		case q.Agency != "":
			walk = func(fn func(uint64) (bool, error)) error {
				return walkIndex(tx, l.tags.agencyPrefix(q.Agency), lo, hi, q.Newest, fn)
			}
		}
		scanned := 0
		return walk(func(index uint64) (bool, error) {
			if q.Scan > 0 && scanned == q.Scan {
				resume = index // the next From: go on from here
				if q.Newest {
					resume = index + 1 // the next To (exclusive): go on from here down
				}
				return false, nil
			}
			scanned++
			e, _, err := At(tx, index)
			if err != nil {
				return false, err
			}
			if q.match(e) {
				out = append(out, e)
			}
			return len(out) < q.Limit, nil
		})
	}()
	return out, resume, err
}

func (q Query) match(e audit.Entry) bool {
	return (q.ID.IsZero() || e.ID == q.ID) &&
		(q.Agency == "" || e.From == q.Agency || e.To == q.Agency) &&
		(q.Event == "" || e.Event == q.Event) &&
		(q.Precedence == 0 || e.Precedence == q.Precedence) &&
		(q.Classification == 0 || e.Classification == q.Classification)
}

// walkLeaves visits the log's indices in [lo, hi), in either direction,
// until fn returns false.
func walkLeaves(tx Txn, lo, hi uint64, reverse bool, fn func(uint64) (bool, error)) error {
	prefix := []byte{pLeaf}
	seek := LeafKey(lo)
	if reverse {
		seek = LeafKey(hi - 1)
	}
	return tx.Keys(prefix, seek, reverse, func(k []byte) (bool, error) {
		if len(k) != len(prefix)+8 {
			return true, nil
		}
		index := binary.BigEndian.Uint64(k[len(prefix):])
		if index < lo || index >= hi {
			return false, nil
		}
		return fn(index)
	})
}

// walkTelegram visits telegram id's indices in [lo, hi), in either
// direction, until fn returns false.
func (l *Log) walkTelegram(tx Txn, id telegram.ID, lo, hi uint64, reverse bool, fn func(uint64) (bool, error)) error {
	is, err := l.telegramIndices(tx, id)
	if err != nil {
		return err
	}
	if reverse {
		slices.Reverse(is)
	}
	for _, i := range is {
		if i < lo || i >= hi {
			continue
		}
		if more, err := fn(i); err != nil || !more {
			return err
		}
	}
	return nil
}

// firstAfter is the smallest index whose entry's time satisfies ok (size
// if none), found by binary search.
func firstAfter(tx Txn, size uint64, ok func(time.Time) bool) (uint64, error) {
	var ferr error
	n := sort.Search(int(size), func(i int) bool {
		if ferr != nil {
			return true
		}
		e, _, err := At(tx, uint64(i))
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
