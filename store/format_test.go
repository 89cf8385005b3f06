package store

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// untar unpacks testdata/name into dir.
func untar(t *testing.T, name, dir string) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o700); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err == nil {
			err = os.WriteFile(p, b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// fixture1 is testdata/format1.tar.gz: a store written by the switch of
// format 1 (commit 912160a), with the telegrams its telegrams.json lists:
//
//	queued     HN.UBND → NA.UBND, info NA.TU; FLASH SECRET; ref "ref-1";
//	           100 bytes of "a"; expires 2100-01-01
//	large      TW.VPTW → NA.UBND; ROUTINE UNCLASSIFIED; 150 KiB (three
//	           chunks, in the value log); overdue in 50 years
//	delivered  HN.UBND → NA.UBND; PRIORITY SECRET; acknowledged, its
//	           report waiting for HN.UBND
//	deferred   CP.VPCP → HCM.UBND; IMMEDIATE TOP SECRET; deferred to
//	           2099-12-31 23:00, expires 2100-01-01
//	held       HN.UBND → DN.UBND; ROUTINE CONFIDENTIAL; held by an operator
type fixture1 struct {
	dir  string
	ring *crypto.Keyring
	ids  map[string]telegram.ID
	sums map[string]string
}

// openFixture unpacks testdata/format1.tar.gz, or format2.tar.gz: the
// same store as the switch of format 2 (commit f5ab9ee) left it after
// migrating it from format 1.
func openFixture(t *testing.T, name string) fixture1 {
	t.Helper()
	f := fixture1{dir: t.TempDir(), ids: map[string]telegram.ID{}, sums: map[string]string{}}
	untar(t, name, f.dir)
	var err error
	f.ring, err = crypto.OpenKeyring(filepath.Join(f.dir, "keyring"), crypto.Secret{Passphrase: []byte("format-1 fixture: a test key, not a secret")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "telegrams.json"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []struct {
		Name string
		ID   telegram.ID
		Body string
	}
	if err := json.Unmarshal(b, &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		f.ids[r.Name], f.sums[r.Name] = r.ID, r.Body
	}
	return f
}

// prefixCounts counts every live key of dir's store by its first byte.
func prefixCounts(t *testing.T, s *Store) map[byte]int {
	t.Helper()
	n := map[byte]int{}
	s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n[it.Item().Key()[0]]++
		}
		return nil
	})
	return n
}

// A store of format 1 or 2 opens as format 3: every record is moved to
// its new key, also when the move is cut short and taken up again at the
// next start, and every telegram keeps its state: queued, in the value
// log, delivered with its report waiting, deferred, held; its timers, its
// reference and its audit entries.
func TestFormat1IsMigrated(t *testing.T) { testMigrated(t, "format1.tar.gz", f1Prefixes, 1, 3) }

func TestFormat2IsMigrated(t *testing.T) { testMigrated(t, "format2.tar.gz", f2Prefixes, 2, 1) }

// testMigrated opens fixture, cut short after cut pages, then again.
func testMigrated(t *testing.T, fixture string, old []byte, from, cut int) {
	f := openFixture(t, fixture)
	data := filepath.Join(f.dir, "data")
	crash := errors.New("cut short")
	pages := 0
	_, err := Open(Options{Dir: data, Keyring: f.ring, onMigratePage: func(int) error {
		if pages++; pages == cut {
			return crash
		}
		return nil
	}})
	if !errors.Is(err, crash) {
		t.Fatalf("open cut short after %d pages: %v", cut, err)
	}
	s, err := Open(Options{Dir: data, Keyring: f.ring})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()

	n := prefixCounts(t, s)
	for _, p := range old {
		if n[p] != 0 {
			t.Errorf("%d records left under format-%d prefix %q", n[p], from, p)
		}
	}
	// 5 headers and their numbers (the delivered one's body went, its
	// header stays), 6 body chunks (1 + 3 + 1 + 1), 6 delivery states, 3
	// queue entries (FLASH twice, ROUTINE once), timers: 2 expiries, 1
	// overdue, 1 deferral.
	want := map[byte]int{pNumber: 5, pHeader: 5, pBody: 6, pDelivery: 6, pQueue: 3, pExpiry: 2, pOverdue: 1, pDeferral: 1}
	for p, w := range want {
		if n[p] != w {
			t.Errorf("%d records under %q, want %d", n[p], p, w)
		}
	}
	var v []byte
	s.db.View(func(txn *badger.Txn) (err error) { v, err = s.get(txn, metaKey("format")); return err })
	if u64(v) != FormatVersion {
		t.Fatalf("format %d after migration, want %d", u64(v), FormatVersion)
	}

	for name, id := range f.ids {
		h, err := s.Header(id)
		if err != nil || h.ID != id {
			t.Fatalf("%s: header %v, %v", name, h.ID, err)
		}
		var b bytes.Buffer
		err = writeBody(s, h, &b)
		if name == "delivered" {
			if err == nil {
				t.Errorf("the delivered telegram's body came back")
			}
			continue
		}
		if err != nil || fmt.Sprintf("%x", sha256.Sum256(b.Bytes())) != f.sums[name] {
			t.Fatalf("%s: body of %d bytes differs (%v)", name, b.Len(), err)
		}
	}
	state := func(name string, a telegram.Address) DeliveryState {
		d, err := s.Delivery(f.ids[name], a)
		if err != nil {
			t.Fatalf("%s to %s: %v", name, a, err)
		}
		return d
	}
	if d := state("delivered", "NA.UBND"); d.Status != telegram.Delivered {
		t.Errorf("delivered: %+v", d)
	}
	if d := state("deferred", "HCM.UBND"); !d.Deferred {
		t.Errorf("deferred: %+v", d)
	}
	flash := SubQueue{Agency: "NA.TU", Prec: telegram.Flash, Class: telegram.Secret}
	if e, err := s.ScanQueue(flash, 0, 10); err != nil || len(e) != 1 || e[0].ID != f.ids["queued"] {
		t.Fatalf("NA.TU's FLASH SECRET queue: %+v %v", e, err)
	}
	st, err := s.QueueStats("NA.UBND")
	if err != nil || len(st.Queues) != 2 || st.Queues[0].Waiting != 1 || st.Queues[1].Waiting != 1 || st.Queues[0].Oldest.IsZero() {
		t.Fatalf("NA.UBND's figures: %+v %v", st, err)
	}
	if st, _ := s.QueueStats("DN.UBND"); len(st.Queues) != 1 || st.Queues[0].Held != 1 {
		t.Fatalf("DN.UBND's figures: %+v", st)
	}
	if r, err := s.ScanReceipts("HN.UBND", 0, 10); err != nil || len(r) != 1 || r[0].Receipt.ID != f.ids["delivered"] {
		t.Fatalf("HN.UBND's reports: %+v %v", r, err)
	}
	far := time.Date(2101, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		kind byte
		want []string
	}{{DueExpiry, []string{"queued", "deferred"}}, {DueOverdue, []string{"large"}}, {DueDeferral, []string{"deferred"}}} {
		ids, _, err := s.Due(c.kind, far, nil, 10)
		if err != nil || len(ids) != len(c.want) {
			t.Fatalf("timers %q: %v %v, want %v", c.kind, ids, err, c.want)
		}
		for _, name := range c.want {
			found := false
			for _, id := range ids {
				found = found || id == f.ids[name]
			}
			if !found {
				t.Errorf("timers %q miss %s", c.kind, name)
			}
		}
	}
	if ids, _, _ := s.Due(DueExpiry, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), nil, 10); len(ids) != 0 {
		t.Errorf("expiries due in 2026: %v", ids)
	}
	again := Filing{Header: telegram.Header{From: "HN.UBND", To: []telegram.Address{"NA.UBND"}, Info: []telegram.Address{"NA.TU"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Subject: "queued flash", Ref: "ref-1"}, Body: bytes.Repeat([]byte("a"), 100)}
	if r, err := s.File(&again); err != nil || !r.Duplicate || r.ID != f.ids["queued"] {
		t.Fatalf("the same reference filed again: %+v %v", r, err)
	}
	es, err := s.QueryAudit(AuditQuery{ID: f.ids["queued"], Limit: 10})
	if err != nil || len(es) != 3 || es[0].Event != audit.Filed {
		t.Fatalf("audit entries of the queued telegram: %d %v", len(es), err)
	}
	es, err = s.QueryAudit(AuditQuery{Event: audit.Storage, Limit: 10})
	if err != nil || len(es) != from || !strings.Contains(es[len(es)-1].Reason, fmt.Sprintf("from format %d to format 3", from)) {
		t.Fatalf("migration entries %+v %v", es, err)
	}
	// It goes on working: the FLASH is delivered, a new telegram filed.
	e, _ := s.ScanQueue(flash, 0, 1)
	if done, err := s.Ack(Ack{Queue: flash, Seq: e[0].Seq, ID: e[0].ID, Terminal: "NA.TU/t", Head: e[0].Seq + 1}); !done || err != nil {
		t.Fatalf("ack after migration: %v %v", done, err)
	}
	if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Flash, ""), Body: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(Options{Dir: data, Keyring: f.ring})
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := s.QueryAudit(AuditQuery{Event: audit.Storage, Limit: 10}); len(es) != from {
		t.Errorf("a second start migrated again: %d entries", len(es))
	}
}

// A store of a newer format is refused, and left as it is.
func TestNewerFormatIsRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(metaKey("format"), s.sealValue(metaKey("format"), putU64(FormatVersion+1)))
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(Options{Dir: dir, Keyring: testRing(t, dir)})
	if err == nil || !strings.Contains(err.Error(), "newer dienbao") {
		t.Fatalf("open of format %d: %v", FormatVersion+1, err)
	}
}
