package store

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

// crashImage copies a store folder (and its keyring and key file) while
// the store is open, as a crash would leave it: Badger writes
// synchronously, so the copy holds exactly what was committed. cp keeps
// the value log's sparse files sparse.
func crashImage(t *testing.T, dir string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "img")
	for _, suffix := range []string{"", ".ring", ".key"} {
		if out, err := exec.Command("cp", "-a", "--sparse=always", dir+suffix, img+suffix).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
	}
	return img
}

// A store says whether it was stopped cleanly, and which agencies were
// receiving: after a crash, entries of the earlier run are suspect (below
// the first sequence of the new run) and the receiving markers remain;
// after a clean stop, nothing is suspect and the markers are gone.
func TestCleanStopAndReceiving(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Flash, ""), Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if already, err := s.Receiving("NA.TU"); err != nil || already {
		t.Fatalf("first Receiving = %v, %v; want false", already, err)
	}
	if already, err := s.Receiving("NA.TU"); err != nil || !already {
		t.Fatalf("second Receiving = %v, %v; want true", already, err)
	}
	qseq := s.st.qseq
	img := crashImage(t, dir)
	s.Close()

	crashed, _ := open(t, img)
	if got := crashed.SuspectBelow(); got != qseq+1 {
		t.Errorf("after a crash, SuspectBelow = %d, want %d", got, qseq+1)
	}
	for a, want := range map[telegram.Address]bool{"NA.TU": true, "HN.UBND": false} {
		if was, err := crashed.Receiving(a); err != nil || was != want {
			t.Errorf("after a crash, %s was receiving: %v (%v), want %v", a, was, err, want)
		}
	}
	crashed.Close()

	for _, d := range []string{dir, img} {
		s, _ := open(t, d)
		if got := s.SuspectBelow(); got != 0 {
			t.Errorf("%s after a clean stop: SuspectBelow = %d, want 0", filepath.Base(d), got)
		}
		if was, err := s.Receiving("NA.TU"); err != nil || was {
			t.Errorf("%s after a clean stop: NA.TU was receiving: %v (%v), want false", filepath.Base(d), was, err)
		}
		// The clean-stop marker is gone while the store is open: a crash
		// now shows.
		again := crashImage(t, d)
		s.Close()
		s, _ = open(t, again)
		if got := s.SuspectBelow(); got == 0 {
			t.Errorf("%s: a crash after a clean start went unnoticed", filepath.Base(d))
		}
		s.Close()
	}
}
