package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// One certificate, or one agency, cannot take every session (issue 15,
// finding 4: one certificate held all 20 slots and another agency's FLASH
// was refused). Caps per certificate and per agency; the last tenth of
// the slots is kept for agencies with nothing connected and operators;
// refusals are audited.
func TestSessionSlots(t *testing.T) {
	site := daemontest.StartWith(t, t.TempDir(), nil, func(c *daemon.Config) {
		c.Limits.MaxSessions = 20 // 2 kept back
		c.Limits.MaxSessionsPerCert = 4
		c.Limits.MaxSessionsPerAgency = 7
	})
	second := issueTerminal(t, site, "HN.UBND", telegram.Secret)
	tw2 := issueTerminal(t, site, "TW.VPTW", telegram.Secret)
	cp2 := issueTerminal(t, site, "CP.VPCP", telegram.Secret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// open connects as name and makes one request: nil, or why not.
	var held []*client.Client
	open := func(name string) error {
		c := site.Dial(name)
		_, _, err := c.AuditCheckpoint(ctx)
		if err != nil {
			c.Close()
			return err
		}
		held = append(held, c)
		return nil
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		if err := open("HN.UBND"); err != nil {
			t.Fatalf("session %d of HN.UBND's first certificate: %v", i+1, err)
		}
	}
	if err := open("HN.UBND"); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "this certificate already has 4 sessions") {
		t.Fatalf("a fifth session of one certificate: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := open(second); err != nil {
			t.Fatalf("session %d of HN.UBND's second certificate: %v", i+1, err)
		}
	}
	if err := open(second); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "HN.UBND already has 7 sessions") {
		t.Fatalf("an eighth session of one agency: %v", err)
	}
	// Other agencies fill the switch up to its last two slots.
	for _, name := range []string{"TW.VPTW", "TW.VPTW", "TW.VPTW", "TW.VPTW", tw2, tw2, tw2, "CP.VPCP", "CP.VPCP", "CP.VPCP", "CP.VPCP"} {
		if err := open(name); err != nil {
			t.Fatalf("a session of %s: %v", name, err)
		}
	}
	if err := open(cp2); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "kept for agencies with nothing connected") {
		t.Fatalf("a terminal of an agency already connected, for one of the last slots: %v", err)
	}
	// An agency with nothing connected, and an operator, still get in.
	if err := open("NA.TU"); err != nil {
		t.Fatalf("an agency with nothing connected: %v", err)
	}
	if err := open("operator"); err != nil {
		t.Fatalf("an operator: %v", err)
	}
	if err := open("NA.UBND"); !fault.Is(fault.Unavailable, err) || !strings.Contains(err.Error(), "session limit") {
		t.Fatalf("past the switch's limit: %v", err)
	}
	if n := securityEntries(t, site, "session refused"); n < 1 {
		t.Fatal("no audit entry for the refused sessions")
	}
	for _, c := range held {
		c.Close()
	}
	held = nil
	// Once the sessions are gone, a normal terminal files and receives.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := open("HN.UBND"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	healthy(t, site)
}
