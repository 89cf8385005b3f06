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
const FormatVersion = 2

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

var f1Prefixes = []byte{f1Header, f1Body, f1Delivery, f1Queue, f1QueueHead, f1Counts, f1Expiry, f1Overdue, f1Deferral, f1AuditByID}

// migratePage bounds one migration transaction.
const (
	migratePageKeys  = 512
	migratePageBytes = 2 << 20
)

// upgrade brings the store to FormatVersion before anything else reads it,
// and returns how many records it moved. Format 1 → 2 moves each record
// to its new key in pages, one transaction each: the old key is deleted in
// the transaction that writes the new one, and the two formats' keys never
// share a prefix, so an upgrade cut short (crash, power cut) is simply
// taken up again at the next start, from the records still under the old
// prefixes. The version is written last. Then the old prefixes are
// dropped from Badger's tables (the deleted keys would otherwise stay in
// them until compaction reached them).
func (s *Store) upgrade() (int, error) {
	var v uint64
	if err := s.db.View(func(txn *badger.Txn) (err error) {
		v, err = s.getU64(txn, metaKey("format"))
		return err
	}); err != nil {
		return 0, fault.E("store.open", fault.Integrity, "cannot read the store's format version", err)
	}
	switch {
	case v == FormatVersion:
		return 0, nil
	case v > FormatVersion:
		return 0, fault.Errorf("store.open", fault.Invalid,
			"the store in %s is of format %d, written by a newer dienbao; this one reads formats up to %d", s.opts.Dir, v, FormatVersion)
	}
	moved := 0
	for _, p := range f1Prefixes {
		for {
			n, err := s.migratePage(p)
			if err != nil {
				return moved, fault.E("store.open", fault.Integrity, "cannot migrate the store to format 2", err)
			}
			if n == 0 {
				break
			}
			moved += n
			if s.opts.onMigratePage != nil {
				if err := s.opts.onMigratePage(moved); err != nil {
					return moved, err
				}
			}
		}
	}
	if moved > 0 {
		if err := s.db.DropPrefix(prefixes(f1Prefixes)...); err != nil {
			return moved, fault.E("store.open", fault.Internal, "cannot drop the store's format-1 records", err)
		}
	}
	if err := s.db.Update(func(txn *badger.Txn) error {
		k := metaKey("format")
		return txn.Set(k, s.sealValue(k, putU64(FormatVersion)))
	}); err != nil {
		return moved, fault.E("store.open", fault.Internal, "cannot record the store's format version", err)
	}
	return moved, nil
}

func prefixes(ps []byte) [][]byte {
	out := make([][]byte, len(ps))
	for i, p := range ps {
		out[i] = []byte{p}
	}
	return out
}

// migratePage moves up to one page of format-1 records under prefix p.
func (s *Store) migratePage(p byte) (int, error) {
	n := 0
	err := s.db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{p}})
		defer it.Close()
		size := 0
		for it.Rewind(); it.Valid() && n < migratePageKeys && size < migratePageBytes; it.Next() {
			item := it.Item()
			old := item.KeyCopy(nil)
			var v []byte
			if item.ValueSize() > 0 {
				var err error
				if v, err = s.value(item); err != nil {
					return fmt.Errorf("record %x: %w", old, err)
				}
			}
			k, nv, err := s.ks.format2(old, v)
			if err != nil {
				return err
			}
			if nv != nil {
				nv = s.sealValue(k, nv)
			}
			if err := txn.Set(k, nv); errors.Is(err, badger.ErrTxnTooBig) {
				break
			} else if err != nil {
				return err
			}
			if err := txn.Delete(old); errors.Is(err, badger.ErrTxnTooBig) {
				break // the new record is written again from the old one next page
			} else if err != nil {
				return err
			}
			n++
			size += len(k) + len(nv)
		}
		return nil
	})
	return n, err
}

// format2 is a format-1 record's key and value in format 2 (the value
// unsealed; nil for an empty marker). It needs only the old key: tags of
// agencies are the same in both formats.
func (ks keyspace) format2(k, v []byte) ([]byte, []byte, error) {
	bad := fmt.Errorf("record %x does not have the format-1 shape of its prefix", k)
	var id telegram.ID
	if len(k) == 0 {
		return nil, nil, bad
	}
	switch k[0] {
	case f1Header:
		if len(k) != 17 {
			return nil, nil, bad
		}
		return ks.headerKey(telegram.ID(k[1:])), v, nil
	case f1Body:
		if len(k) != 21 {
			return nil, nil, bad
		}
		return ks.bodyKey(telegram.ID(k[1:17]), binary.BigEndian.Uint32(k[17:])), v, nil
	case f1Delivery:
		if len(k) != 1+16+tagLen {
			return nil, nil, bad
		}
		return ks.deliveryKeyOf(k[1:17], k[17:]), v, nil
	case f1Queue, f1QueueHead, f1Counts:
		n := 1 + tagLen + 2
		if k[0] == f1Queue {
			n += 8
		}
		if len(k) != n {
			return nil, nil, bad
		}
		sub := ks.subTagOf(k[1:1+tagLen], k[1+tagLen], k[2+tagLen])
		p := map[byte]byte{f1Queue: pQueue, f1QueueHead: pQueueHead, f1Counts: pCounts}[k[0]]
		return append(tagged(p, sub, 8), k[3+tagLen:]...), v, nil
	case f1Expiry, f1Overdue, f1Deferral:
		if len(k) != 1+8+16 {
			return nil, nil, bad
		}
		kind := map[byte]byte{f1Expiry: pExpiry, f1Overdue: pOverdue, f1Deferral: pDeferral}[k[0]]
		copy(id[:], k[9:])
		return ks.timerKey(kind, binary.BigEndian.Uint64(k[1:9]), id), id[:], nil
	case f1AuditByID:
		if len(k) != 1+16+8 {
			return nil, nil, bad
		}
		id, index := telegram.ID(k[1:17]), binary.BigEndian.Uint64(k[17:])
		nk := tagged(pAuditByID, ks.telegramTag(id), 8)
		return append(nk, ks.auditBatchTag(id, index)...), auditlog.EncodeIndices([]uint64{index}), nil
	}
	return nil, nil, bad
}

// recordUpgrade logs and audits what upgrade did.
func (s *Store) recordUpgrade(moved int) error {
	if moved == 0 {
		return nil
	}
	s.log.Info("store migrated to format 2", zap.Int("records", moved))
	return s.Record(AuditEntry{Actor: "switch", Event: audit.Storage,
		Reason: fmt.Sprintf("the store was migrated from format 1 to format %d: %d records moved to opaque keys", FormatVersion, moved)})
}
