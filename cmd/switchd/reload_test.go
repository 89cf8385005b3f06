package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

func freeTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SIGHUP puts an edited agency directory in force without dropping a
// session: a terminal connected before files to the new agency on the same
// connection. A directory file that does not parse changes nothing. The
// monitoring listener answers throughout.
func TestSIGHUPReloadsTheDirectory(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	httpAddr := freeTCPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", freeUDPPort(t), "--http", httpAddr)
	c := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	defer c.Close()
	file := func(to telegram.Address) error {
		_, err := c.Send(context.Background(), client.Telegram{To: []telegram.Address{to}, Body: []byte("x")})
		return err
	}
	if err := file("QN.UBND"); !fault.Is(fault.NotExist, err) {
		t.Fatalf("before the reload, QN.UBND: %v", err)
	}
	dirFile := filepath.Join(data, "directory.toml")
	old, err := os.ReadFile(dirFile)
	if err != nil {
		t.Fatal(err)
	}
	hup := func(content string) {
		if err := os.WriteFile(dirFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		p.cmd.Process.Signal(syscall.SIGHUP)
	}
	// A broken file first: refused, the old directory stays.
	hup(string(old) + "\n[[agency]]\naddress = \"not an address!\"\n")
	waitFor(t, p, "reload refused")
	if err := file("QN.UBND"); !fault.Is(fault.NotExist, err) {
		t.Fatalf("after a refused reload, QN.UBND: %v", err)
	}
	if err := file("NA.TU"); err != nil {
		t.Fatalf("after a refused reload, the old directory: %v", err)
	}
	// A new agency comes with its published end-to-end key.
	if err := daemon.EnsureDevAgencyKeys(data, "QN.UBND", ""); err != nil {
		t.Fatal(err)
	}
	hup(string(old) + "\n[[agency]]\naddress = \"QN.UBND\"\nname = \"Ủy ban nhân dân tỉnh Quảng Ninh\"\n")
	waitFor(t, p, "directory and limits reloaded")
	if err := file("QN.UBND"); err != nil {
		t.Fatalf("after the reload, on the same session: %v", err)
	}
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `dienbao_filed_total{precedence="ROUTINE"} 2`) {
		t.Fatalf("metrics after the reload:\n%s", body)
	}
	p.stop(t)
}

// waitFor waits for a line in switchd's output.
func waitFor(t *testing.T, p *process, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("switchd never logged %q\n%s", text, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
