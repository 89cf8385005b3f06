package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/dienbao/dienbao/store/auditlog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
	"golang.org/x/mod/sumdb/tlog"
)

// tlogOf is an independent implementation of the tree (golang.org/x/mod's
// tlog) over the store's leaves, for checking ours against.
type tlogOf struct {
	leaves [][]byte
	hashes []tlog.Hash
}

func newTlog(t *testing.T, s *Store) *tlogOf {
	t.Helper()
	l := &tlogOf{}
	err := s.AuditLeaves(0, 1<<30, func(i uint64, leaf []byte) error {
		if i != uint64(len(l.leaves)) {
			return fmt.Errorf("leaf %d at position %d", i, len(l.leaves))
		}
		hs, err := tlog.StoredHashes(int64(i), leaf, l)
		l.hashes = append(l.hashes, hs...)
		l.leaves = append(l.leaves, append([]byte(nil), leaf...))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (l *tlogOf) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

func (l *tlogOf) root(t *testing.T, size uint64) tlog.Hash {
	t.Helper()
	h, err := tlog.TreeHash(int64(size), l)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func toTlog(p [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		copy(out[i][:], h)
	}
	return out
}

// checkLog checks everything the store says about its log against the
// independent implementation: every stored checkpoint's signature and root,
// a fresh checkpoint, inclusion proofs for a sample of entries and
// consistency proofs between the checkpoints. It returns the log size.
func checkLog(t *testing.T, s *Store) uint64 {
	t.Helper()
	cp, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	l := newTlog(t, s)
	if uint64(len(l.leaves)) != cp.Size || s.AuditSize() != cp.Size {
		t.Fatalf("%d leaves, checkpoint of %d, AuditSize %d", len(l.leaves), cp.Size, s.AuditSize())
	}
	var cps []audit.Checkpoint
	err = s.Checkpoints(0, func(sc SignedCheckpoint) error {
		c, err := audit.OpenCheckpoint(sc.Note, s.VerifierKey())
		if err != nil {
			return err
		}
		if c.Size != sc.Size {
			return fmt.Errorf("checkpoint stored at size %d says %d", sc.Size, c.Size)
		}
		if th := l.root(t, c.Size); string(th[:]) != string(c.Hash) {
			return fmt.Errorf("checkpoint of size %d: root differs from tlog's", c.Size)
		}
		cps = append(cps, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(cps) == 0 || cps[len(cps)-1].Size != cp.Size {
		t.Fatalf("the fresh checkpoint (size %d) is not the last stored one", cp.Size)
	}
	last := cps[len(cps)-1]
	s.db.View(func(txn *badger.Txn) error {
		for i := uint64(0); i < last.Size; i += 1 + last.Size/50 {
			es, err := auditlog.Proof(auditTxn{s, wtxn{Txn: txn}}, []uint64{i}, last.Size)
			if err != nil {
				t.Fatal(err)
			}
			p := es[0].Proof
			if err := tlog.CheckRecord(toTlog(p), int64(last.Size), l.root(t, last.Size), int64(i), tlog.RecordHash(l.leaves[i])); err != nil {
				t.Fatalf("inclusion of %d in %d: %v", i, last.Size, err)
			}
		}
		return nil
	})
	for i := 1; i < len(cps); i++ {
		a, b := cps[i-1], cps[i]
		p, err := s.ConsistencyProof(a.Size, b.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(toTlog(p), int64(b.Size), l.root(t, b.Size), int64(a.Size), l.root(t, a.Size)); err != nil {
			t.Fatalf("consistency %d → %d: %v", a.Size, b.Size, err)
		}
	}
	return cp.Size
}

// record appends n entries, some one commit each and most grouped.
func record(t *testing.T, s *Store, n int, tag string) {
	t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		e := AuditEntry{Actor: "test", Event: audit.Security, Reason: fmt.Sprintf("%s %d", tag, i)}
		if i%10 == 0 {
			if err := s.Record(e); err != nil {
				t.Fatal(err)
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Record(e); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
}

// The tree the store keeps, its checkpoints and its proofs agree with an
// independent implementation, across group boundaries, grouped commits,
// and restarts.
func TestAuditTreeAgreesWithTlog(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	for _, n := range []int{1, 2, 63, 64, 200} {
		record(t, s, n, "first")
		checkLog(t, s)
	}
	vkey := s.VerifierKey()
	s.Close()
	s, _ = open(t, dir) // the tree is reloaded from its stored groups
	defer s.Close()
	if s.VerifierKey() != vkey {
		t.Fatal("the verifier key changed across a restart")
	}
	record(t, s, 4097, "second") // past a group of groups (64 × 64)
	// Closed without a checkpoint, as after a crash: the partial groups
	// were never written and are recomputed at Open.
	s.Close()
	s, _ = open(t, dir)
	defer s.Close()
	record(t, s, 70, "third")
	if got := checkLog(t, s); got != 1+2+63+64+200+4097+70 {
		t.Fatalf("log of %d entries", got)
	}
}

// Entry times never go backwards, even when the clock does.
func TestAuditTimesAreMonotonic(t *testing.T) {
	dir := t.TempDir()
	var back atomic.Bool
	s, err := Open(Options{Dir: dir, Keyring: testRing(t, dir), Now: func() time.Time {
		if back.Load() {
			return time.Unix(1, 0) // 1970
		}
		return time.Now()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	record(t, s, 3, "a")
	back.Store(true)
	record(t, s, 3, "b")
	es, err := s.Audit(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].At.Before(es[i-1].At) {
			t.Fatalf("entry %d at %v is before entry %d at %v", i, es[i].At, i-1, es[i-1].At)
		}
	}
}

// tamper rewrites stored leaves as someone holding the storage key could:
// sealed correctly, so only the Merkle tree can tell.
func tamper(t *testing.T, s *Store, fn func(txn *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte))) {
	t.Helper()
	err := s.db.Update(func(txn *badger.Txn) error {
		leaf := func(i uint64) []byte {
			v, err := s.get(txn, auditlog.LeafKey(i))
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		put := func(i uint64, v []byte) {
			if err := txn.Set(auditlog.LeafKey(i), s.sealValue(auditlog.LeafKey(i), v)); err != nil {
				t.Fatal(err)
			}
		}
		fn(txn, leaf, put)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// verifyAll runs the auditor's verification over the stored log.
func verifyAll(t *testing.T, s *Store) error {
	t.Helper()
	v := audit.NewVerifier()
	s.Checkpoints(0, func(sc SignedCheckpoint) error {
		c, err := audit.OpenCheckpoint(sc.Note, s.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		v.Expect(c)
		return nil
	})
	err := s.AuditLeaves(0, 1<<30, func(i uint64, leaf []byte) error { return v.Add(i, leaf) })
	if err == nil {
		err = v.Finish()
	}
	var m *audit.Mismatch
	if errors.As(err, &m) && m.Checkpoint > 0 {
		located, lerr := v.Locate(s.ConsistencyProof)
		if lerr != nil {
			t.Fatal(lerr)
		}
		return located
	}
	return err
}

func TestVerifyNamesTheTamperedEntry(t *testing.T) {
	const size = 300
	cases := []struct {
		name  string
		index uint64
		do    func(txn *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte))
		want  string
	}{
		{"altered", 137, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
			e, _ := audit.ParseLeaf(leaf(137))
			e.Reason = "nothing happened here"
			b, _ := audit.Leaf(e)
			put(137, b)
		}, "entry 137 is not the entry the signed checkpoint"},
		{"altered, time only", 64, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
			e, _ := audit.ParseLeaf(leaf(64))
			e.At = e.At.Add(-time.Hour)
			b, _ := audit.Leaf(e)
			put(64, b)
		}, "entry 64 is not the entry the signed checkpoint"},
		{"removed", 200, func(txn *badger.Txn, _ func(uint64) []byte, _ func(uint64, []byte)) {
			txn.Delete(auditlog.LeafKey(200))
		}, "entry 200 is missing"},
		{"reordered", 90, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
			a, b := leaf(90), leaf(91)
			put(90, b)
			put(91, a)
		}, "entry 91 is stored at index 90"},
		{"reordered, indices rewritten", 10, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
			a, _ := audit.ParseLeaf(leaf(10))
			b, _ := audit.ParseLeaf(leaf(11))
			a.Index, b.Index = 11, 10
			la, _ := audit.Leaf(a)
			lb, _ := audit.Leaf(b)
			put(10, lb)
			put(11, la)
		}, "entry 10 is not the entry the signed checkpoint"},
		{"not canonical", 5, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
			var m map[string]any
			json.Unmarshal(leaf(5), &m)
			b, _ := json.Marshal(m) // same content, keys sorted
			put(5, b)
		}, "audit leaf 5 is not in canonical form"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, _ := open(t, t.TempDir())
			defer s.Close()
			record(t, s, 99, "a")
			s.Checkpoint() // 100
			record(t, s, size-100, "b")
			s.Checkpoint() // 300
			if err := verifyAll(t, s); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tamper(t, s, c.do)
			err := verifyAll(t, s)
			var m *audit.Mismatch
			if !errors.As(err, &m) {
				t.Fatalf("verify after tampering: %v, want a mismatch", err)
			}
			if m.Index != c.index || !strings.Contains(m.Why, c.want) {
				t.Fatalf("verify named entry %d (%s), want %d (%s)", m.Index, m.Why, c.index, c.want)
			}
		})
	}
}

// A query by telegram or agency reads the index; the results are exact
// and in the order asked.
func TestQueryAudit(t *testing.T) {
	s, _ := open(t, t.TempDir())
	defer s.Close()
	var ids []telegram.ID
	for i := 0; i < 30; i++ {
		to := telegram.Address("NA.TU")
		if i%3 == 0 {
			to = "DN.UBND"
		}
		r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{to}, telegram.Routine, ""), Body: []byte("x"), Actor: "HN.UBND/t"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	q := func(aq AuditQuery) []AuditEntry {
		es, err := s.QueryAudit(aq)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	if es := q(AuditQuery{ID: ids[7]}); len(es) != 2 || es[0].Event != audit.Filed || es[1].Event != audit.Queued || es[1].To != "NA.TU" {
		t.Fatalf("by ID: %+v", es)
	}
	if es := q(AuditQuery{Agency: "DN.UBND"}); len(es) != 10 {
		t.Fatalf("by addressee: %d entries, want 10", len(es))
	}
	if es := q(AuditQuery{Agency: "HN.UBND", Event: audit.Filed, Newest: true, Limit: 4}); len(es) != 4 || es[0].ID != ids[29] || es[3].ID != ids[26] {
		t.Fatalf("newest filed by sender: %+v", es)
	}
	all := q(AuditQuery{Limit: 1000})
	if len(all) != 60 {
		t.Fatalf("%d entries, want 60", len(all))
	}
	page := q(AuditQuery{From: 10, To: 20})
	if len(page) != 10 || page[0].Index != 10 || page[9].Index != 19 {
		t.Fatalf("index range: %d entries from %d", len(page), page[0].Index)
	}
	mid := all[30].At
	if es := q(AuditQuery{Since: mid, Limit: 1000}); len(es) == 0 || es[0].At.Before(mid) || es[len(es)-1].Index != 59 {
		t.Fatalf("since: %d entries", len(es))
	}
	if es := q(AuditQuery{Until: mid, Newest: true, Limit: 1000}); len(es) == 0 || es[0].At.After(mid) || es[len(es)-1].Index != 0 {
		t.Fatalf("until: %d entries", len(es))
	}
}

// A leaf altered after it was signed is reported when the store opens, and
// does not slip into the tree: checkpoints signed afterwards stay
// consistent with the earlier ones, and verification names the entry.
func TestOpenReportsAlteredLeaf(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	record(t, s, 100, "a")
	if _, err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	tamper(t, s, func(_ *badger.Txn, leaf func(uint64) []byte, put func(uint64, []byte)) {
		e, _ := audit.ParseLeaf(leaf(70)) // in the last, partial group of 64
		e.Actor = "someone else"
		b, _ := audit.Leaf(e)
		put(70, b)
	})
	s.Close()
	s, _ = open(t, dir)
	defer s.Close()
	es, err := s.QueryAudit(AuditQuery{Event: audit.Integrity})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Reason, "audit entry 70 ") {
		t.Fatalf("integrity entries at open: %+v %v", es, err)
	}
	record(t, s, 10, "b")
	if _, err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	var m *audit.Mismatch
	if err := verifyAll(t, s); !errors.As(err, &m) || m.Index != 70 || strings.Contains(m.Why, "two different logs") {
		t.Fatalf("verify: %v", err)
	}
}
