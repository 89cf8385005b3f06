package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

func TestIssueAndIdentityRoundTrip(t *testing.T) {
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cases := []Request{
		{Name: "NA.UBND terminal 1", Role: Terminal, Agency: "NA.UBND", Clearance: telegram.Confidential},
		{Name: "ops", Role: Operator, Clearance: telegram.Secret},
		{Name: "audit", Role: Auditor, Clearance: telegram.TopSecret},
		{Name: "sw", Role: Switch, Agency: "SW.HN", Clearance: telegram.TopSecret, DNSNames: []string{"localhost"}},
	}
	for _, req := range cases {
		iss, err := ca.Issue(req)
		if err != nil {
			t.Fatalf("%s: %v", req.Name, err)
		}
		id, err := IdentityOf(iss.Cert)
		if err != nil {
			t.Fatalf("%s: %v", req.Name, err)
		}
		if id.Name != req.Name || id.Role != req.Role || id.Agency != req.Agency || id.Clearance != req.Clearance {
			t.Errorf("identity %+v from request %+v", id, req)
		}
		if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("%s does not verify as a client certificate: %v", req.Name, err)
		}
	}
}

func TestIssueRefusesIncomplete(t *testing.T) {
	ca, _ := NewCA("test CA", time.Hour)
	for _, req := range []Request{
		{Name: "t", Role: Terminal, Clearance: telegram.Secret}, // no agency
		{Name: "t", Role: "king", Agency: "A", Clearance: telegram.Secret},
		{Name: "t", Role: Terminal, Agency: "A"}, // no clearance
		{Role: Terminal, Agency: "A", Clearance: telegram.Secret},
	} {
		if _, err := ca.Issue(req); fault.KindOf(err) != fault.Invalid {
			t.Errorf("Issue(%+v) = %v, want an Invalid error", req, err)
		}
	}
}

// selfSigned makes a certificate with arbitrary URI SANs, bypassing Issue.
func selfSigned(t *testing.T, uris ...string) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	for _, u := range uris {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, p)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestIdentityIsStrict(t *testing.T) {
	cases := map[string][]string{
		"no identity":             nil,
		"no clearance":            {"urn:dienbao:role:terminal", "urn:dienbao:agency:NA.TU"},
		"terminal without agency": {"urn:dienbao:role:terminal", "urn:dienbao:clearance:SECRET"},
		"role twice":              {"urn:dienbao:role:auditor", "urn:dienbao:role:terminal", "urn:dienbao:agency:NA.TU", "urn:dienbao:clearance:SECRET"},
		"unknown role":            {"urn:dienbao:role:admin", "urn:dienbao:clearance:SECRET"},
		"bad agency":              {"urn:dienbao:role:terminal", "urn:dienbao:agency:NA..TU", "urn:dienbao:clearance:SECRET"},
		"lower-case agency":       {"urn:dienbao:role:terminal", "urn:dienbao:agency:na.tu", "urn:dienbao:clearance:SECRET"},
		"unknown field":           {"urn:dienbao:role:terminal", "urn:dienbao:agency:NA.TU", "urn:dienbao:clearance:SECRET", "urn:dienbao:power:all"},
		"bad clearance":           {"urn:dienbao:role:terminal", "urn:dienbao:agency:NA.TU", "urn:dienbao:clearance:COSMIC"},
	}
	for name, uris := range cases {
		if _, err := IdentityOf(selfSigned(t, uris...)); fault.KindOf(err) != fault.Permission {
			t.Errorf("%s: %v, want a Permission error", name, err)
		}
	}
}

// openssl accepts what certs issues.
func TestOpenSSLVerifies(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	ca, _ := NewCA("test CA", time.Hour)
	if err := ca.Save(filepath.Join(dir, "ca")); err != nil {
		t.Fatal(err)
	}
	iss, _ := ca.Issue(Request{Name: "HN.UBND terminal", Role: Terminal, Agency: "HN.UBND", Clearance: telegram.Secret})
	if err := WriteFolder(filepath.Join(dir, "id"), iss, ca.PEM, "127.0.0.1:4433"); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(openssl, "verify", "-CAfile", filepath.Join(dir, "ca", CACertFile), filepath.Join(dir, "id", FolderCert)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	text, err := exec.Command(openssl, "x509", "-noout", "-ext", "subjectAltName", "-in", filepath.Join(dir, "id", FolderCert)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, text)
	}
	for _, want := range []string{"urn:dienbao:role:terminal", "urn:dienbao:agency:HN.UBND", "urn:dienbao:clearance:SECRET"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("openssl does not show %s in:\n%s", want, text)
		}
	}
	// Keys are private to their owner.
	for _, p := range []string{filepath.Join(dir, "ca", CAKeyFile), filepath.Join(dir, "id", FolderKey)} {
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, st.Mode().Perm())
		}
	}
	// LoadFolder reads it back.
	f, err := LoadFolder(filepath.Join(dir, "id"))
	if err != nil || f.Switch != "127.0.0.1:4433" || f.Identity.Agency != "HN.UBND" {
		t.Fatalf("LoadFolder: %+v %v", f, err)
	}
	// Nothing is overwritten.
	if err := ca.Save(filepath.Join(dir, "ca")); err == nil {
		t.Error("Save overwrote an existing CA")
	}
}
