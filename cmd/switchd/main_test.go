package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// buildSwitchd compiles this command into a temporary folder, with the
// build tags given (failpoints: the crash points of switch/failpoint).
func buildSwitchd(t *testing.T, tags ...string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain on PATH")
	}
	bin := filepath.Join(t.TempDir(), "switchd")
	if out, err := exec.Command(goBin, "build", "-tags", strings.Join(tags, ","), "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeUDPPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// process is a running switchd.
type process struct {
	cmd  *exec.Cmd
	out  *daemontest.Buffer
	done chan error
}

func startSwitchd(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	return startCmd(t, exec.Command(bin, args...))
}

func startCmd(t *testing.T, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{cmd: cmd, out: &daemontest.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// dialFast connects once as the identity in idDir, with a short idle
// timeout so that a killed switch is noticed within seconds.
func dialFast(idDir string) (*client.Client, error) {
	f, err := certs.LoadFolder(idDir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return client.Dial(ctx, f, client.WithIdleTimeout(1500*time.Millisecond))
}

// dialWhenUp connects as the identity in idDir, retrying while the switch
// starts. It fails only if the process exits or a generous deadline passes.
func dialWhenUp(t *testing.T, p *process, idDir string) *client.Client {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-p.done:
			t.Fatalf("switchd exited: %v\n%s", err, p.out.String())
		default:
		}
		if f, err := certs.LoadFolder(idDir); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			c, err := client.Dial(ctx, f)
			cancel()
			if err == nil {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("switchd did not come up\n%s", p.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *process) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-p.done; err != nil {
		t.Fatalf("switchd did not exit cleanly on SIGTERM: %v\n%s", err, p.out.String())
	}
}

func TestDevBinaryEndToEnd(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	addr := freeUDPPort(t)

	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	for _, m := range []client.Telegram{
		{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Routine, Body: []byte("routine")},
		{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Flash, Classification: telegram.Confidential, Body: []byte("flash")},
	} {
		if _, err := sender.Send(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	sender.Close()
	for _, name := range []string{"TW.VPTW", "CP.VPCP", "HN.UBND", "NA.TU", "NA.UBND", "operator", "auditor"} {
		if _, err := os.Stat(filepath.Join(data, "ids", name, certs.FolderCert)); err != nil {
			t.Errorf("dev identity %s: %v", name, err)
		}
	}
	if out := p.out.String(); !strings.Contains(out, "tg --id") || !strings.Contains(out, addr) {
		t.Errorf("the dev banner does not say how to use tg:\n%s", out)
	}
	p.stop(t)

	// Restarted, the switch still holds both telegrams and delivers FLASH first.
	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	rcv := dialWhenUp(t, p, filepath.Join(data, "ids", "NA.UBND"))
	col := &daemontest.Collector{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := rcv.Receive(ctx, client.ReceiveOptions{Inbox: true}, col); err != nil {
		t.Fatal(err)
	}
	if len(col.Telegrams) != 2 || string(col.Telegrams[0].Body) != "flash" || string(col.Telegrams[1].Body) != "routine" {
		t.Fatalf("after restart received %d telegrams: %+v", len(col.Telegrams), col.Telegrams)
	}
	p.stop(t)

	// The audit log recorded both starts and both stops.
	st := daemontest.OpenStore(t, data)
	defer st.Close()
	entries, _ := st.Audit(0, 1000)
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Event]++
	}
	if counts[store.AuditSwitchStart] != 2 || counts[store.AuditSwitchStop] != 2 || counts[store.AuditDelivered] != 2 {
		t.Fatalf("audit counts %v: want 2 starts, 2 stops, 2 deliveries", counts)
	}
}

// switchd without a mode says how to give one; --version says what it
// is; --man prints its manual page; --completion its shell completion; a
// usage error exits 2, as tg's.
func TestNeedsAMode(t *testing.T) {
	bin := buildSwitchd(t)
	out, err := exec.Command(bin).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--dev") {
		t.Fatalf("switchd without a mode: %v %s", err, out)
	}
	out, err = exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "dienbao switchd (devel), revision ") || !strings.Contains(string(out), ", go1.") {
		t.Fatalf("switchd --version: %v %q", err, out)
	}
	out, err = exec.Command(bin, "--man").Output()
	if err != nil || !strings.HasPrefix(string(out), ".TH SWITCHD 8 ") || !strings.Contains(string(out), "SIGHUP") {
		t.Fatalf("switchd --man: %v %.200q", err, out)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		page := filepath.Join(t.TempDir(), "switchd.8")
		os.WriteFile(page, out, 0o644)
		if warn, err := exec.Command(groff, "-man", "-Tutf8", "-Wall", "-wmac", "-wescape", "-winput", "-wchar", "-wsyntax", "-wmissing", "-z", page).CombinedOutput(); err != nil || len(warn) > 0 {
			t.Fatalf("groff on switchd.8: %v\n%s", err, warn)
		}
	}
	for _, bad := range [][]string{{"--no-such-flag"}, {"--completion", "csh"}} {
		err = exec.Command(bin, bad...).Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
			t.Fatalf("switchd %s: %v, want exit status 2", strings.Join(bad, " "), err)
		}
	}
	// Completion: the bash script loads, and switchd answers the shell
	// from its own definitions (as tg does).
	script := `source <(switchd --completion bash) && complete -p switchd
echo "flags: $(COMP_LINE="switchd --re" COMP_POINT=12 switchd switchd --re switchd | sort | tr '\n' ' ')"
echo "shells: $(COMP_LINE="switchd --completion " COMP_POINT=21 switchd switchd "" --completion | sort | tr '\n' ' ')"`
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"))
	out, err = cmd.CombinedOutput()
	if want := "complete -C 'switchd' switchd\nflags: --rewrap \nshells: bash fish zsh \n"; err != nil || string(out) != want {
		t.Fatalf("switchd completion in bash: %v\n%q\nwant %q", err, out, want)
	}
}

// cyclesFromEnv is how many cycles a kill loop runs: the variable name's
// value (the long run, on the machine), or def (CI).
func cyclesFromEnv(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q", name, s)
	}
	return n
}
