package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
)

// FormatVersion is the storage layout this switch writes (doc.go), kept
// in the store as m"format". A store without it is of format 1 (or new).
//
//	1  telegram IDs in keys (h, b, d, x, o, e, A); agency tag, precedence
//	   and classification in queue keys (q, Q, D)
//	2  opaque tags for all of those (H, B, S, X, O, T, I; k, K, F);
//	   headers padded to a power of two
//	3  a telegram's header, body and delivery states keyed by its filing
//	   number (t, u, s), found through N<telegram tag>
const FormatVersion = 3

// Format 1's prefixes for the records format 2 moved (its other records
// are the same in both).
const (
	f1Header    = 'h' // h<id:16>
	f1Body      = 'b' // b<id:16><chunk:4>
	f1Delivery  = 'd' // d<id:16><agency tag:16>
	f1Queue     = 'q' // q<agency tag:16><rank:1><class:1><seq:8>
	f1QueueHead = 'Q' // Q<agency tag:16><rank:1><class:1>
	f1Counts    = 'D' // D<agency tag:16><rank:1><class:1>
	f1Expiry    = 'x' // x<unix ns:8><id:16>, empty
	f1Overdue   = 'o' // o<unix ns:8><id:16>, empty
	f1Deferral  = 'e' // e<unix ns:8><id:16>, empty
	f1AuditByID = 'A' // A<id:16><index:8>, empty
)

// Format 2's prefixes for the records format 3 moved.
const (
	f2Header   = 'H' // H<telegram tag> → header
	f2Body     = 'B' // B<telegram tag><chunk:4> → body chunk
	f2Delivery = 'S' // S<tag of (ID, agency tag)> → delivery state
)

// A telegram's header is moved first: it is numbered then, and the records
// moved after it find its number.
var (
	f1Prefixes = []byte{f1Header, f1Body, f1Delivery, f1Queue, f1QueueHead, f1Counts, f1Expiry, f1Overdue, f1Deferral, f1AuditByID}
	f2Prefixes = []byte{f2Header, f2Body, f2Delivery}
)

// migratePage bounds one migration transaction.
const (
	migratePageKeys  = 512
	migratePageBytes = 2 << 20
)

// upgraded says what upgrade did.
type upgraded struct {
	from    uint64 // the format found
	moved   int    // records moved
	orphans int    // records of telegrams with no header, dropped
}

// upgrade brings the store to FormatVersion before anything else reads it,
// and says what it did. Records are moved to their new keys in pages, one
// transaction each: the old key is deleted in the transaction that writes
// the new ones, and the old and new formats' keys never share a prefix, so
// an upgrade cut short (crash, power cut) is simply taken up again at the
// next start, from the records still under the old prefixes; a header
// moved twice keeps the number it was given the first time. The version is
// written last. Then the old prefixes are dropped from Badger's tables
// (the deleted keys would otherwise stay in them until compaction reached
// them).
func (s *Store) upgrade() (u upgraded, err error) {
	var v uint64
	m := migrator{s: s}
	if err := s.db.View(func(txn *badger.Txn) (err error) {
		if v, err = s.getU64(txn, metaKey("format")); err == nil {
			m.filings, err = s.getU64(txn, metaKey("filings"))
		}
		return err
	}); err != nil {
		return u, fault.E("store.open", fault.Integrity, "cannot read the store's format version", err)
	}
	u.from = max(v, 1)
	defer func() { u.orphans = m.orphans }()
	var old []byte
	switch {
	case v == FormatVersion:
		return u, nil
	case v > FormatVersion:
		return u, fault.Errorf("store.open", fault.Invalid,
			"the store in %s is of format %d, written by a newer dienbao; this one reads formats up to %d", s.opts.Dir, v, FormatVersion)
	case v == 2:
		old = f2Prefixes
	default:
		old = f1Prefixes
	}
	for _, p := range old {
		m.next = nil
		for {
			n, err := m.page(p)
			if err != nil {
				return u, fault.E("store.open", fault.Integrity, fmt.Sprintf("cannot migrate the store to format %d", FormatVersion), err)
			}
			if n == 0 {
				break
			}
			u.moved += n
			if s.opts.onMigratePage != nil {
				if err := s.opts.onMigratePage(u.moved); err != nil {
					return u, err
				}
			}
		}
	}
	if u.moved > 0 {
		if err := s.db.DropPrefix(prefixes(old)...); err != nil {
			return u, fault.E("store.open", fault.Internal, "cannot drop the store's old records", err)
		}
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		k := metaKey("format")
		return txn.Set(k, s.sealValue(k, putU64(FormatVersion)))
	}); err != nil {
		return u, fault.E("store.open", fault.Internal, "cannot record the store's format version", err)
	}
	return u, nil
}

