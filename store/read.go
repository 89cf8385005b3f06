package store

import (
	"errors"
	"io"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Entry is one queued item: a telegram in a sub-queue, or a delivery
// report in a receipt queue.
type Entry struct {
	Seq     uint64
	ID      telegram.ID      // queue entries
	Receipt telegram.Receipt // receipt entries
}

// ScanQueue returns up to limit entries of sub-queue q with sequence >=
// from, in sequence order. Callers pass a remembered head or cursor as
// from, never 0 on a busy queue.
func (s *Store) ScanQueue(q SubQueue, from uint64, limit int) ([]Entry, error) {
	var out []Entry
	prefix := q.prefix()
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Seek(q.key(from)); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			e := Entry{Seq: u64(k[len(prefix):])}
			if err := it.Item().Value(func(b []byte) error { copy(e.ID[:], b); return nil }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// ScanReceipts returns up to limit delivery reports waiting for agency,
// with sequence >= from.
func (s *Store) ScanReceipts(agency telegram.Address, from uint64, limit int) ([]Entry, error) {
	var out []Entry
	prefix := agencyKey(pReceipt, agency)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(receiptKey(agency, from)); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: u64(it.Item().Key()[len(prefix):])}
			if err := it.Item().Value(func(b []byte) error { return wire.Unmarshal(b, &e.Receipt) }); err != nil {
				return fault.E("store.receipts", fault.Integrity, "unreadable delivery report", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// QueueHead returns the persisted head of sub-queue q (0 if none).
func (s *Store) QueueHead(q SubQueue) (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) (err error) { v, err = getU64(txn, q.headKey()); return })
	return v, err
}

// ReceiptHead returns the persisted head of agency's receipt queue.
func (s *Store) ReceiptHead(agency telegram.Address) (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) (err error) { v, err = getU64(txn, receiptHeadKey(agency)); return })
	return v, err
}

// Header returns a telegram's header.
func (s *Store) Header(id telegram.ID) (telegram.Header, error) {
	var h telegram.Header
	err := s.db.View(func(txn *badger.Txn) (err error) { h, err = getHeader(txn, id); return })
	return h, err
}

// Delivery returns a telegram's delivery state for one addressee.
func (s *Store) Delivery(id telegram.ID, a telegram.Address) (DeliveryState, error) {
	var d DeliveryState
	err := s.db.View(func(txn *badger.Txn) (err error) { d, err = getDelivery(txn, id, a); return })
	return d, err
}

// WriteBody copies the body of telegram h to w, one chunk (and one short
// read transaction) at a time, so a slow reader holds neither the whole
// body in memory nor a long-lived snapshot.
func (s *Store) WriteBody(h telegram.Header, w io.Writer) error {
	var chunk []byte
	for n := int64(0); n*ChunkSize < h.BodyLen; n++ {
		err := s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(bodyKey(h.ID, uint32(n)))
			if err != nil {
				return err
			}
			chunk, err = item.ValueCopy(chunk[:0])
			return err
		})
		if err != nil {
			return fault.E("store.body", fault.Integrity, "telegram "+h.ID.String()+": body unreadable", err)
		}
		if want := min(ChunkSize, h.BodyLen-n*ChunkSize); int64(len(chunk)) != want {
			return fault.Errorf("store.body", fault.Integrity, "telegram %s: body chunk %d has the wrong length", h.ID, n)
		}
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	return nil
}

func getHeader(txn *badger.Txn, id telegram.ID) (telegram.Header, error) {
	var h telegram.Header
	item, err := txn.Get(headerKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return h, fault.Errorf("store.header", fault.NotExist, "no telegram %s", id)
	} else if err != nil {
		return h, err
	}
	if err := item.Value(func(b []byte) error { return wire.Unmarshal(b, &h) }); err != nil {
		return h, fault.E("store.header", fault.Integrity, "telegram "+id.String()+": header unreadable", err)
	}
	return h, nil
}

func getDelivery(txn *badger.Txn, id telegram.ID, a telegram.Address) (DeliveryState, error) {
	var d DeliveryState
	item, err := txn.Get(deliveryKey(id, a))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return d, fault.Errorf("store.delivery", fault.NotExist, "telegram %s has no addressee %s", id, a)
	} else if err != nil {
		return d, err
	}
	err = item.Value(func(b []byte) error { return wire.Unmarshal(b, &d) })
	return d, err
}
