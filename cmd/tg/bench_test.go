package main

import (
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg bench against a dev site: it issues its identities, adds them to the
// directory (the switch picks it up by itself), files an exact count and
// reports the named JSON fields. Figures are reported, never asserted.
func TestBenchDev(t *testing.T) {
	site := daemontest.Start(t)
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
	// Again: the identities and agencies are there already.
	if r = tg(t, "", "bench", "--dev", site.Dir, "--senders", "2", "--recipients", "3", "--count", "20"); r.code != 0 ||
		!strings.Contains(r.stdout, "accepted   20 ") || strings.Contains(r.stderr, "added") {
		t.Fatalf("second run: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
