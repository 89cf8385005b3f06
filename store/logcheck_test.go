package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// fileEach files n telegrams one commit each, with bodies of size bytes,
// and returns their IDs.
func fileEach(t *testing.T, s *Store, n, size int) []telegram.ID {
	t.Helper()
	ids := make([]telegram.ID, n)
	for i := range ids {
		r, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
			Body: bytes.Repeat([]byte{byte(i), byte(i >> 8)}, size/2)})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = r.ID
	}
	return ids
}

// logWithData returns the one log file with the suffix in dir that holds
// entries, and its entries.
func logWithData(t *testing.T, dir, suffix string) (string, []logEntry) {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	var found string
	var entries []logEntry
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		var es []logEntry
		for off := logFileHeader; ; {
			e, ok := readLogEntry(b, off)
			if !ok {
				break
			}
			es, off = append(es, e), e.end
		}
		if len(es) > 0 {
			if found != "" {
				t.Fatalf("two %s files with entries: %s and %s", suffix, found, n)
			}
			found, entries = n, es
		}
	}
	if found == "" {
		t.Fatalf("no %s file with entries in %s", suffix, dir)
	}
	return found, entries
}

// flip inverts n bytes of a file at off.
func flip(t *testing.T, path string, off, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b[off+i] ^= 0xff
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// readable counts the telegrams among ids whose header and whole body
// can be read.
func readable(s *Store, ids []telegram.ID) (n int) {
	for _, id := range ids {
		h, err := s.Header(id)
		if err == nil && writeBody(s, h, io.Discard) == nil {
			n++
		}
	}
	return n
}

// A write-ahead log damaged in the middle (16 bytes flipped, as in the
// fault report) is refused at open, naming the file, the offset and the
// telegrams whose filing would be lost; Badger alone opens it and drops
// every commit after the damage without a word. With AcceptLoss it opens
// without them, and the loss is in the audit log.
func TestDamagedWriteAheadLogRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	const n = 200
	ids := fileEach(t, s, n, 100)
	img := crashImage(t, dir)
	mem, entries := logWithData(t, img, ".mem")
	mid := entries[len(entries)/2]
	flip(t, mem, (mid.off+mid.end)/2, 16)

	_, err := Open(Options{Dir: img, Keyring: testRing(t, img)})
	if !errors.Is(err, ErrDamagedLog) || !fault.Is(fault.Integrity, err) || !strings.Contains(err.Error(), filepath.Base(mem)) ||
		!strings.Contains(err.Error(), "--accept-loss") {
		t.Fatalf("open with a damaged write-ahead log: %v, want ErrDamagedLog naming %s", err, filepath.Base(mem))
	}
	named := 0
	for _, id := range ids {
		if strings.Contains(err.Error(), id.String()) {
			named++
		}
	}
	refusal := err.Error()

	s2, err := Open(Options{Dir: img, Keyring: testRing(t, img), AcceptLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	kept := readable(s2, ids)
	// Every lost filing is counted, except the damaged commit's own, and
	// the first 50 are named.
	lost := n - kept - 1
	if kept == n || named != min(lost, 50) || !strings.Contains(refusal, fmt.Sprintf("%d telegrams filed", lost)) {
		t.Fatalf("%d of %d telegrams kept, %d named as lost; want %d counted: %.300s", kept, n, named, lost, refusal)
	}
	es, err := s2.QueryAudit(AuditQuery{Event: AuditIntegrity, Limit: 10})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Reason, filepath.Base(mem)) || !strings.Contains(es[0].Reason, "accept-loss") {
		t.Fatalf("integrity entries %+v (%v), want one naming %s", es, err, filepath.Base(mem))
	}
	t.Logf("%d kept, %d named as lost: %.200s", kept, named, es[0].Reason)
}

// The end of a write-ahead log that a crash cut short (the last commit
// torn: its end zeroed, or a span in its middle zeroed as a power cut can
// leave pages) is the normal end of the log: the store opens with every
// commit before it, and no integrity entry.
func TestTornWriteAheadLogOpens(t *testing.T) {
	for _, tear := range []string{"end", "middle"} {
		t.Run(tear, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := open(t, dir)
			defer s.Close()
			ids := fileEach(t, s, 50, 100)
			img := crashImage(t, dir)
			mem, entries := logWithData(t, img, ".mem")
			// The last commit's entries: the ones of the last version.
			last := entries[len(entries)-1].version()
			first := len(entries) - 1
			for first > 0 && entries[first-1].version() == last {
				first--
			}
			b, err := os.ReadFile(mem)
			if err != nil {
				t.Fatal(err)
			}
			from, to := entries[first].off+(entries[first].end-entries[first].off)/2, entries[len(entries)-1].end
			if tear == "middle" {
				to = entries[len(entries)-2].end
			}
			clear(b[from:to])
			if err := os.WriteFile(mem, b, 0o600); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(Options{Dir: img, Keyring: testRing(t, img)})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if kept := readable(s2, ids); kept != len(ids)-1 {
				t.Fatalf("%d of %d telegrams kept, want all but the torn last", kept, len(ids))
			}
			if es, _ := s2.QueryAudit(AuditQuery{Event: AuditIntegrity, Limit: 10}); len(es) != 0 {
				t.Fatalf("integrity entries after a torn end: %+v", es)
			}
		})
	}
}

