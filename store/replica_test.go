package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The group (switch/group) is replaced here by a function that applies
// each entry to every replica in turn, in order: what the store must do
// is the same on each, and that is what these tests check. The group
// itself, with Raft and real processes, is cmd/switchd's group_test.go.

type testGroup struct {
	t    *testing.T
	reps []*Replica
	next uint64
	fail error // the next Replicate fails with it
}

func newTestGroup(t *testing.T, n int) *testGroup {
	g := &testGroup{t: t, next: 1}
	for range n {
		dir := filepath.Join(t.TempDir(), "store")
		r, err := OpenReplica(dir, testRing(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		g.reps = append(g.reps, r)
	}
	return g
}

func (g *testGroup) replicate(entry []byte) error {
	if g.fail != nil {
		err := g.fail
		g.fail = nil
		return err
	}
	for _, r := range g.reps {
		if err := r.ApplyEntry(g.next, entry); err != nil {
			return err
		}
	}
	g.next++
	return nil
}

// open opens the store on replica i, as that node's while it leads.
func (g *testGroup) open(i int) *Store {
	r := g.reps[i]
	s, err := Open(Options{Dir: r.dir, DB: r.DB(), Keyring: r.Keyring(), Replicate: g.replicate, Origin: "test/group"})
	if err != nil {
		g.t.Fatal(err)
	}
	return s
}

func leaves(t *testing.T, s *Store) [][]byte {
	var out [][]byte
	if err := s.AuditLeaves(0, 1<<20, func(_ uint64, leaf []byte) error {
		out = append(out, append([]byte(nil), leaf...))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// Every replica holds the same records, each sealed with its own
// keyring; another node opened as the new leader finds every telegram,
// the same audit log, and goes on from it.
func TestReplicasHoldTheSameRecords(t *testing.T) {
	g := newTestGroup(t, 2)
	a := g.open(0)
	var ids []telegram.ID
	for i := range 20 {
		res, err := a.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Precedences[i%4], ""), Body: []byte("body"), Actor: "t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	la := leaves(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// Same keys on both; the values differ (each node's own keyring) and
	// open to the same bytes.
	rawA, rawB := dump(t, g.reps[0].DB()), dump(t, g.reps[1].DB())
	same := 0
	for k, v := range rawA {
		if localKeys[k] || k == string(appliedKey) {
			continue
		}
		w, ok := rawB[k]
		if !ok {
			t.Fatalf("record %q on node 1 only", k[:1])
		}
		if len(v) > 0 && bytes.Equal(v, w) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d records sealed identically on both nodes: each must seal with its own keyring", same)
	}

	b := g.open(1)
	defer b.Close()
	for _, id := range ids {
		if h, err := b.Header(id); err != nil || h.ID != id {
			t.Fatalf("the new leader does not find %s: %v", id, err)
		}
	}
	if lb := leaves(t, b); len(lb) != len(la) || !bytes.Equal(bytes.Join(lb, nil), bytes.Join(la, nil)) {
		t.Fatalf("audit logs differ: %d and %d entries", len(la), len(lb))
	}
	if b.SuspectBelow() == 0 {
		t.Error("a new leader does not treat what was in flight as after a crash")
	}
	res, err := b.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Flash, ""), Body: []byte("after"), Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Header(res.ID); err != nil {
		t.Fatal(err)
	}
}

// A failed entry answers its callers with the group's error and fences
// the store: nothing more is committed from a view that may be behind.
func TestFailedEntryFences(t *testing.T) {
	g := newTestGroup(t, 1)
	s := g.open(0)
	defer s.Close()
	g.fail = fault.E("group", fault.Unavailable, "no quorum")
	_, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Routine, ""), Body: []byte("x"), Actor: "t"})
	if err == nil || !fault.Is(fault.Unavailable, err) {
		t.Fatalf("the first filing: %v, want the group's error", err)
	}
	_, err = s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Routine, ""), Body: []byte("y"), Actor: "t"})
	if !errors.Is(err, ErrFenced) {
		t.Fatalf("after a failed entry: %v, want ErrFenced", err)
	}
}

// A snapshot carries every record but the node's own, and loads on a
// node with another keyring; a stream cut short leaves the records as
// they were.
func TestSnapshotLoads(t *testing.T) {
	g := newTestGroup(t, 1)
	s := g.open(0)
	for range 10 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Routine, ""), Body: []byte("b"), Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	want := leaves(t, s)
	s.Close()
	var buf bytes.Buffer
	applied, err := g.reps[0].WriteSnapshot(&buf)
	if err != nil || applied != g.next-1 {
		t.Fatalf("snapshot at %d (%v), want %d", applied, err, g.next-1)
	}
	c := newTestGroup(t, 1)
	if _, err := c.reps[0].LoadSnapshot(bytes.NewReader(buf.Bytes()[:buf.Len()/2])); err == nil {
		t.Fatal("a cut-off snapshot loaded")
	}
	got, err := c.reps[0].LoadSnapshot(bytes.NewReader(buf.Bytes()))
	if err != nil || got != applied {
		t.Fatalf("loaded at %d (%v), want %d", got, err, applied)
	}
	c.next = got + 1
	s2 := c.open(0)
	defer s2.Close()
	if l := leaves(t, s2); !bytes.Equal(bytes.Join(l, nil), bytes.Join(want, nil)) {
		t.Fatalf("the loaded node's audit log differs (%d and %d entries)", len(l), len(want))
	}
}

// An entry that is not one is refused, and changes nothing.
func TestMalformedEntryRefused(t *testing.T) {
	g := newTestGroup(t, 1)
	for _, e := range [][]byte{{9}, {entryVersion, 5}, {entryVersion, 1, wSeal, 200}} {
		if err := g.reps[0].ApplyEntry(1, e); !fault.Is(fault.Integrity, err) {
			t.Errorf("entry %x: %v, want an integrity error", e, err)
		}
	}
	if i, _ := g.reps[0].Applied(); i != 0 {
		t.Errorf("applied %d after refused entries", i)
	}
}

func dump(t *testing.T, db *badger.DB) map[string][]byte {
	out := map[string][]byte{}
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(it.Item().KeyCopy(nil))] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