func prefixes(ps []byte) [][]byte {
	out := make([][]byte, len(ps))
	for i, p := range ps {
		out[i] = []byte{p}
	}
	return out
}

// migrator moves records to the current format, numbering headers as it
// goes.
type migrator struct {
	s       *Store
	txn     *badger.Txn
	filings uint64 // the store's count of numbered telegrams
	orphans int    // records of a telegram with no header, dropped
	// next is where the pass under way goes on: seeking past the records
	// already moved, not through their deletion markers from the start
	// of the prefix (which made a pass quadratic: over 15 minutes for a
	// million telegrams).
	next []byte
}

// page moves up to one page of records under prefix p.
func (m *migrator) page(p byte) (int, error) {
	n := 0
	filings, next := m.filings, m.next
	err := m.s.db.Update(func(txn *badger.Txn) error {
		m.txn = txn
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
		defer it.Close()
		size := 0
		if m.next == nil {
			it.Rewind()
		} else {
			it.Seek(m.next)
		}
		for ; it.Valid() && n < migratePageKeys && size < migratePageBytes; it.Next() {
			item := it.Item()
			old := item.KeyCopy(nil)
			var v []byte
			if item.ValueSize() > 0 {
				var err error
				if v, err = m.s.value(item); err != nil {
					return fmt.Errorf("record %x: %w", old, err)
				}
			}
			err := m.move(old, v)
			if errors.Is(err, badger.ErrTxnTooBig) {
				break // what this record wrote is written again from it next page
			} else if err != nil {
				return err
			}
			n++
			size += len(old) + len(v)
			m.next = append(old, 0) // the next key after it
		}
		if m.filings != filings {
			k := metaKey("filings")
			return txn.Set(k, m.s.sealValue(k, putU64(m.filings)))
		}
		return nil
	})
	if err != nil {
		m.filings, m.next = filings, next
	}
	return n, err
}

// set writes a record of the current format (v unsealed; nil for an
// empty marker).
func (m *migrator) set(k, v []byte) error {
	if v != nil {
		v = m.s.sealValue(k, v)
	}
	return m.txn.Set(k, v)
}

