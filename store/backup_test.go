package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// A backup round trip: every record comes back under the same keyring;
// the restore is recorded at the backup's log size and moves the restored
// bound past every queued entry. A backup cut short or altered anywhere
// is refused before anything is written, and says which.
func TestBackupRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	s, _ := open(t, dir)
	for i := range 20 {
		if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Routine, fmt.Sprint("r", i)), Body: []byte("body"), Actor: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	ringFile := []byte(`{"a keyring":"as on disk"}`)
	var buf bytes.Buffer
	info, err := s.Backup(&buf, func() ([]byte, error) { return ringFile, nil }, BackupOptions{Rate: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if info.Filings != 20 || info.QueueSeq != 20 || info.AuditSize != 40 || info.Bytes != int64(buf.Len()) {
		t.Fatalf("manifest %+v, want 20 filings, queue sequence 20, 40 audit entries, %d bytes", info, buf.Len())
	}

	// Damage: cut short anywhere, or one byte changed.
	b := buf.Bytes()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"cut", b[:len(b)-40], "cut short"},
		{"half", b[:len(b)/2], "cut short"},
		{"flipped", flipped(b, len(b)/2), "damaged"},
		{"another file", []byte("PK\x03\x04 a zip"), "not a dienbao backup"},
	} {
		if _, err := ReadBackup(bytes.NewReader(c.data), func(byte, []byte, []byte) error { return nil }); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}

	restored := filepath.Join(t.TempDir(), "restored")
	var gotRing []byte
	got, err := LoadBackup(bytes.NewReader(b), restored, func(tag byte, a, _ []byte) error {
		if tag == FrameKeyring {
			gotRing = a
		}
		return nil
	})
	if err != nil || got.Records != info.Records || !bytes.Equal(gotRing, ringFile) {
		t.Fatalf("load: %+v %v, keyring %q", got, err, gotRing)
	}
	if _, err := LoadBackup(bytes.NewReader(b), restored, func(byte, []byte, []byte) error { return nil }); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second load into the same folder: %v", err)
	}
	// The restored store opens with the original's keyring.
	for _, ext := range []string{".key", ".ring"} {
		if err := os.Rename(dir+ext, restored+ext); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := openWith(t, restored, func(o *Options) { o.Restored = &info })
	defer r.Close()
	if r.RestoredBelow() != 21 {
		t.Errorf("RestoredBelow %d, want 21", r.RestoredBelow())
	}
	entries, _ := r.Audit(40, 10)
	if len(entries) != 1 || entries[0].Event != AuditRestored || entries[0].Index != 40 {
		t.Fatalf("audit after the restore: %+v", entries)
	}
	q, err := r.ScanQueue(SubQueue{Agency: "NA.UBND", Prec: telegram.Routine, Class: telegram.Secret}, 0, 100)
	if err != nil || len(q) != 20 {
		t.Fatalf("restored queue: %d entries, %v", len(q), err)
	}
	res, err := r.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.UBND"}, telegram.Routine, "r3"), Body: []byte("body"), Actor: "t"})
	if err != nil || !res.Duplicate {
		t.Fatalf("refiling r3 after the restore: %+v %v, want the earlier filing", res, err)
	}
}

func flipped(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}
