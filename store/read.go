package store

import (
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/custody"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
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
	prefix := s.ks.queuePrefix(q)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Seek(s.ks.queueKey(q, from)); it.Valid() && len(out) < limit; it.Next() {
			k := it.Item().Key()
			e := Entry{Seq: u64(k[len(prefix):])}
			v, err := s.value(it.Item())
			if err != nil {
				return fault.E("store.queue", fault.Integrity, "unreadable queue entry", err)
			}
			copy(e.ID[:], v)
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
	prefix := s.ks.agencyKey(pReceipt, agency)
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(s.ks.receiptKey(agency, from)); it.Valid() && len(out) < limit; it.Next() {
			e := Entry{Seq: u64(it.Item().Key()[len(prefix):])}
			v, err := s.value(it.Item())
			if err == nil {
				err = decodeRecord(v, &e.Receipt)
			}
			if err != nil {
				return fault.E("store.receipts", fault.Integrity, "unreadable delivery report", err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// Header returns a telegram's header.
func (s *Store) Header(id telegram.ID) (telegram.Header, error) {
	var h telegram.Header
	err := s.view(func(txn *badger.Txn) (err error) { h, err = s.getHeader(txn, id); return })
	return h, err
}

// ForDelivery reads what a hand-out of telegram id to addressee a needs:
// its header, the addressee's custody state and a reader of its body
// whose first chunk is read already, from one snapshot. One read
// transaction instead of two per hand-out: every read transaction takes
// Badger's oracle lock, the most contended lock of a busy switch. A first
// chunk that fails to open is returned as the reader's first error.
func (s *Store) ForDelivery(id telegram.ID, a telegram.Address) (telegram.Header, custody.State, *Body, error) {
	var h telegram.Header
	var st custody.State
	var first []byte
	var firstErr error
	err := s.view(func(txn *badger.Txn) (err error) {
		if h, err = s.getHeader(txn, id); err != nil {
			return err
		}
		d, err := s.getDelivery(txn, id, a)
		if err != nil {
			return err
		}
		st = d.custody(s.quarantined(txn, SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}, d.Seq))
		if h.BodyLen > 0 {
			first, firstErr = s.chunk(txn, h.ID, 0)
		}
		return nil
	})
	if fault.Is(fault.NotExist, err) {
		err = fault.E("store.delivery", fault.Integrity, "telegram "+id.String()+" is queued but its records are missing", err)
	}
	return h, st, &Body{s: s, h: h, pre: first, preErr: firstErr, prefetched: h.BodyLen > 0}, err
}

// Heads returns the persisted heads of all of agency's sub-queues
// ([rank][class-1]) and of its receipt queue, from one snapshot.
func (s *Store) Heads(agency telegram.Address) (heads [4][4]uint64, receipts uint64, err error) {
	err = s.view(func(txn *badger.Txn) error {
		for r := range heads {
			for c := range heads[r] {
				q := SubQueue{Agency: agency, Prec: telegram.PrecedenceOfRank(r), Class: telegram.Classification(c + 1)}
				if heads[r][c], err = s.getU64(txn, s.ks.queueHeadKey(q)); err != nil {
					return err
				}
			}
		}
		receipts, err = s.getU64(txn, s.ks.receiptHeadKey(agency))
		return err
	})
	return heads, receipts, err
}

// Delivery returns a telegram's delivery state for one addressee.
func (s *Store) Delivery(id telegram.ID, a telegram.Address) (DeliveryState, error) {
	var d DeliveryState
	err := s.view(func(txn *badger.Txn) (err error) { d, err = s.getDelivery(txn, id, a); return })
	return d, err
}

// Body reads a telegram's body one chunk (and one short read transaction)
// at a time, so a slow reader holds neither the whole body in memory nor a
// long-lived snapshot.
type Body struct {
	s     *Store
	h     telegram.Header
	n     int64
	chunk []byte
	// The first chunk, read with the header (ForDelivery).
	prefetched bool
	pre        []byte
	preErr     error
}

// Body returns a reader for the body of telegram h.
func (s *Store) Body(h telegram.Header) *Body { return &Body{s: s, h: h} }

// Next returns the next chunk (valid until the following call), or io.EOF
// after the last. A chunk that fails to open is an Integrity error.
func (b *Body) Next() ([]byte, error) {
	if b.n*ChunkSize >= b.h.BodyLen {
		return nil, io.EOF
	}
	var err error
	if b.n == 0 && b.prefetched {
		b.chunk, err = b.pre, b.preErr
		b.pre, b.preErr = nil, nil
	} else {
		err = b.s.view(func(txn *badger.Txn) (err error) {
			b.chunk, err = b.s.chunk(txn, b.h.ID, uint32(b.n))
			return err
		})
	}
	if err != nil {
		return nil, fault.E("store.body", fault.Integrity, "telegram "+b.h.ID.String()+": body unreadable", err)
	}
	// A chunk is stored padded to its size class (file.go), or exact
	// (stores written before padding).
	want := min(ChunkSize, b.h.BodyLen-b.n*ChunkSize)
	if got := int64(len(b.chunk)); got != want && got != int64(chunkClass(int(want))) {
		return nil, fault.Errorf("store.body", fault.Integrity, "telegram %s: body chunk %d has the wrong length", b.h.ID, b.n)
	}
	b.n++
	return b.chunk[:want], nil
}

// chunk reads body chunk n of telegram id as stored (padded).
func (s *Store) chunk(txn *badger.Txn, id telegram.ID, n uint32) ([]byte, error) {
	num, err := s.number(txn, id)
	if err != nil {
		return nil, err
	}
	return s.get(txn, bodyKey(num, n))
}

// HeaderKey and BodyKey are the storage keys of telegram id's header and
// body chunk (for tests and tools that damage or inspect stored records);
// nil if the store holds no such telegram.
func (s *Store) HeaderKey(id telegram.ID) []byte {
	num, err := s.numberOf(id)
	if err != nil {
		return nil
	}
	return headerKey(num)
}

// BodyKey: see HeaderKey.
func (s *Store) BodyKey(id telegram.ID, chunk uint32) []byte {
	num, err := s.numberOf(id)
	if err != nil {
		return nil
	}
	return bodyKey(num, chunk)
}

func (s *Store) numberOf(id telegram.ID) (num uint64, err error) {
	err = s.view(func(txn *badger.Txn) error { num, err = s.number(txn, id); return err })
	return num, err
}

func (s *Store) getHeader(txn *badger.Txn, id telegram.ID) (telegram.Header, error) {
	var h telegram.Header
	num, err := s.number(txn, id)
	if err != nil {
		return h, err
	}
	v, err := s.get(txn, headerKey(num))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return h, fault.Errorf("store.header", fault.NotExist, "no telegram %s", id)
	}
	if err == nil {
		err = decodePadded(v, &h)
	}
	if err == nil && h.ID != id {
		err = fmt.Errorf("the header under its number is telegram %s's", h.ID)
	}
	if err != nil {
		return h, fault.E("store.header", fault.Integrity, "telegram "+id.String()+": header unreadable", err)
	}
	return h, nil
}

func (s *Store) getDelivery(txn *badger.Txn, id telegram.ID, a telegram.Address) (DeliveryState, error) {
	var d DeliveryState
	num, err := s.number(txn, id)
	if err != nil {
		return d, err
	}
	v, err := s.get(txn, s.ks.deliveryKey(num, id, a))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return d, fault.Errorf("store.delivery", fault.NotExist, "telegram %s has no addressee %s", id, a)
	}
	if err == nil {
		err = decodeRecord(v, &d)
	}
	if err != nil {
		return d, fault.E("store.delivery", fault.Integrity, "telegram "+id.String()+": delivery state unreadable", err)
	}
	return d, nil
}
