package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The switch killed at each step of the commit path, one exact instant
// each (kill -9 from outside lands anywhere): a filing killed before its
// commit is not stored and is filed anew when the sender files it again;
// one killed after its commit, before or after the answer was ready, is
// stored, and filing it again with the same reference returns its ID. Either
// way every telegram answered ACCEPTED is delivered exactly once, and the
// audit log records one filing of each.
func TestFailpoints(t *testing.T) {
	bin := buildSwitchd(t, "failpoints")
	for _, tc := range []struct {
		step      string
		at        int
		committed bool
	}{
		{"before-write", 20, false},
		{"before-commit", 20, false},
		{"after-commit", 20, true},
		{"before-reply", 15, true},
	} {
		t.Run(tc.step, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "dev")
			addr := freeUDPPort(t)
			cmd := exec.Command(bin, "--dev", "--data", data, "--listen", addr)
			cmd.Env = append(os.Environ(), fmt.Sprintf("DIENBAO_FAILPOINT=%s:%d", tc.step, tc.at))
			p := startCmd(t, cmd)
			sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
			accepted := map[telegram.ID]int{}
			var lost client.Telegram
			for i := 0; ; i++ {
				m := client.Telegram{To: []telegram.Address{"NA.UBND"}, Ref: fmt.Sprintf("fp-%d", i), Body: []byte(fmt.Sprint("telegram ", i))}
				// A killed switch never answers: the filing times out.
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := sender.Send(ctx, m)
				cancel()
				if err != nil {
					lost = m
					break
				}
				accepted[res.ID]++
				if i > 1000 {
					t.Fatal("no crash after 1,000 filings")
				}
			}
			var err error
			select {
			case err = <-p.done:
			case <-time.After(60 * time.Second):
				t.Fatalf("filing %s failed, but the switch was not killed at %s", lost.Ref, tc.step)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("switchd ended with %v, want killed at %s", err, tc.step)
			}

			p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
			sender = dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
			res, err := sender.Send(context.Background(), lost)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicate != tc.committed {
				t.Fatalf("the filing killed at %s, filed again: duplicate %v, want %v (committed before the kill)", tc.step, res.Duplicate, tc.committed)
			}
			accepted[res.ID]++
			col := &daemontest.Collector{}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND")).Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
				t.Fatal(err)
			}
			p.stop(t)
			got := map[telegram.ID]int{}
			for _, d := range col.Telegrams {
				got[d.Header.ID]++
			}
			if len(got) != len(accepted) {
				t.Errorf("%d telegrams delivered, %d accepted", len(got), len(accepted))
			}
			for id, n := range accepted {
				if n != 1 || got[id] != 1 {
					t.Errorf("%s: answered ACCEPTED %d times, delivered %d times; want once each", id, n, got[id])
				}
			}
			st := daemontest.OpenStore(t, data)
			defer st.Close()
			filed, err := st.QueryAudit(store.AuditQuery{Event: store.AuditFiled, Limit: 10000})
			if err != nil {
				t.Fatal(err)
			}
			perID := map[telegram.ID]int{}
			for _, e := range filed {
				perID[e.ID]++
			}
			for id := range accepted {
				if perID[id] != 1 {
					t.Errorf("%s: %d filed entries in the audit log, want 1", id, perID[id])
				}
			}
			if len(perID) != len(accepted) {
				t.Errorf("%d telegrams filed in the audit log, %d accepted", len(perID), len(accepted))
			}
		})
	}
}
