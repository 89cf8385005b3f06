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
// the first sequence of the new run), and they stay suspect after later
// clean stops (an agency may not reconnect in the run after the crash);
// a store that never crashed has no suspects. Receiving markers stay.
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

	for run := range 2 { // the run after the crash, then one after a clean stop
		crashed, _ := open(t, img)
		if got := crashed.SuspectBelow(); got != qseq+1 {
			t.Errorf("run %d after a crash: SuspectBelow = %d, want %d", run, got, qseq+1)
		}
		want := map[telegram.Address]bool{"NA.TU": true}
		if run == 0 { // (asking marks it receiving)
			want["HN.UBND"] = false
		}
		for a, want := range want {
			if was, err := crashed.Receiving(a); err != nil || was != want {
				t.Errorf("run %d after a crash: %s was receiving: %v (%v), want %v", run, a, was, err, want)
			}
		}
		crashed.Close()
	}

	s, _ = open(t, dir)
	if got := s.SuspectBelow(); got != 0 {
		t.Errorf("never crashed: SuspectBelow = %d, want 0", got)
	}
	// The clean-stop marker is gone while the store is open: a crash now
	// shows, and moves the bound up to the new run's first sequence.
	if _, err := s.File(&Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Flash, ""), Body: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	qseq = s.st.qseq
	again := crashImage(t, dir)
	s.Close()
	s, _ = open(t, again)
	if got := s.SuspectBelow(); got != qseq+1 {
		t.Errorf("a crash after a clean start: SuspectBelow = %d, want %d", got, qseq+1)
	}
	s.Close()
}
