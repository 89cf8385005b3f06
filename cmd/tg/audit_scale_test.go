package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// TestAuditAtScale fills the log through the real switch, then times the
// auditor's commands on it. CI files 2,000 telegrams (4,000 entries); for
// the figures in the README:
//
//	DIENBAO_AUDIT_TELEGRAMS=1000000 go test ./cmd/tg -run TestAuditAtScale -v -timeout 60m
//
// It checks results, never durations.
func TestAuditAtScale(t *testing.T) {
	n := 2000
	if s := os.Getenv("DIENBAO_AUDIT_TELEGRAMS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 2 {
			t.Fatalf("DIENBAO_AUDIT_TELEGRAMS=%q", s)
		}
	}
	// Admission control off: batches of a thousand would make the switch
	// limit them (and audit that), which is not what is measured here.
	off := false
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) { c.Admission.Enabled = &off })
	c := site.Dial("HN.UBND")
	var marked telegram.ID
	start := time.Now()
	for done := 0; done < n; done += 1000 {
		batch := make([]client.Telegram, min(1000, n-done))
		for i := range batch {
			batch[i] = client.Telegram{To: []telegram.Address{"HCM.UBND"}, Body: []byte("x")}
		}
		if done <= n/2 && n/2 < done+len(batch) {
			batch[n/2-done].To = []telegram.Address{"DN.UBND"}
		}
		res, err := c.SendBatch(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			if done+i == n/2 {
				marked = r.ID
			}
		}
	}
	fill := time.Since(start)
	aud := site.IDDir("auditor")
	timed := func(args ...string) (result, time.Duration) {
		t0 := time.Now()
		r := tg(t, "", append([]string{"--id", aud}, args...)...)
		return r, time.Since(t0)
	}
	r, byID := timed("--json", "audit", "query", "--telegram", marked.String())
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 2 {
		t.Fatalf("query by telegram: %d %d lines %s", r.code, len(ls), r.stderr)
	}
	r, byAgency := timed("--json", "audit", "query", "--agency", "DN.UBND") // its one queued entry
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 1 {
		t.Fatalf("query by agency: %d %d lines %s", r.code, len(ls), r.stderr)
	}
	r, newest := timed("--json", "audit", "query", "--agency", "HN.UBND", "--event", "filed", "--limit", "100")
	if ls := lines(r.stdout); r.code != 0 || len(ls) != 100 {
		t.Fatalf("newest 100 filings: %d %d lines", r.code, len(ls))
	}
	if n <= 100_000 {
		r, _ = timed("--json", "audit", "query", "--oldest", "--limit", strconv.Itoa(2*n+1)) // pages past the frame size
		if ls := lines(r.stdout); r.code != 0 || len(ls) != 2*n+1 || !strings.Contains(ls[2*n], fmt.Sprintf(`"index":%d,`, 2*n)) {
			t.Fatalf("the whole log in one query: %d, %d lines", r.code, len(ls))
		}
	}
	r, proof := timed("--json", "audit", "proof", marked.String())
	if r.code != 0 || checkBundleIndependently(t, []byte(r.stdout)) != 2 {
		t.Fatalf("proof: %d %s", r.code, r.stderr)
	}
	r, verify := timed("audit", "verify")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "OK: "+strconv.Itoa(2*n+1)+" entries") {
		t.Fatalf("verify: %d %q %s", r.code, r.stdout, r.stderr)
	}
	t.Logf("audit log of %d entries (%d telegrams filed in %v): query by telegram %v, by agency %v, newest 100 filings %v, proof %v, verify %v (%.0f entries/s)",
		2*n+1, n, fill.Round(time.Millisecond), byID.Round(time.Microsecond), byAgency.Round(time.Microsecond),
		newest.Round(time.Microsecond), proof.Round(time.Microsecond), verify.Round(time.Millisecond),
		float64(2*n+1)/verify.Seconds())
}
