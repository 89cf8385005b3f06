package auditlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// memTxn is an in-memory Txn for the log's own unit tests (the store's
// tests run it over Badger, sealed).
type memTxn map[string][]byte

func (m memTxn) Get(k []byte) ([]byte, error) {
	v, ok := m[string(k)]
	if !ok {
		return nil, ErrNotFound
	}
	return v, nil
}
func (m memTxn) Set(k, v []byte) error { m[string(k)] = bytes.Clone(v); return nil }
func (m memTxn) sorted(prefix []byte) []string {
	var ks []string
	for k := range m {
		if bytes.HasPrefix([]byte(k), prefix) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}
func (m memTxn) Keys(prefix, seek []byte, reverse bool, fn func([]byte) (bool, error)) error {
	ks := m.sorted(prefix)
	if reverse {
		for i := len(ks) - 1; i >= 0; i-- {
			if ks[i] <= string(seek) {
				if more, err := fn([]byte(ks[i])); err != nil || !more {
					return err
				}
			}
		}
		return nil
	}
	for _, k := range ks {
		if k >= string(seek) {
			if more, err := fn([]byte(k)); err != nil || !more {
				return err
			}
		}
	}
	return nil
}
func (m memTxn) Values(prefix, seek []byte, reverse bool, fn func(k, v []byte, err error) (bool, error)) error {
	return m.Keys(prefix, seek, reverse, func(k []byte) (bool, error) { return fn(k, m[string(k)], nil) })
}

func meta(name string) []byte { return append([]byte{'m'}, name...) }

// tags are readable stand-ins for the store's opaque tags.
var tags = Tags{
	Agency:   func(a telegram.Address) []byte { return append([]byte(a), bytes.Repeat([]byte{0}, 16-len(a))...) },
	Telegram: func(id telegram.ID) []byte { return id[:] },
	Batch: func(id telegram.ID, first uint64) []byte {
		return binary.BigEndian.AppendUint64(nil, first^0x5a5a5a5a5a5a5a5a) // any 8 bytes that are not the index
	},
}

// Entries appended across a restart (Open on what was written) verify
// against a signed checkpoint: every inclusion proof, the consistency of
// two checkpoints, and the indexes by telegram and agency.
func TestAppendSignProve(t *testing.T) {
	tx := memTxn{}
	l, err := NewKey(tx, "dienbao/test", meta, tags)
	if err != nil {
		t.Fatal(err)
	}
	id := telegram.ID{1}
	at := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	var leaves [][]byte
	appendN := func(l *Log, n int) {
		for i := 0; i < n; i++ {
			idx := uint64(len(leaves))
			e := audit.Entry{Index: idx, At: at.Add(time.Duration(idx) * time.Second), Event: audit.Attempt, Actor: "x", From: "HN.UBND", To: "NA.TU"}
			if idx%10 == 0 {
				e.ID = id
			}
			if err := l.Append(tx, e); err != nil {
				t.Fatal(err)
			}
			if idx%7 == 6 || i == n-1 { // a commit of seven entries
				if err := l.Flush(tx); err != nil {
					t.Fatal(err)
				}
			}
			leaf, _ := audit.Leaf(e)
			leaves = append(leaves, leaf)
		}
	}
	appendN(l, 150)
	first, err := l.Sign(tx, 150)
	if err != nil {
		t.Fatal(err)
	}
	// A restart: the tree is rebuilt from what is stored.
	l, o, err := Open(tx, 150, meta, tags)
	if err != nil || len(o.Altered) != 0 || !o.HasCheckpoint || o.Checkpoint != 150 || !o.LastAt.Equal(at.Add(149*time.Second)) {
		t.Fatalf("Open = %+v, %v", o, err)
	}
	appendN(l, 221)
	second, err := l.Sign(tx, 371)
	if err != nil {
		t.Fatal(err)
	}
	cp1, err := audit.OpenCheckpoint(first.Note, l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	cp2, err := audit.OpenCheckpoint(second.Note, l.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	ids, err := l.EntriesOf(tx, id)
	if err != nil || len(ids) != 38 {
		t.Fatalf("EntriesOf = %d entries, %v; want 38", len(ids), err)
	}
	all := make([]uint64, 371)
	for i := range all {
		all[i] = uint64(i)
	}
	es, err := Proof(tx, all, 371)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if !bytes.Equal(e.Leaf, leaves[e.Index]) {
			t.Fatalf("leaf %d differs", e.Index)
		}
		if err := audit.VerifyInclusion(e.Index, 371, e.Leaf, e.Proof, cp2.Hash); err != nil {
			t.Fatalf("inclusion of %d: %v", e.Index, err)
		}
	}
	p, err := Consistency(tx, 150, 371)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyConsistency(150, 371, p, cp1.Hash, cp2.Hash); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	got, err := l.Select(tx, 371, Query{Agency: "NA.TU", Since: at.Add(100 * time.Second), Until: at.Add(109 * time.Second)})
	if err != nil || len(got) != 10 || got[0].Index != 100 {
		t.Fatalf("Select = %d entries from %v, %v; want 10 from 100", len(got), got, err)
	}
	var n int
	if err := Checkpoints(tx, 0, func(Checkpoint) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("Checkpoints: %d, %v", n, err)
	}
}

// A leaf changed after the tree stored its hash is named at Open.
func TestOpenNamesAnAlteredLeaf(t *testing.T) {
	tx := memTxn{}
	l, _ := NewKey(tx, "dienbao/test", meta, tags)
	for i := uint64(0); i < 5; i++ {
		if err := l.Append(tx, audit.Entry{Index: i, Event: audit.Filed, Actor: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Sign(tx, 5); err != nil {
		t.Fatal(err)
	}
	forged, _ := audit.Leaf(audit.Entry{Index: 3, Event: audit.Filed, Actor: "forged"})
	tx.Set(LeafKey(3), forged)
	_, o, err := Open(tx, 5, meta, tags)
	if err != nil || len(o.Altered) != 1 || o.Altered[0] != 3 {
		t.Fatalf("Open = %+v, %v; want entry 3 altered", o, err)
	}
	if _, _, err := Open(memTxn{string(LeafKey(0)): forged}, 1, meta, tags); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("a log with entries and no key opened: %v", err)
	}
}

// A query with a scan budget stops after reading that many entries and
// says where to go on; paging on covers the whole range exactly once.
func TestScanBudget(t *testing.T) {
	tx := memTxn{}
	l, _ := NewKey(tx, "dienbao/test", meta, tags)
	for i := uint64(0); i < 250; i++ {
		e := audit.Entry{Index: i, Event: audit.Attempt, Actor: "x"}
		if i == 5 || i == 180 {
			e.Event = audit.Parked
		}
		if err := l.Append(tx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, newest := range []bool{false, true} {
		q := Query{Event: audit.Parked, Scan: 100, Newest: newest}
		var found []uint64
		pages := 0
		for {
			es, resume, err := l.SelectPage(tx, 250, q)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range es {
				found = append(found, e.Index)
			}
			if resume == 0 {
				break
			}
			if newest {
				q.To = resume
			} else {
				q.From = resume
			}
		}
		want := "[5 180]"
		if newest {
			want = "[180 5]"
		}
		if fmt.Sprint(found) != want || pages != 3 {
			t.Fatalf("newest %v: found %v in %d pages, want %s in 3", newest, found, pages, want)
		}
	}
}
