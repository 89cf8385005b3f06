package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// tg audit trace follows a telegram filed at HN for NA.UBND through the
// centre: every switch on the way answers with its entries and a proof
// bundle, each of which tg audit check-proof accepts offline; a switch it
// has no address for is named, and the exit status says the trace is
// incomplete.
func TestAuditTraceAcrossSwitches(t *testing.T) {
	n := daemontest.CentreAndProvinces(t, nil)
	hn, na := n.Sites["HN"], n.Sites["NA"]
	r := tg(t, "", "--id", hn.IDDir("HN.UBND"), "send", "--to", "NA.UBND", "--prec", "IMMEDIATE", "theo dấu")
	if r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	// NA's terminal takes it once it waits at NA: one inbox run, not one
	// racing the relay (a run that ends as the telegram arrives leaves an
	// attempt without an acknowledgement, and a second attempt follows).
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(tg(t, "", "--id", na.IDDir("operator"), "show", id).stdout, "waiting") {
		if time.Now().After(deadline) {
			t.Fatal("the telegram did not reach NA within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := tg(t, "", "--id", na.IDDir("NA.UBND"), "inbox"); r.code != 0 || !strings.Contains(r.stdout, "theo dấu") {
		t.Fatalf("inbox at NA: %d %s %s", r.code, r.stdout, r.stderr)
	}
	for !strings.Contains(tg(t, "", "--id", hn.IDDir("HN.UBND"), "receipts").stdout, "DELIVERED") {
		if time.Now().After(deadline) {
			t.Fatal("no DELIVERED report at HN within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	out := t.TempDir()
	r = tg(t, "", "--id", hn.IDDir("auditor"), "audit", "trace", id, "--out", out,
		"--switch", "HN="+n.Addrs["HN"], "--switch", "TW="+n.Addrs["TW"], "--switch", "NA="+n.Addrs["NA"])
	if r.code != 0 {
		t.Fatalf("trace: %d %s\n%s", r.code, r.stderr, r.stdout)
	}
	for _, want := range []string{"HN (" + n.Addrs["HN"] + "): 6 entries", "TW (" + n.Addrs["TW"] + "): 6 entries", "NA (" + n.Addrs["NA"] + "): 6 entries",
		"relayed", "received", "delivered"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("trace output lacks %q:\n%s", want, r.stdout)
		}
	}
	files, _ := filepath.Glob(filepath.Join(out, id+"-*.json"))
	if len(files) != 3 {
		t.Fatalf("bundles %v, want one per switch", files)
	}
	for _, f := range files {
		if r := tg(t, "", "audit", "check-proof", f); r.code != 0 || !strings.HasPrefix(r.stdout, "OK: telegram "+id) {
			t.Fatalf("check-proof %s: %d %s %s", f, r.code, r.stdout, r.stderr)
		}
	}
	// Without NA's address: NA is named, not asked, and the exit status says so.
	r = tg(t, "", "--id", hn.IDDir("auditor"), "audit", "trace", id, "--switch", "TW="+n.Addrs["TW"])
	if r.code != exitUnavailable || !strings.Contains(r.stdout, "NA: not asked: give --switch NA=HOST:PORT") {
		t.Fatalf("partial trace: %d %q %s", r.code, r.stdout, r.stderr)
	}
	os.RemoveAll(out)
}

// tg audit checkpoint shows the switch's witness key and who cosigned its
// log; tg audit check-proof --witness KEY requires the bundle's checkpoint
// to be cosigned by that witness (exit 7 if not).
func TestCheckProofWitnessPolicy(t *testing.T) {
	quick := func(c *daemon.Config) { c.Audit.CheckpointInterval = daemon.Duration(200 * time.Millisecond) }
	n := daemontest.StartNetwork(t, nil,
		daemontest.NetSwitch{Name: "TW", Prefixes: []string{"TW"}, Peers: []string{"NA"}, Tune: quick,
			Routes: []daemon.Route{{Prefix: "NA", Via: []string{"NA"}}}},
		daemontest.NetSwitch{Name: "NA", Prefixes: []string{"NA"}, Peers: []string{"TW"}, Tune: quick, Routes: []daemon.Route{{Prefix: "*", Via: []string{"TW"}}}},
	)
	tw, na := n.Sites["TW"], n.Sites["NA"]
	r := tg(t, "", "--id", tw.IDDir("TW.VPTW"), "send", "--to", "NA.TU", "chứng kiến")
	if r.code != 0 {
		t.Fatalf("send: %d %s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	key := func(r result) string {
		_, after, _ := strings.Cut(r.stdout, "witnesses its peers' logs with key ")
		k, _, _ := strings.Cut(after, "\n")
		return k
	}
	twKey := key(tg(t, "", "--id", tw.IDDir("auditor"), "audit", "checkpoint"))
	naKey := key(tg(t, "", "--id", na.IDDir("auditor"), "audit", "checkpoint"))
	if !strings.HasPrefix(twKey, "dienbao-witness/TW+") || !strings.HasPrefix(naKey, "dienbao-witness/NA+") {
		t.Fatalf("witness keys %q %q", twKey, naKey)
	}
	bundle := filepath.Join(t.TempDir(), "b.json")
	deadline := time.Now().Add(30 * time.Second)
	for {
		tg(t, "", "--id", na.IDDir("NA.TU"), "inbox")
		if r := tg(t, "", "--id", na.IDDir("auditor"), "audit", "proof", id, "--out", bundle); r.code == 0 {
			if r := tg(t, "", "audit", "check-proof", bundle, "--witness", twKey); r.code == 0 {
				if !strings.Contains(r.stdout, "cosigned by at least 1 of the given witnesses") {
					t.Fatalf("check-proof: %s", r.stdout)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("NA's bundle not cosigned by TW within 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := tg(t, "", "audit", "check-proof", bundle, "--witness", naKey); r.code != exitIntegrity {
		t.Fatalf("check-proof with a key that did not cosign: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "--id", na.IDDir("auditor"), "audit", "checkpoint", "--witness", twKey); r.code != 0 || !strings.Contains(r.stdout, "cosigned by witness TW") {
		t.Fatalf("checkpoint --witness: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
