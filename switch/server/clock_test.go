package server_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/clock"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// steppable is the machine's clock with a wall-clock offset a test sets.
type steppable struct{ offset atomic.Int64 }

func (s *steppable) source() clock.Source {
	start := time.Now()
	return clock.Source{
		Wall: func() time.Time { return time.Now().Round(0).Add(time.Duration(s.offset.Load())) },
		Mono: func() time.Duration { return time.Since(start) },
	}
}

// fileAs files m as HN.UBND on a connection of its own.
func fileAs(site *daemontest.Site, m client.Telegram) (telegram.ID, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := site.Dial("HN.UBND")
	defer c.Close()
	res, err := c.Send(ctx, m)
	return res.ID, err
}

func clockRefusal(err error) bool {
	return fault.Is(fault.Unavailable, err) && strings.Contains(err.Error(), "clock is not trusted")
}

// The wall clock jumps seven hours ahead while the switch runs: nothing
// expires or goes overdue on it, new filings are refused with a clear
// error, and audit entries keep the real time. When the clock comes back,
// filing resumes and the telegrams filed before are still delivered.
// Each change is audited once.
func TestClockJumpWhileRunning(t *testing.T) {
	var clk steppable
	site := daemontest.StartWithClock(t, t.TempDir(), nil, fastTimers, clk.source())
	m := tg("NA.UBND", telegram.Flash, "expires in 90 minutes")
	m.ExpiresAt = time.Now().Add(90 * time.Minute)
	before, err := fileAs(site, m)
	if err != nil {
		t.Fatal(err)
	}
	clk.offset.Store(int64(7 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := fileAs(site, tg("NA.UBND", telegram.Routine, "during"))
		if clockRefusal(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("filing with the clock 7 h ahead: %v, want refused for the clock", err)
		}
	}
	time.Sleep(200 * time.Millisecond) // ten timer ticks
	if n := auditCount(t, site, store.AuditExpired, before); n != 0 {
		t.Fatalf("the FLASH was withdrawn as expired on a clock 7 h ahead (%d entries)", n)
	}
	clk.offset.Store(0)
	var after telegram.ID
	for deadline := time.Now().Add(10 * time.Second); ; {
		if after, err = fileAs(site, tg("NA.UBND", telegram.Routine, "after")); err == nil {
			break
		}
		if !clockRefusal(err) || time.Now().After(deadline) {
			t.Fatalf("filing with the clock back: %v", err)
		}
	}
	got := site.Receive("NA.UBND", inbox)
	if len(got.Telegrams) != 2 || got.Telegrams[0].Header.ID != before || got.Telegrams[1].Header.ID != after {
		t.Fatalf("delivered %d telegrams, want the FLASH filed before the jump and the one after", len(got.Telegrams))
	}
	// The return is recorded at the next timer tick, which a filing on
	// the restored clock may precede.
	var clockEntries []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		entries, err := site.Server.Store().Audit(0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		limit := time.Now().Add(time.Minute)
		clockEntries = nil
		for _, e := range entries {
			if e.At.After(limit) {
				t.Errorf("audit entry %d (%s) is dated %s, in the future", e.Index, e.Event, e.At)
			}
			if e.Event == audit.Clock {
				clockEntries = append(clockEntries, e.Reason)
			}
		}
		if len(clockEntries) >= 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(clockEntries) != 2 || !strings.Contains(clockEntries[0], "jumped forward 7h") || !strings.Contains(clockEntries[1], "trusted again") {
		t.Fatalf("clock audit entries %q, want the jump and the return", clockEntries)
	}
}

// A switch restarted with its clock two hours behind what it last recorded
// does not trust it: filings are refused, and delivery goes on
// (certificates issued just before are still accepted: they are backdated
// a day), until an operator vouches for the clock (audited, naming the
// operator); then the switch files again.
func TestClockBehindAtStart(t *testing.T) {
	dir := t.TempDir()
	site := daemontest.StartIn(t, dir)
	id := site.Send("HN.UBND", tg("NA.UBND", telegram.Immediate, "before the restart"))
	site.Stop()
	var clk steppable
	clk.offset.Store(int64(-2 * time.Hour))
	site = daemontest.StartWithClock(t, dir, nil, fastTimers, clk.source())
	if _, err := fileAs(site, tg("NA.UBND", telegram.Routine, "x")); !clockRefusal(err) {
		t.Fatalf("filing with the clock 2 h behind: %v, want refused for the clock", err)
	}
	if got := site.Receive("NA.UBND", inbox); len(got.Telegrams) != 1 || got.Telegrams[0].Header.ID != id {
		t.Fatalf("delivery with the clock behind: %d telegrams, want the one filed before", len(got.Telegrams))
	}
	op := site.Dial("operator")
	k, err := op.Clock(context.Background(), false)
	if err != nil || k.Trusted || !strings.Contains(k.Reason, "before the latest time the switch recorded") || k.Wall.After(time.Now().Add(-time.Hour)) {
		t.Fatalf("tg clock: %+v, %v; want not trusted, 2 h behind", k, err)
	}
	if k, err = op.Clock(context.Background(), true); err != nil || !k.Trusted {
		t.Fatalf("tg clock --confirm: %+v, %v", k, err)
	}
	if _, err := fileAs(site, tg("NA.UBND", telegram.Routine, "x")); err != nil {
		t.Fatalf("filing once the clock is confirmed: %v", err)
	}
	var who []string
	entries, _ := site.Server.Store().QueryAudit(store.AuditQuery{Event: audit.Clock, Limit: 10})
	for _, e := range entries {
		who = append(who, e.Actor+": "+e.Reason)
	}
	if len(who) != 2 || !strings.Contains(who[1], "operator") || !strings.Contains(who[1], "confirmed") {
		t.Fatalf("clock audit entries %q, want the distrust at start and the operator's confirmation", who)
	}
}

// A switch whose clock is so far behind that a terminal's certificate is
// not yet valid by it refuses the handshake; the terminal says what that
// can mean rather than only "bad certificate".
func TestNotYetValidIsExplained(t *testing.T) {
	var clk steppable
	clk.offset.Store(int64(-3 * 24 * time.Hour))
	site := daemontest.StartWithClock(t, t.TempDir(), nil, nil, clk.source())
	f, err := certs.LoadFolder(site.IDDir("HN.UBND"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, f)
	if err == nil { // TLS 1.3: the switch's refusal comes after the client's handshake
		defer c.Close()
		_, err = c.Send(ctx, tg("NA.UBND", telegram.Routine, "x"))
	}
	if !fault.Is(fault.Permission, err) || !strings.Contains(err.Error(), "not yet valid by the switch's clock") {
		t.Fatalf("dial: %v, want the refusal explained", err)
	}
}
