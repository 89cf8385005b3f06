package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// softHSM is Debian's SoftHSM2 module.
const softHSM = "/usr/lib/softhsm/libsofthsm2.so"

// A terminal's key made in a PKCS#11 token (SoftHSM2) never leaves it:
// the request, the TLS handshakes with a real switch and the inbox key
// all come from the token; key.pem holds only the token's URI.
func TestKeyInToken(t *testing.T) {
	util, err := exec.LookPath("softhsm2-util")
	if _, serr := os.Stat(softHSM); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("SoftHSM2 is not installed: .ci/run installs softhsm2")
		}
		t.Skip("SoftHSM2 is not installed (package softhsm2)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	os.MkdirAll(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	if out, err := exec.Command(util, "--init-token", "--free", "--label", "dienbao", "--pin", "123456", "--so-pin", "654321").CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	pin := filepath.Join(dir, "pin")
	os.WriteFile(pin, []byte("123456\n"), 0o600)
	uri := "pkcs11:token=dienbao;object=na-tu-2?module-path=" + softHSM + "&pin-source=file:" + pin

	site := daemontest.Start(t)
	id := filepath.Join(dir, "na-tu-2")
	mustTG(t, "certs", "request", "--role", "terminal", "--name", "NA.TU terminal 2", "--agency", "NA.TU", "--clearance", "SECRET",
		"--switch", site.Server.Addr().String(), "--pkcs11", uri, "--out", id)
	if b, _ := os.ReadFile(filepath.Join(id, certs.FolderKey)); string(b) != uri+"\n" {
		t.Fatalf("key.pem holds %q, want the URI alone", b)
	}
	if r := tg(t, "", "certs", "request", "--role", "terminal", "--name", "x", "--agency", "NA.TU", "--pkcs11", uri, "--out", filepath.Join(dir, "again")); r.code != exitInvalid || !strings.Contains(r.stderr, "already holds a key pair") {
		t.Fatalf("a second key of the same object: %d %s", r.code, r.stderr)
	}
	mustTG(t, "certs", "sign", "--ca", filepath.Join(site.Dir, "ca"), filepath.Join(id, certs.RequestFile), "--out", filepath.Join(dir, "cert.pem"))
	mustTG(t, "--id", id, "certs", "install", "--ca", filepath.Join(site.Dir, "ca", certs.CACertFile), filepath.Join(dir, "cert.pem"))
	if r := mustTG(t, "certs", "inspect", id); !strings.Contains(r.stdout, "key: in a PKCS#11 token (dienbao/na-tu-2)") || !strings.Contains(r.stdout, "key: matches the certificate") {
		t.Fatalf("inspect:\n%s", r.stdout)
	}
	if err := daemon.CopyDevAgencyKeys(site.Dir, "NA.TU", id); err != nil { // to open what is sealed for NA.TU
		t.Fatal(err)
	}
	mustTG(t, "--id", site.IDDir("HN.UBND"), "send", "--to", "NA.TU", "--class", "SECRET", "--subject", "Qua thẻ", "khóa trong thiết bị")
	if r := mustTG(t, "--id", id, "inbox"); !strings.Contains(r.stdout, "khóa trong thiết bị") {
		t.Fatalf("inbox over the token's key:\n%s", r.stdout)
	}
	if r := mustTG(t, "--id", id, "inbox", "--stored"); !strings.Contains(r.stdout, "Subject: Qua thẻ") {
		t.Fatalf("the inbox, sealed under the token's secret, reread:\n%s", r.stdout)
	}
	if r := tg(t, "", "--id", id, "certs", "renew"); r.code != exitInvalid || !strings.Contains(r.stderr, "PKCS#11 token") {
		t.Fatalf("renew of a token key: %d %s", r.code, r.stderr)
	}
}