// One damaged value in the value log (64 bytes flipped in the middle of
// one body) costs that body only: the store repairs the file before Badger
// reads it, so the bodies after the damage are kept (Badger alone cuts the
// file there and loses them all), the damaged one is refused when read,
// and the repair is in the audit log.
func TestDamagedValueLogRepaired(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	const n = 100
	ids := fileEach(t, s, n, 10<<10)
	img := crashImage(t, dir)
	vlog, entries := logWithData(t, img, ".vlog")
	if len(entries) != n {
		t.Fatalf("%d values in %s, want %d", len(entries), vlog, n)
	}
	mid := entries[n/2]
	flip(t, vlog, (mid.off+mid.end)/2, 64)

	s2, err := Open(Options{Dir: img, Keyring: testRing(t, img)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if kept := readable(s2, ids); kept != n-1 {
		t.Fatalf("%d of %d telegrams readable, want all but the damaged one", kept, n)
	}
	es, err := s2.QueryAudit(AuditQuery{Event: AuditIntegrity, Limit: 10})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Reason, filepath.Base(vlog)) || !strings.Contains(es[0].Reason, "49 readable values after") {
		t.Fatalf("integrity entries %+v (%v), want one naming %s", es, err, filepath.Base(vlog))
	}
}

// A value-log file deleted after a crash (the fault report's "deleting the
// whole .vlog") is refused at open, naming the file and counting the
// telegrams whose bodies were in it; Badger alone starts without a word.
// With AcceptLoss the store opens, and the loss is in the audit log.
func TestMissingValueLogRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	const n = 40
	fileEach(t, s, n, 10<<10)
	img := crashImage(t, dir)
	vlog, _ := logWithData(t, img, ".vlog")
	if err := os.Remove(vlog); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{Dir: img, Keyring: testRing(t, img)})
	want := fmt.Sprintf("the bodies of %d telegrams", n)
	if !errors.Is(err, ErrDamagedLog) || !strings.Contains(err.Error(), filepath.Base(vlog)) || !strings.Contains(err.Error(), want) {
		t.Fatalf("open without %s: %v, want ErrDamagedLog naming it and %q", filepath.Base(vlog), err, want)
	}
	s2, err := Open(Options{Dir: img, Keyring: testRing(t, img), AcceptLoss: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	es, err := s2.QueryAudit(AuditQuery{Event: AuditIntegrity, Limit: 10})
	if err != nil || len(es) != 1 || !strings.Contains(es[0].Reason, want) {
		t.Fatalf("integrity entries %+v (%v), want one with %q", es, err, want)
	}
}

// BenchmarkCheckLogs measures the check of every log file at open, per
// byte of log files: a store with 64 MiB of bodies in its value log,
// opened after a crash (so its write-ahead logs are there too).
func BenchmarkCheckLogs(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(Options{Dir: dir, Keyring: testRing(b, dir)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 256 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""),
			Body: bytes.Repeat([]byte{byte(i)}, 256<<10)}); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	names, _ := filepath.Glob(filepath.Join(dir, "*.*"))
	for _, n := range names {
		if strings.HasSuffix(n, ".vlog") || strings.HasSuffix(n, ".mem") {
			if fi, err := os.Stat(n); err == nil {
				size += fi.Size()
			}
		}
	}
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if _, err := checkLogs(dir, false, s.log, filedIDs(s.ring)); err != nil {
			b.Fatal(err)
		}
	}
}

// A store open in one process is not checked, nor mended, by a second
// Open: what looks like damage in a live value log may be a write in
// progress. Here the live value log ends in what a check would repair
// (junk, then a readable entry); the second Open is refused and the file
// is left as it was.
func TestSecondOpenLeavesALiveStoreAlone(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	fileEach(t, s, 5, 10<<10)
	vlog, entries := logWithData(t, dir, ".vlog")
	f, err := os.OpenFile(vlog, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1]
	tail := append(bytes.Repeat([]byte{0xa5}, 100), readBytes(t, vlog, entries[0].off, entries[0].end)...)
	if _, err := f.WriteAt(tail, int64(last.end)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	before := readBytes(t, vlog, 0, last.end+len(tail))

	_, err = Open(Options{Dir: dir, Keyring: testRing(t, dir)})
	if err == nil {
		t.Fatal("a second Open of a store in use succeeded")
	}
	if after := readBytes(t, vlog, 0, last.end+len(tail)); !bytes.Equal(before, after) {
		t.Fatalf("a second Open (%v) wrote into the live value log", err)
	}
}

func readBytes(t *testing.T, path string, from, to int) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b[from:to]
}
