package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	for i := range 2000 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
			Body: bytes.Repeat([]byte{byte(i)}, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
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
