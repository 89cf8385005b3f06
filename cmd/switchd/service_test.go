package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The service files in deploy/ are what systemd accepts: the unit
// verifies without a warning (with ExecStart pointing at a real switchd),
// sysusers creates the switch's own user, tmpfiles its folders with their
// modes.
func TestServiceFiles(t *testing.T) {
	bin := buildSwitchd(t)
	for _, tool := range []string{"systemd-analyze", "systemd-sysusers", "systemd-tmpfiles"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed: .ci/run installs systemd", tool)
			}
			t.Skipf("%s is not installed (package systemd)", tool)
		}
	}
	dir := t.TempDir()
	unit, err := os.ReadFile("../../deploy/dienbao.service")
	if err != nil {
		t.Fatal(err)
	}
	u := filepath.Join(dir, "dienbao.service")
	os.WriteFile(u, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/switchd", bin)), 0o644)
	out, err := exec.Command("systemd-analyze", "verify", u).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if os.Geteuid() != 0 {
		t.Skip("sysusers and tmpfiles --root need root")
	}
	deploy, _ := filepath.Abs("../../deploy")
	root := filepath.Join(dir, "root")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	if out, err := exec.Command("systemd-sysusers", "--root", root, filepath.Join(deploy, "dienbao.sysusers")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !strings.Contains(string(passwd), ":dienbao telegraph switch:/var/lib/dienbao:/usr/sbin/nologin\n") {
		t.Fatalf("no dienbao user:\n%s", passwd)
	}
	if out, err := exec.Command("systemd-tmpfiles", "--create", "--root", root, filepath.Join(deploy, "dienbao.tmpfiles")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	for path, mode := range map[string]os.FileMode{"etc/dienbao": 0o750, "etc/dienbao/ca": 0o770, "var/lib/dienbao": 0o700} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("/%s: %v %v, want mode %o", path, fi.Mode(), err, mode)
		}
	}
}

// Started by systemd (Type=notify), the switch says READY=1 once it
// serves, RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 when
// it drains, each with its status; the switch's QUIC listener answers by
// the time READY=1 arrives.
func TestReadinessNotified(t *testing.T) {
	bin := buildSwitchd(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		b := make([]byte, 4096)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}
	addr := freeUDPPort(t)
	data := filepath.Join(dir, "dev")
	cmd := exec.Command(bin, "--dev", "--data", data, "--listen", addr)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	p := startCmd(t, cmd)
	if got := next(); got != "READY=1\nSTATUS=serving on "+addr {
		t.Fatalf("first notification %q", got)
	}
	c, err := dialFast(filepath.Join(data, "ids", "auditor"))
	if err != nil {
		t.Fatalf("READY=1 came before the switch answered: %v", err)
	}
	c.Close()
	p.cmd.Process.Signal(syscall.SIGHUP)
	if got := next(); !strings.HasPrefix(got, "RELOADING=1\n") {
		t.Fatalf("after SIGHUP: %q", got)
	}
	if got := next(); got != "READY=1\nSTATUS=serving on "+addr {
		t.Fatalf("after the reload: %q", got)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if got := next(); got != "STOPPING=1\nSTATUS=draining" {
		t.Fatalf("at SIGTERM: %q", got)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("switchd exited with %v\n%s", err, p.out.String())
	}
}
