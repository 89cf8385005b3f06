package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg bench against a dev site: it issues its identities, adds them to the
// directory (the switch picks it up by itself), files an exact count and
// reports the named JSON fields; then it takes back what it left in
// custody and leaves the directory and its keys folder as it found them.
// Figures are reported, never asserted.
func TestBenchDev(t *testing.T) {
	site := daemontest.Start(t)
	dirFile := filepath.Join(site.Dir, "directory.toml")
	found, _ := os.ReadFile(dirFile)
	keys, _ := filepath.Glob(filepath.Join(site.Dir, "agency-keys", "*"))
	r := tg(t, "", "--json", "bench", "--dev", site.Dir, "--senders", "2", "--recipients", "3", "--count", "300",
		"--batch", "10", "--mix", "flash=10,immediate=10,priority=10,routine=70")
	if r.code != 0 {
		t.Fatalf("bench: %d %s", r.code, r.stderr)
	}
	ls := jsonLines(t, r.stdout)
	if len(ls) != 1 {
		t.Fatalf("bench printed %q", r.stdout)
	}
	m := ls[0]
	for _, k := range []string{"accepted_per_s", "delivered_per_s", "accept_p50_ms", "accept_p99_ms", "flash_delivery_p99_ms"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("bench JSON %s = %v", k, m[k])
		}
	}
	if m["accepted"] != 300.0 || m["delivered"] != 300.0 || m["refused"] != 0.0 {
		t.Fatalf("accepted %v, delivered %v, refused %v; want 300, 300, 0", m["accepted"], m["delivered"], m["refused"])
	}
	if !strings.Contains(r.stderr, "added 5 bench agencies") {
		t.Errorf("stderr %q", r.stderr)
	}
	if !strings.Contains(r.stderr, "restored as the bench found it (5 bench agencies removed)") {
		t.Errorf("stderr %q", r.stderr)
	}
	same := func(when string) {
		t.Helper()
		if b, _ := os.ReadFile(dirFile); !bytes.Equal(b, found) {
			t.Fatalf("%s: the directory file is not as found:\n%s", when, b)
		}
		if k, _ := filepath.Glob(filepath.Join(site.Dir, "agency-keys", "*")); !slices.Equal(k, keys) {
			t.Fatalf("%s: the keys folder holds %d files, %d before", when, len(k), len(keys))
		}
		for _, row := range jsonLines(t, tg(t, "", "--id", site.IDDir("operator"), "--json", "queues").stdout) {
			if strings.HasPrefix(row["agency"].(string), "BENCH.") {
				t.Fatalf("%s: the switch still lists %v", when, row["agency"])
			}
		}
	}
	same("after a bench")
	// Again, with a backlog for an agency that never connects: taken back too.
	if r = tg(t, "", "bench", "--dev", site.Dir, "--senders", "2", "--recipients", "3", "--count", "20", "--backlog", "50", "--settle", "0s"); r.code != 0 ||
		!strings.Contains(r.stdout, "accepted   20 ") || !strings.Contains(r.stderr, "added 6 bench agencies") {
		t.Fatalf("second run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	same("after a bench with a backlog")
}
