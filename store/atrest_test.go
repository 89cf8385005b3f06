package store

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The disk shows opaque tags and record counts, not the metadata of the
// traffic (issue 15, finding 10). Telegrams of every precedence and
// classification, with references, expiries, speed-of-service targets and
// deferral, some delivered, one held, are filed; then every key and value
// Badger holds, in every version kept (deleted ones included), and every
// byte of every file in the folder, are searched for what they must not
// show: a telegram's ID or the filing time at its head (IDs are ULIDs); an
// agency's tag next to a precedence and classification, or joined to a
// telegram (only the per-agency lists, reports and indexes name a tag); a
// telegram's audit index key that carries an entry index (the agencies'
// index keys do, so the two would join);
// a key of a kind that differs in length from others of its kind; a
// header whose sealed length is not a power of two (plus the sealing's
// own bytes), which would show the length of its subject.
func TestDiskShowsNoMetadata(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	agencies := []telegram.Address{"HN.UBND", "NA.UBND", "NA.TU", "HCM.UBND", "DN.UBND"}
	var ids []telegram.ID
	headerLen := map[int]bool{}
	now := time.Now()
	for i, p := range telegram.Precedences {
		for c := telegram.Unclassified; c <= telegram.TopSecret; c++ {
			h := telegram.Header{From: agencies[i%5], To: []telegram.Address{agencies[(i+1)%5], agencies[(i+2)%5]},
				Info: []telegram.Address{agencies[(i+3)%5]}, Precedence: p, Classification: c,
				Subject: strings.Repeat("s", 1+int(c)*15+i*4), Ref: "ref-" + p.String() + c.String(),
				ExpiresAt: now.Add(time.Hour)}
			if c == telegram.Confidential {
				h.DeliverAt = now.Add(30 * time.Minute)
			}
			r, err := s.File(&Filing{Header: h, Body: bytes.Repeat([]byte{'b'}, 100+i*1000), SpeedTarget: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
	}
	// Deliver each telegram's first addressee; hold one.
	for i, p := range telegram.Precedences {
		for c := telegram.Unclassified; c <= telegram.TopSecret; c++ {
			q := SubQueue{Agency: agencies[(i+1)%5], Prec: p, Class: c}
			for _, e := range mustScan(t, s, q) {
				if _, err := s.Ack(Ack{Queue: q, Seq: e.Seq, ID: e.ID, Terminal: string(q.Agency) + "/t", Head: e.Seq + 1}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := s.Hold(ids[len(ids)-1], "operator", nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		h, err := s.Header(id)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		s.db.View(func(txn *badger.Txn) error {
			item, err := txn.Get(s.HeaderKey(h.ID))
			if err == nil {
				n = int(item.ValueSize())
			}
			return err
		})
		headerLen[n] = true
	}
	overhead := len(s.sealValue([]byte("k"), make([]byte, 256))) - 256
	tags := map[string]telegram.Address{}
	for _, a := range agencies {
		tags[string(s.ks.agencyTag(a))] = a
	}
	s.Close()

	// Keys and values, every version.
	db, err := badger.Open(BadgerOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	lengths := map[byte]map[int]bool{}
	keys := 0
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.KeyCopy(nil)
			keys++
			if lengths[k[0]] == nil {
				lengths[k[0]] = map[int]bool{}
			}
			lengths[k[0]][len(k)] = true
			if k[0] == pAuditByID && binary.BigEndian.Uint64(k[len(k)-8:]) < 1<<32 {
				t.Errorf("telegram index key %x ends in an audit index: it would join the agencies' index keys", k)
			}
			var v []byte
			if !item.IsDeletedOrExpired() {
				v, _ = item.ValueCopy(nil)
			}
			for _, id := range ids {
				for what, b := range map[string][]byte{"key": k, "value": v} {
					if bytes.Contains(b, id[:]) || bytes.Contains(b, id[:6]) {
						t.Errorf("%s %x shows telegram %s or its filing time", what, k, id)
					}
				}
			}
			for tag, a := range tags {
				if i := bytes.Index(k, []byte(tag)); i >= 0 && (i != 1 || !strings.ContainsRune("rRipwWvUY", rune(k[0]))) {
					t.Errorf("key %x shows %s's tag outside its own lists", k, a)
				}
				if bytes.Contains(v, []byte(tag)) {
					t.Errorf("the value of key %x shows %s's tag", k, a)
				}
			}
		}
		return nil
	})
	db.Close()
	for p, ls := range lengths {
		if len(ls) != 1 && p != pMeta {
			t.Errorf("keys under %q have %d lengths", p, len(ls))
		}
	}
	for _, p := range append(f1Prefixes, f2Prefixes...) {
		if lengths[p] != nil {
			t.Errorf("keys under old prefix %q", p)
		}
	}
	for n := range headerLen {
		if c := n - overhead; c&(c-1) != 0 || c < minChunkClass {
			t.Errorf("a header is stored in %d bytes: %d sealed, not a power of two from %d", n, c, minChunkClass)
		}
	}
	// Every byte of every file: no ID, no filing time.
	files := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files++
		for _, id := range ids {
			if bytes.Contains(b, id[:6]) {
				t.Errorf("%s shows the filing time of telegram %s", filepath.Base(p), id)
			}
		}
		return err
	})
	if err != nil || keys < 100 || files < 3 {
		t.Fatalf("searched %d keys in %d files (%v)", keys, files, err)
	}
	t.Logf("%d keys (all versions) and %d files searched", keys, files)
}

func mustScan(t *testing.T, s *Store, q SubQueue) []Entry {
	t.Helper()
	e, err := s.ScanQueue(q, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
