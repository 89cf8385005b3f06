package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Operators see and act on telegrams only up to their clearance (issue
// 15, finding 8: a SECRET operator showed a TOP SECRET FLASH, revealing
// its reference, and cancelled it). Above it: refused and audited; the
// queues still count it.
func TestOperatorClearance(t *testing.T) {
	site := daemontest.Start(t) // the dev operator is cleared SECRET
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	top := tg("NA.UBND", telegram.Flash, "tuyệt mật")
	top.Classification, top.Ref = telegram.TopSecret, "TW-TM-1"
	topID := site.Send("TW.VPTW", top)
	secret := tg("NA.TU", telegram.Flash, "mật")
	secret.Classification = telegram.Secret
	secretID := site.Send("TW.VPTW", secret)
	op := site.Dial("operator")
	defer op.Close()
	if _, err := op.Show(ctx, topID); !fault.Is(fault.Permission, err) {
		t.Fatalf("a SECRET operator showing a TOP SECRET telegram: %v", err)
	}
	for _, action := range []string{wire.ActCancel, wire.ActHold, wire.ActRelease, wire.ActRequeue} {
		if _, err := op.Operate(ctx, wire.Operate{Action: action, ID: topID, Reason: "x"}); !fault.Is(fault.Permission, err) {
			t.Fatalf("a SECRET operator's %s of a TOP SECRET telegram: %v", action, err)
		}
	}
	if d, _ := site.Server.Store().Delivery(topID, "NA.UBND"); !d.Pending() || d.Held {
		t.Fatalf("the TOP SECRET telegram's state changed: %+v", d)
	}
	if n := securityEntries(t, site, "above this operator's clearance"); n < 1 {
		t.Fatal("the refusals were not audited")
	}
	q, err := op.Queues(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	var counted int64
	for _, r := range q.Rows {
		if r.Agency == "NA.UBND" && r.Precedence == telegram.Flash {
			counted = r.Waiting
		}
	}
	if counted != 1 {
		t.Fatalf("the queues count %d FLASH for NA.UBND, want the TOP SECRET one counted", counted)
	}
	// Within its clearance, as before.
	if s, err := op.Show(ctx, secretID); err != nil || s.Header.ID != secretID {
		t.Fatalf("show of a SECRET telegram: %v", err)
	}
	if _, err := op.Operate(ctx, wire.Operate{Action: wire.ActHold, ID: secretID}); err != nil {
		t.Fatalf("hold of a SECRET telegram: %v", err)
	}
}
