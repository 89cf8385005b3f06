package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
)

// A terminal's key made in a PKCS#11 token (SoftHSM2) never leaves it:
// the request, the TLS handshakes with a real switch and the inbox key
// all come from the token; key.pem holds only the token's URI. Renewed,
// the new key pair is made in the same token under a new object, the
// inbox is re-sealed under its secret, and it serves.
func TestKeyInToken(t *testing.T) {
	uri := daemontest.SoftToken(t, "dienbao")("na-tu-2")
	dir := t.TempDir()

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

func TestMain(m *testing.M) {
	code := m.Run()
	daemontest.RemoveSoftHSM()
	os.Exit(code)
}

// A CA whose keys are in a PKCS#11 token: tg certs init --pkcs11 makes
// the root's and the intermediate's key pairs there (root.key and ca.key
// name them); the token signs certificates, a CRL and a new intermediate.
func TestCAKeysInToken(t *testing.T) {
	uri := daemontest.SoftToken(t, "ca")
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca")
	if r := mustTG(t, "certs", "init", "--pkcs11", uri("net"), "--out", ca); !strings.Contains(r.stdout, "keep the token offline") {
		t.Fatalf("tg certs init --pkcs11 says:\n%s", r.stdout)
	}
	for file, object := range map[string]string{certs.RootKeyFile: "net-root", certs.CAKeyFile: "net-issuing"} {
		b, _ := os.ReadFile(filepath.Join(ca, file))
		if k, err := certs.ParseTokenURI(string(b)); err != nil || k.Object != object {
			t.Fatalf("%s holds %q (%v), want the URI of object %s", file, b, err, object)
		}
	}
	if r := mustTG(t, "certs", "inspect", "--json", ca); !strings.Contains(r.stdout, `"key_token":"ca/net-issuing"`) || !strings.Contains(r.stdout, `"key_matches":true`) {
		t.Fatalf("inspect of the CA folder:\n%s", r.stdout)
	}
	if r := tg(t, "", "certs", "init", "--pkcs11", uri("net"), "--out", filepath.Join(dir, "again")); r.code != exitInvalid || !strings.Contains(r.stderr, "already holds a key pair") {
		t.Fatalf("a second CA over the same objects: %d %s", r.code, r.stderr)
	}
	if r := tg(t, "", "certs", "init", "--pkcs11", uri("other"), "--out", ca); r.code != exitInvalid || !strings.Contains(r.stderr, "already holds a CA") {
		t.Fatalf("a CA into a folder that holds one: %d %s", r.code, r.stderr)
	}
	// A certificate by request, signed in the token; revoked, in a CRL
	// the token signs.
	id := filepath.Join(dir, "na-tu")
	mustTG(t, "certs", "request", "--role", "terminal", "--name", "NA.TU terminal 1", "--agency", "NA.TU", "--out", id)
	mustTG(t, "certs", "sign", "--ca", ca, filepath.Join(id, certs.RequestFile), "--out", filepath.Join(dir, "cert.pem"))
	mustTG(t, "--id", id, "certs", "install", "--ca", filepath.Join(ca, certs.CACertFile), filepath.Join(dir, "cert.pem"))
	if r := mustTG(t, "certs", "inspect", "--json", id); !strings.Contains(r.stdout, `"chain_ok":true`) {
		t.Fatalf("the certificate the token signed:\n%s", r.stdout)
	}
	mustTG(t, "certs", "revoke", "--ca", ca, "--cert", id)
	crlPEM, _ := os.ReadFile(filepath.Join(ca, "crl.pem"))
	blk, _ := pem.Decode(crlPEM)
	issuing, err := certs.LoadCA(ca)
	if err != nil {
		t.Fatal(err)
	}
	if blk == nil {
		t.Fatalf("no CRL written: %q", crlPEM)
	}
	crl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil || crl.CheckSignatureFrom(issuing.Cert) != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("the CRL: %v, signature %v, %d revoked", err, crl.CheckSignatureFrom(issuing.Cert), len(crl.RevokedCertificateEntries))
	}
	// A new intermediate, its key in the token too, signed by the root's.
	next := filepath.Join(dir, "ca2")
	mustTG(t, "certs", "intermediate", "--root", ca, "--out", next, "--pkcs11", uri("net-issuing-2"))
	ca2, err := certs.LoadCA(next)
	if err != nil {
		t.Fatal(err)
	}
	root, err := certs.LoadRoot(ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca2.Cert.CheckSignatureFrom(root.Cert); err != nil {
		t.Fatalf("the new intermediate is not signed by the root: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(next, certs.CAKeyFile)); !certs.IsTokenURI(b) {
		t.Fatalf("the new intermediate's ca.key: %q, want a URI", b)
	}
}
