package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// A terminal cannot make the switch sign checkpoints at will (issue 15,
// finding 6: 2,434 stored in 5 s). Asking for the checkpoint between
// filings gets the latest one, and signs none; proofs for entries newer
// than it sign one at most once per interval, then are told to retry; an
// auditor still gets a checkpoint of the log as it stands.
func TestCheckpointsOnRequestAreBounded(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Audit.CheckpointInterval = daemon.Duration(time.Hour)
	})
	st := site.Server.Store()
	stored := func() int {
		n := 0
		st.Checkpoints(0, func(store.SignedCheckpoint) error { n++; return nil })
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hn := site.Dial("HN.UBND")
	before := stored()
	var ids []telegram.ID
	for i := 0; i < 50; i++ {
		res, err := hn.Send(ctx, tg("NA.TU", telegram.Routine, "x"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.ID)
		if _, _, err := hn.AuditCheckpoint(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := stored() - before; n != 0 {
		t.Fatalf("50 checkpoint requests by a terminal signed %d checkpoints, want 0", n)
	}
	if _, err := hn.AuditProof(ctx, ids[0]); err != nil {
		t.Fatalf("the first proof: %v", err)
	}
	if n := stored() - before; n != 1 {
		t.Fatalf("a proof of new entries signed %d checkpoints, want 1", n)
	}
	hn.Send(ctx, tg("NA.TU", telegram.Routine, "newer"))
	last, err := hn.Send(ctx, tg("NA.TU", telegram.Routine, "newest"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hn.AuditProof(ctx, last.ID); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("a second proof of newer entries within the interval: %v, want Unavailable, retry", err)
	}
	if _, err := hn.AuditProof(ctx, ids[1]); err != nil {
		t.Fatalf("a proof the latest checkpoint covers: %v", err)
	}
	if n := stored() - before; n != 1 {
		t.Fatalf("%d checkpoints signed, want still 1", n)
	}
	aud := site.Dial("auditor")
	if _, err := aud.AuditProof(ctx, last.ID); err != nil {
		t.Fatalf("an auditor's proof: %v", err)
	}
	if n := stored() - before; n != 2 {
		t.Fatalf("%d checkpoints signed after an auditor's proof, want 2", n)
	}
	healthy(t, site)
}
