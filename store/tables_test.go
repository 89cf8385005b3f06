package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// A table damaged on disk (64 bytes of a data block overwritten) is
// refused at open with an integrity error naming it, instead of a panic
// inside Badger, or Badger dropping the table and opening without it; an
// intact store opens as before.
func TestDamagedTableRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	fileTables(t, s)
	s.Close() // flushes the memtables into a table
	s, _ = open(t, dir)
	s.Close()
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatal("no table written")
	}
	b, err := os.ReadFile(ssts[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		b[len(b)/3+i] ^= 0xff
	}
	if err := os.WriteFile(ssts[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(Options{Dir: dir, Keyring: testRing(t, dir)})
	if !fault.Is(fault.Integrity, err) || !strings.Contains(err.Error(), filepath.Base(ssts[0])) {
		t.Fatalf("open with a damaged table: %v, want an integrity error naming %s", err, filepath.Base(ssts[0]))
	}
}

// A start checks only the tables it has not checked before (or that
// changed since), so it takes the same time whatever the backlog; damage
// that changes neither a table's size nor its time is the scrub's to
// find, and it reports it once, audited.
func TestScrubFindsWhatStartSkips(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	fileTables(t, s)
	s.Close()
	o := BadgerOptions(dir)
	if n, err := verifyTables(dir, o); err != nil || n == 0 {
		t.Fatalf("first check: %d tables, %v", n, err)
	}
	if n, err := verifyTables(dir, o); err != nil || n != 0 {
		t.Fatalf("second check: %d tables checked again, %v; want none", n, err)
	}
	ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst"))
	now := time.Now()
	os.Chtimes(ssts[0], now, now)
	if n, err := verifyTables(dir, o); err != nil || n != 1 {
		t.Fatalf("after a table changed time: %d tables checked, %v; want 1", n, err)
	}
	// Bit rot: the bytes change, the size and time do not.
	fi, _ := os.Stat(ssts[0])
	b, _ := os.ReadFile(ssts[0])
	for i := range 64 {
		b[len(b)/3+i] ^= 0xff
	}
	os.WriteFile(ssts[0], b, 0o600)
	os.Chtimes(ssts[0], fi.ModTime(), fi.ModTime())
	s, _ = open(t, dir) // not checked at start
	defer s.Close()
	if res, err := s.Scrub(context.Background(), false); err != nil || res.Checked != 0 || len(res.Damaged) != 0 {
		t.Fatalf("scrub of new tables: %+v %v; want nothing checked", res, err)
	}
	res, err := s.Scrub(context.Background(), true)
	base := filepath.Base(ssts[0])
	if err != nil || res.Checked == 0 || len(res.Damaged) != 1 || res.Damaged[0] != base {
		t.Fatalf("full scrub: %+v %v; want %s damaged", res, err, base)
	}
	if res, _ := s.Scrub(context.Background(), true); len(res.Damaged) != 0 {
		t.Fatalf("a second scrub reported %v again", res.Damaged)
	}
	if d := s.DamagedTables(); len(d) != 1 || d[0] != base {
		t.Fatalf("DamagedTables: %v", d)
	}
	es, err := s.QueryAudit(AuditQuery{Event: audit.Integrity, Limit: 10})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Reason, base) {
		t.Fatalf("integrity entries: %+v %v", es, err)
	}
}

// fileTables files 2,000 telegrams of 1,000 bytes: enough for a table.
func fileTables(t *testing.T, s *Store) {
	t.Helper()
	for i := range 2000 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
			Body: bytes.Repeat([]byte{byte(i)}, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
}
