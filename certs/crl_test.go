package certs

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

func TestCRL(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewCA("another CA", time.Hour)
	a, _ := ca.Issue(Request{Name: "a", Role: Terminal, Agency: "HN.UBND", Clearance: telegram.Secret, Validity: time.Hour})
	b, _ := ca.Issue(Request{Name: "b", Role: Terminal, Agency: "HN.UBND", Clearance: telegram.Secret, Validity: time.Hour})
	foreign, _ := other.Issue(Request{Name: "x", Role: Terminal, Agency: "HN.UBND", Clearance: telegram.Secret, Validity: time.Hour})
	if err := ca.Revoke(dir, foreign.Cert, 0); err == nil {
		t.Fatal("revoked a certificate of another CA")
	}
	if err := ca.Revoke(dir, a.Cert, ReasonCodes["keyCompromise"]); err != nil {
		t.Fatal(err)
	}
	ca.Revoke(dir, a.Cert, 0) // twice: once
	pem1, err := ca.CRL(dir, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(pem1, []*x509.Certificate{ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	if !crl.Revoked(a.Cert) || crl.Revoked(b.Cert) || crl.Len() != 1 || crl.Stale(time.Now()) || !crl.Stale(time.Now().Add(2*time.Hour)) {
		t.Fatalf("CRL: %d revoked, a %v, b %v", crl.Len(), crl.Revoked(a.Cert), crl.Revoked(b.Cert))
	}
	if _, err := ParseCRL(pem1, []*x509.Certificate{other.Cert}); err == nil {
		t.Fatal("a CRL signed by another CA was accepted")
	}
	pem2, _ := ca.CRL(dir, time.Hour)
	crl2, _ := ParseCRL(pem2, []*x509.Certificate{ca.Cert})
	if crl2.Number.Cmp(crl.Number) <= 0 {
		t.Fatalf("CRL numbers %s then %s", crl.Number, crl2.Number)
	}
	if _, err := ParseCRL([]byte("not a CRL"), []*x509.Certificate{ca.Cert}); err == nil {
		t.Fatal("garbage accepted as a CRL")
	}
}
