package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

func TestMain(m *testing.M) {
	code := m.Run()
	daemontest.RemoveSoftHSM()
	os.Exit(code)
}

// The switch's own TLS key in a PKCS#11 token (SoftHSM2): made in the
// token by tg certs request --pkcs11, certified by request, and named in
// the config by the key file that holds only its URI. switchd serves
// with it: a terminal's handshake verifies the switch's signature, made
// in the token, since no key material is on disk; a telegram goes
// through.
func TestSwitchKeyInToken(t *testing.T) {
	uri := daemontest.SoftToken(t, "switch")("dev-switch")
	dir := t.TempDir()

	bin := buildSwitchd(t)
	tg := filepath.Join(t.TempDir(), "tg")
	if out, err := exec.Command("go", "build", "-o", tg, "../tg").CombinedOutput(); err != nil {
		t.Fatalf("go build tg: %v\n%s", err, out)
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tg, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("tg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// A dev site, made once, then served from its config.
	data := filepath.Join(dir, "dev")
	addr := freeUDPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND")).Close()
	p.stop(t)

	sw := filepath.Join(data, "switch-token")
	run("certs", "request", "--role", "switch", "--name", "dev switch", "--agency", "SW.DEV", "--clearance", "TOP SECRET",
		"--dns", "localhost", "--ip", "127.0.0.1", "--pkcs11", uri, "--out", sw)
	run("certs", "sign", "--ca", filepath.Join(data, "ca"), filepath.Join(sw, certs.RequestFile), "--out", filepath.Join(dir, "switch.pem"))
	run("--id", sw, "certs", "install", "--ca", filepath.Join(data, "ca", certs.CACertFile), filepath.Join(dir, "switch.pem"))
	if b, _ := os.ReadFile(filepath.Join(sw, certs.FolderKey)); string(b) != uri+"\n" {
		t.Fatalf("the switch's key.pem holds %q, want the URI alone", b)
	}
	if out := run("certs", "inspect", sw); !strings.Contains(out, "key: in a PKCS#11 token (switch/dev-switch)") || !strings.Contains(out, "key: matches the certificate") {
		t.Fatalf("inspect:\n%s", out)
	}
	config := filepath.Join(data, "switchd.toml")
	b, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("cert = 'switch/cert.pem'", "cert = 'switch-token/cert.pem'", "key = 'switch/key.pem'", "key = 'switch-token/key.pem'").Replace(string(b))
	if !strings.Contains(cfg, "switch-token/cert.pem") || !strings.Contains(cfg, "switch-token/key.pem") {
		t.Fatalf("the dev config does not name the switch's certificate and key as expected:\n%s", b)
	}
	os.WriteFile(config, []byte(cfg), 0o600)

	p = startSwitchd(t, bin, "--config", config)
	sender := dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND"))
	ctx := context.Background()
	r, err := sender.Send(ctx, client.Telegram{To: []telegram.Address{"NA.UBND"}, Precedence: telegram.Flash, Body: []byte("qua khóa trong thiết bị")})
	sender.Close()
	if err != nil {
		t.Fatal(err)
	}
	if out := run("--id", filepath.Join(data, "ids", "NA.UBND"), "inbox"); !strings.Contains(out, r.ID.String()) || !strings.Contains(out, "qua khóa trong thiết bị") {
		t.Fatalf("inbox through the switch whose key is in the token:\n%s", out)
	}
	p.stop(t)
}
