package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// softHSM is Debian's SoftHSM2 module.
const softHSM = "/usr/lib/softhsm/libsofthsm2.so"

// A terminal's key made in a PKCS#11 token (SoftHSM2) never leaves it:
// the request, the TLS handshakes with a real switch and the inbox key
// all come from the token; key.pem holds only the token's URI. Renewed,
// the new key pair is made in the same token under a new object, the
// inbox is re-sealed under its secret, and it serves.
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
	// Renewal: a new key pair in the same token, under a new object; the
	// inbox re-sealed under the new pair's secret; the new key serves.
	before := mustTG(t, "certs", "inspect", "--json", id).stdout
	mustTG(t, "--id", id, "certs", "renew", "--ca", filepath.Join(site.Dir, "ca"))
	b, _ := os.ReadFile(filepath.Join(id, certs.FolderKey))
	renewed, err := certs.ParseTokenURI(string(b))
	if err != nil || !strings.HasPrefix(renewed.Object, "na-tu-2-") || renewed.Token != "dienbao" {
		t.Fatalf("key.pem after the renewal: %q (%v), want a new object of the same token", b, err)
	}
	later := time.Now().Add(time.Hour)
	if again, err := renewed.WithObject(certs.RenewedObject(renewed.Object, later)); err != nil || again.Object != "na-tu-2-"+later.UTC().Format("20060102T150405") || again.Token != "dienbao" {
		t.Fatalf("a second renewal's object: %q (%v), want the first label with the second's time", again.Object, err)
	}
	after := mustTG(t, "certs", "inspect", "--json", id).stdout
	if after == before || !strings.Contains(after, `"key_token":"dienbao/`+renewed.Object+`"`) || !strings.Contains(after, `"key_matches":true`) {
		t.Fatalf("inspect after the renewal:\n%s\nbefore:\n%s", after, before)
	}
	if _, err := os.Stat(filepath.Join(id, certs.FolderKey+".old")); !os.IsNotExist(err) {
		t.Fatalf("the former key's file is still there after the inbox was re-sealed: %v", err)
	}
	if r := mustTG(t, "--id", id, "inbox", "--stored"); !strings.Contains(r.stdout, "Subject: Qua thẻ") {
		t.Fatalf("the inbox, re-sealed under the new key pair's secret, reread:\n%s", r.stdout)
	}
	mustTG(t, "--id", site.IDDir("HN.UBND"), "send", "--to", "NA.TU", "--class", "SECRET", "sau khi gia hạn")
	if r := mustTG(t, "--id", id, "inbox"); !strings.Contains(r.stdout, "sau khi gia hạn") {
		t.Fatalf("inbox over the renewed token key:\n%s", r.stdout)
	}
}
