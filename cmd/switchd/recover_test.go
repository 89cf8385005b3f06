package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// A request whose handler panics (a bug, made here by the failpoint
// "handler") is answered Internal; the switch goes on serving: a terminal
// then files and another receives. The failure is audited. And a request
// field out of range (queues with -1 overdue rows, which panicked before)
// is refused at decode.
func TestHandlerPanicRecovered(t *testing.T) {
	bin := buildSwitchd(t, "failpoints")
	data := filepath.Join(t.TempDir(), "dev")
	cmd := exec.Command(bin, "--dev", "--data", data, "--listen", freeUDPPort(t))
	cmd.Env = append(os.Environ(), "DIENBAO_FAILPOINT=handler:1")
	p := startCmd(t, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	op := dialWhenUp(t, p, filepath.Join(data, "ids", "operator"))
	if _, err := op.Queues(ctx, 0); !fault.Is(fault.Internal, err) {
		t.Fatalf("the panicking request: %v, want an Internal error", err)
	}
	if _, err := op.Queues(ctx, -1); !fault.Is(fault.Invalid, err) || !strings.Contains(err.Error(), "overdue rows -1") {
		t.Fatalf("queues with -1 overdue rows: %v, want Invalid", err)
	}
	if _, err := op.Queues(ctx, 5); err != nil {
		t.Fatalf("a good request after the panic: %v", err)
	}
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	res, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Body: []byte("still serving")})
	if err != nil {
		t.Fatal(err)
	}
	col := &daemontest.Collector{}
	if err := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND")).Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != 1 || col.Telegrams[0].Header.ID != res.ID {
		t.Fatalf("received %d telegrams, want the one filed after the panic", len(col.Telegrams))
	}
	p.stop(t)
	st := daemontest.OpenStore(t, data)
	defer st.Close()
	es, err := st.QueryAudit(store.AuditQuery{Event: store.AuditSecurity})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if strings.Contains(e.Reason, "fail internally") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d audit entries for the failed request, want 1", n)
	}
}