// move writes what old record k (value v, unsealed) becomes in the current
// format and deletes it.
func (m *migrator) move(k, v []byte) error {
	bad := fmt.Errorf("record %x does not have the shape of its prefix", k)
	if len(k) == 0 {
		return bad
	}
	ks := m.s.ks
	var err error
	switch k[0] {
	case f1Header, f2Header:
		err = m.header(k, v)
	case f1Body:
		if len(k) != 21 {
			return bad
		}
		err = m.moveNumbered(ks.telegramTag(telegram.ID(k[1:17])), v, func(num uint64) []byte {
			return bodyKey(num, binary.BigEndian.Uint32(k[17:]))
		})
	case f2Body:
		if len(k) != 1+tagLen+4 {
			return bad
		}
		err = m.moveNumbered(k[1:1+tagLen], v, func(num uint64) []byte {
			return bodyKey(num, binary.BigEndian.Uint32(k[1+tagLen:]))
		})
	case f1Delivery:
		if len(k) != 1+16+tagLen {
			return bad
		}
		err = m.moveNumbered(ks.telegramTag(telegram.ID(k[1:17])), v, func(num uint64) []byte {
			return ks.deliveryKeyOf(num, k[1:17], k[17:])
		})
	case f2Delivery:
		m.orphans++ // the header's move took the others
	case f1Queue, f1QueueHead, f1Counts:
		n := 1 + tagLen + 2
		if k[0] == f1Queue {
			n += 8
		}
		if len(k) != n {
			return bad
		}
		sub := ks.subTagOf(k[1:1+tagLen], k[1+tagLen], k[2+tagLen])
		p := map[byte]byte{f1Queue: pQueue, f1QueueHead: pQueueHead, f1Counts: pCounts}[k[0]]
		err = m.set(append(tagged(p, sub, 8), k[3+tagLen:]...), v)
	case f1Expiry, f1Overdue, f1Deferral:
		if len(k) != 1+8+16 {
			return bad
		}
		kind := map[byte]byte{f1Expiry: pExpiry, f1Overdue: pOverdue, f1Deferral: pDeferral}[k[0]]
		id := telegram.ID(k[9:])
		err = m.set(ks.timerKey(kind, binary.BigEndian.Uint64(k[1:9]), id), id[:])
	case f1AuditByID:
		if len(k) != 1+16+8 {
			return bad
		}
		id, index := telegram.ID(k[1:17]), binary.BigEndian.Uint64(k[17:])
		nk := tagged(pAuditByID, ks.telegramTag(id), 8)
		err = m.set(append(nk, ks.auditBatchTag(id, index)...), auditlog.EncodeIndices([]uint64{index}))
	default:
		return bad
	}
	if err != nil {
		return err
	}
	return m.txn.Delete(k)
}

// header numbers the telegram whose header k holds (unless a move cut
// short numbered it already), writes its number and header, and, from
// format 2, moves its delivery states, whose keys only its ID and
// addressees give.
func (m *migrator) header(k, v []byte) error {
	var h telegram.Header
	if err := decodePadded(v, &h); err != nil {
		return fmt.Errorf("header %x: %w", k, err)
	}
	ks := m.s.ks
	nk := ks.numberKey(h.ID)
	num, err := m.s.getU64(m.txn, nk)
	if err != nil {
		return err
	}
	if num == 0 {
		m.filings++
		num = m.filings
		if err := m.set(nk, putU64(num)); err != nil {
			return err
		}
	}
	if err := m.set(headerKey(num), v); err != nil {
		return err
	}
	if k[0] != f2Header {
		return nil
	}
	for _, a := range h.Addressees() {
		at := ks.agencyTag(a)
		old := tagged(f2Delivery, ks.tag("delivery", h.ID[:], at), 0)
		ds, err := m.s.get(m.txn, old)
		if errors.Is(err, badger.ErrKeyNotFound) {
			continue // purged
		}
		if err != nil {
			return fmt.Errorf("telegram %s's delivery state: %w", h.ID, err)
		}
		if err := m.set(ks.deliveryKeyOf(num, h.ID[:], at), ds); err != nil {
			return err
		}
		if err := m.txn.Delete(old); err != nil {
			return err
		}
	}
	return nil
}

// moveNumbered writes v under the key that key gives for the number of
// the telegram tagged tag; a record whose telegram has no number (no
// header) is dropped and counted.
func (m *migrator) moveNumbered(tag, v []byte, key func(num uint64) []byte) error {
	num, err := m.s.getU64(m.txn, tagged(pNumber, tag, 0))
	if err != nil {
		return err
	}
	if num == 0 {
		m.orphans++
		return nil
	}
	return m.set(key(num), v)
}

// recordUpgrade logs and audits what upgrade did.
func (s *Store) recordUpgrade(u upgraded) error {
	if u.moved == 0 {
		return nil
	}
	s.log.Info("store migrated", zap.Uint64("from", u.from), zap.Int("to", FormatVersion), zap.Int("records", u.moved), zap.Int("orphans", u.orphans))
	reason := fmt.Sprintf("the store was migrated from format %d to format %d: %d records moved to new keys", u.from, FormatVersion, u.moved)
	if u.orphans > 0 {
		reason += fmt.Sprintf("; %d records of telegrams with no header were dropped", u.orphans)
	}
	return s.Record(AuditEntry{Actor: "switch", Event: audit.Storage, Reason: reason})
}
