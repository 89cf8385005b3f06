package auditlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The indexes by telegram and by agency. An index record lists the
// entries of one commit that name one telegram or one agency, so a commit
// writes one record per telegram and per agency it touches rather than one
// key per entry:
//
//	I<telegram tag><batch tag:8> → indices   (batch tag: Tags.Batch of the
//	                                           telegram and the first index)
//	Y<agency tag><first index:8> → indices
//
// The value is the indices as uvarints, the first absolute and the rest
// as differences, sealed like every value. A telegram's records are found
// by its tag alone and sorted when read (they are few), so their keys
// carry no index: a telegram's records cannot be matched with an agency's
// by their keys. An agency's records sort by their first index, so a
// range is read from the record that holds its start. A Y record with an
// empty value is the form written before (one key per entry, the index in
// the key), still read.

// batch gathers the current commit's index entries (commit loop only).
type batch struct {
	byID     map[telegram.ID][]uint64
	byAgency map[telegram.Address][]uint64
}

func (b *batch) add(id telegram.ID, from, to telegram.Address, index uint64) {
	if b.byID == nil {
		b.byID, b.byAgency = map[telegram.ID][]uint64{}, map[telegram.Address][]uint64{}
	}
	if !id.IsZero() {
		b.byID[id] = append(b.byID[id], index)
	}
	if from != "" {
		b.byAgency[from] = append(b.byAgency[from], index)
	}
	if to != "" && to != from {
		b.byAgency[to] = append(b.byAgency[to], index)
	}
}

func (b *batch) reset() { b.byID, b.byAgency = nil, nil }

// Flush writes the index records of the entries appended since the last
// Flush, in tx (before it commits). Commit-loop only.
func (l *Log) Flush(tx Txn) error {
	defer l.batch.reset()
	for id, is := range l.batch.byID {
		k := append(l.tags.idPrefix(id), l.tags.Batch(id, is[0])...)
		if err := tx.Set(k, EncodeIndices(is)); err != nil {
			return err
		}
	}
	for a, is := range l.batch.byAgency {
		k := binary.BigEndian.AppendUint64(l.tags.agencyPrefix(a), is[0])
		if err := tx.Set(k, EncodeIndices(is)); err != nil {
			return err
		}
	}
	return nil
}

// EncodeIndices is an index record's value listing is (ascending).
func EncodeIndices(is []uint64) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(is)*2), is[0])
	for i := 1; i < len(is); i++ {
		b = binary.AppendUvarint(b, is[i]-is[i-1])
	}
	return b
}

var errIndexRecord = errors.New("index record damaged")

func decodeIndices(b []byte) ([]uint64, error) {
	var out []uint64
	var last uint64
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errIndexRecord
		}
		last += v
		out = append(out, last)
		b = b[n:]
	}
	return out, nil
}

// recordIndices are the indices of the index record at k (prefix plus 8
// bytes) with value v: the list, or the one index in the key if v is
// empty (the form written before).
func recordIndices(k, v []byte, openErr error) ([]uint64, error) {
	if openErr != nil {
		return nil, fault.E("store.audit", fault.Integrity, "an audit index record fails its integrity check", openErr)
	}
	if len(v) == 0 {
		return []uint64{binary.BigEndian.Uint64(k[len(k)-8:])}, nil
	}
	is, err := decodeIndices(v)
	if err != nil {
		return nil, fault.E("store.audit", fault.Integrity, "an audit index record is damaged", err)
	}
	return is, nil
}

// telegramIndices lists every index of telegram id's entries, ascending.
func (l *Log) telegramIndices(tx Txn, id telegram.ID) ([]uint64, error) {
	prefix := l.tags.idPrefix(id)
	var out []uint64
	err := tx.Values(prefix, prefix, false, func(k, v []byte, openErr error) (bool, error) {
		if len(k) != len(prefix)+8 {
			return true, nil
		}
		is, err := recordIndices(k, v, openErr)
		out = append(out, is...)
		return err == nil, err
	})
	slices.Sort(out)
	return out, err
}

// walkIndex visits the indices of the records under an agency's prefix
// in [lo, hi), in either direction, until fn returns false.
func walkIndex(tx Txn, prefix []byte, lo, hi uint64, reverse bool, fn func(uint64) (bool, error)) error {
	key := func(i uint64) []byte { return binary.BigEndian.AppendUint64(bytes.Clone(prefix), i) }
	visit := func(k, v []byte, openErr error) (bool, error) {
		if len(k) != len(prefix)+8 {
			return true, nil
		}
		is, err := recordIndices(k, v, openErr)
		if err != nil {
			return false, err
		}
		if reverse {
			slices.Reverse(is)
		}
		for _, i := range is {
			switch {
			case i >= hi && !reverse, i < lo && reverse:
				return false, nil
			case i < lo, i >= hi:
				continue
			}
			if more, err := fn(i); err != nil || !more {
				return false, err
			}
		}
		return true, nil
	}
	if reverse {
		return tx.Values(prefix, key(hi-1), true, visit)
	}
	// Start from the record that may hold lo: the last one starting at
	// or before it.
	start := lo
	err := tx.Values(prefix, key(lo), true, func(k, _ []byte, _ error) (bool, error) {
		if len(k) == len(prefix)+8 {
			start = binary.BigEndian.Uint64(k[len(prefix):])
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	return tx.Values(prefix, key(start), false, visit)
}
