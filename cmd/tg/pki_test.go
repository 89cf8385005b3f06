package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/certs"
)

// The certificate lifecycle without a key leaving its machine: a CA of
// a root and an issuing intermediate, keys encrypted under a passphrase,
// request, sign, install, inspect, renew (same identity, new key), and the
// refusals that keep a wrong certificate out of a folder.
func TestCertificateLifecycle(t *testing.T) {
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("correct horse battery\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca, id := filepath.Join(dir, "ca"), filepath.Join(dir, "ids", "NA.UBND")
	mustTG(t, "certs", "init", "--out", ca, "--encrypt", "--passphrase-file", pass)
	for _, f := range []string{certs.CAKeyFile, certs.RootKeyFile} {
		if b, _ := os.ReadFile(filepath.Join(ca, f)); !certs.KeyEncrypted(b) {
			t.Fatalf("%s is not encrypted", f)
		}
	}
	// Without the passphrase the CA cannot sign.
	mustTG(t, "certs", "request", "--role", "terminal", "--name", "NA.UBND terminal 1", "--agency", "NA.UBND", "--clearance", "SECRET",
		"--encrypt", "--passphrase-file", pass, "--out", id)
	req := filepath.Join(id, certs.RequestFile)
	if r := tg(t, "", "certs", "sign", "--ca", ca, req, "--out", filepath.Join(dir, "cert.pem")); r.code != exitInvalid || !strings.Contains(r.stderr, "no passphrase") {
		t.Fatalf("sign without the CA's passphrase: exit %d %s", r.code, r.stderr)
	}
	t.Setenv(certs.PassphraseEnv, pass)
	r := mustTG(t, "--json", "certs", "sign", "--ca", ca, req, "--days", "30", "--out", filepath.Join(dir, "cert.pem"))
	signed := jsonLines(t, r.stdout)[0]
	if signed["role"] != "terminal" || signed["agency"] != "NA.UBND" || signed["clearance"] != "SECRET" || signed["expires_in_days"].(float64) != 29 {
		t.Fatalf("signed %s", r.stdout)
	}
	// A request altered after it was made is refused.
	b, _ := os.ReadFile(req)
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte(strings.Replace(string(b), string(b[100:104]), "AAAA", 1)), 0o644)
	if r := tg(t, "", "certs", "sign", "--ca", ca, bad, "--out", filepath.Join(dir, "bad-cert.pem")); r.code == 0 {
		t.Fatal("an altered request was signed")
	}
	// Install: refused into a folder whose key it is not for.
	other := filepath.Join(dir, "ids", "other")
	mustTG(t, "certs", "request", "--role", "terminal", "--name", "other", "--agency", "NA.TU", "--out", other)
	if r := tg(t, "", "--id", other, "certs", "install", "--ca", filepath.Join(ca, certs.CACertFile), filepath.Join(dir, "cert.pem")); r.code != exitInvalid || !strings.Contains(r.stderr, "is not the certificate of the key") {
		t.Fatalf("install into another key's folder: exit %d %s", r.code, r.stderr)
	}
	mustTG(t, "--id", id, "certs", "install", "--ca", filepath.Join(ca, certs.CACertFile), filepath.Join(dir, "cert.pem"))
	f, err := certs.LoadFolder(id)
	if err != nil || f.Identity.Agency != "NA.UBND" {
		t.Fatalf("the installed folder: %+v %v", f, err)
	}
	first := f.Identity.Serial
	got := jsonLines(t, mustTG(t, "--json", "certs", "inspect", id).stdout)[0]
	if got["chain_ok"] != true || got["key_matches"] != nil || got["key_encrypted"] != true || got["serial"] != first ||
		strings.Join(anyStrings(got["chain"]), ",") != "dienbao network CA issuing CA" {
		t.Fatalf("inspect: %v", got)
	}

	// Renew: a new key and request beside the old, signed, installed.
	mustTG(t, "--id", id, "certs", "renew")
	renewReq := filepath.Join(id, "renew", certs.RequestFile)
	mustTG(t, "certs", "sign", "--ca", ca, renewReq, "--out", filepath.Join(dir, "renewed.pem"))
	mustTG(t, "--id", id, "certs", "install", filepath.Join(dir, "renewed.pem"))
	f, err = certs.LoadFolder(id)
	if err != nil || f.Identity.Serial == first || f.Identity.Name != "NA.UBND terminal 1" || f.Identity.Clearance.String() != "SECRET" {
		t.Fatalf("after renewal: %+v %v", f, err)
	}
	if _, err := os.Stat(filepath.Join(id, "cert.pem.old")); err != nil {
		t.Errorf("the former certificate was not kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(id, "key.pem.old")); err == nil {
		t.Error("the former private key was left behind")
	}
	if _, err := os.Stat(filepath.Join(id, "renew")); err == nil {
		t.Error("renew/ left behind after the install")
	}
	// Wrong passphrase: said as such.
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not it at all\n"), 0o600)
	t.Setenv(certs.PassphraseEnv, wrong)
	if _, err := certs.LoadFolder(id); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("a wrong passphrase: %v", err)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
