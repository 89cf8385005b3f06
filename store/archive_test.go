package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Old audit entries move to an archive file and out of the store; the
// tree's hashes stay, so the log still verifies against every checkpoint,
// queries and proofs still find them (read back from the file), and an
// auditor can check a proof's archived leaf against the file without any
// key. A missing file is named when its entries are asked for.
func TestAuditArchive(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(t.TempDir(), "archive")
	set := func(o *Options) { o.ArchiveDir = arch }
	s, _ := openWith(t, dir, set)
	var ids []telegram.ID
	for i := 0; i < 200; i++ {
		r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND", "NA.TU"}, telegram.Routine, ""), Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	first, err := s.QueryAudit(AuditQuery{ID: ids[0], Limit: 10})
	if err != nil || len(first) != 3 {
		t.Fatalf("entries of the first telegram: %d %v", len(first), err)
	}
	cp, err := s.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing filed before an hour ago: nothing to archive.
	if res, err := s.Archive(time.Now().Add(-time.Hour), "auditor"); err != nil || res.Entries != 0 {
		t.Fatalf("archive of entries older than an hour: %+v %v", res, err)
	}
	res, err := s.Archive(time.Now().Add(time.Hour), "auditor")
	want := cp.Size - cp.Size%64 // the tree's last partial group stays
	if err != nil || res.Entries != want || res.Below != want || len(res.Files) != 1 || res.Files[0] != ArchiveName(0, want) {
		t.Fatalf("archive: %+v %v; want %d entries in one file", res, err, want)
	}
	s.db.View(func(txn *badger.Txn) error {
		for _, i := range []uint64{0, want - 1} {
			if _, err := txn.Get(auditlog.LeafKey(i)); !errors.Is(err, badger.ErrKeyNotFound) {
				t.Errorf("leaf %d is still in the store: %v", i, err)
			}
		}
		if _, err := txn.Get(auditlog.LeafKey(want)); err != nil {
			t.Errorf("leaf %d (not archived) is gone: %v", want, err)
		}
		return nil
	})
	check := func() {
		t.Helper()
		checkLog(t, s) // every leaf, every checkpoint, inclusion and consistency
		again, err := s.QueryAudit(AuditQuery{ID: ids[0], Limit: 10})
		if err != nil || len(again) != len(first) || again[0].Index != first[0].Index || again[2].Event != first[2].Event {
			t.Fatalf("entries of the first telegram after archiving: %+v %v", again, err)
		}
		b, err := s.Proof(ids[0], func(uint64) (SignedCheckpoint, error) { return cp, nil })
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Check(s.VerifierKey()); err != nil {
			t.Fatal(err)
		}
		head, hashes, err := audit.ReadArchive(filepath.Join(arch, res.Files[0]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := audit.OpenCheckpoint([]byte(head.Checkpoint), head.VerifierKey); err != nil || head.VerifierKey != s.VerifierKey() {
			t.Fatalf("the archive's checkpoint: %v", err)
		}
		for _, e := range b.Entries {
			if e.Archive != res.Files[0] || !bytes.Equal(hashes[e.Index], audit.LeafHash(e.Leaf)) {
				t.Fatalf("entry %d: archive %q, hash in the file %x", e.Index, e.Archive, hashes[e.Index])
			}
		}
	}
	check()
	es, err := s.QueryAudit(AuditQuery{Event: audit.Archived, Limit: 10})
	if err != nil || len(es) != 1 || es[0].Actor != "auditor" || !strings.Contains(es[0].Reason, res.Files[0]) {
		t.Fatalf("archived entries: %+v %v", es, err)
	}
	// Run again: nothing new below the checkpoint's last full group.
	if again, err := s.Archive(time.Now().Add(time.Hour), "switch"); err != nil || again.Entries != 0 || again.Below != want {
		t.Fatalf("second archive: %+v %v", again, err)
	}
	s.Close()
	s, _ = openWith(t, dir, set)
	if s.ArchivedBelow() != want {
		t.Fatalf("archived below %d after a restart, want %d", s.ArchivedBelow(), want)
	}
	check()
	// The file moved away: its entries are named as missing, never made up.
	os.Rename(filepath.Join(arch, res.Files[0]), filepath.Join(arch, "elsewhere"))
	s.Close()
	s, _ = openWith(t, dir, set)
	defer s.Close()
	if _, err := s.QueryAudit(AuditQuery{ID: ids[0], Limit: 10}); err == nil || !strings.Contains(err.Error(), "is missing") {
		t.Fatalf("query of archived entries without their file: %v", err)
	}
	if es, err := s.QueryAudit(AuditQuery{ID: ids[199], Limit: 10}); err != nil || len(es) != 3 {
		t.Fatalf("entries still in the store: %d %v", len(es), err)
	}
}
