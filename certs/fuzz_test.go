package certs

import (
	"crypto/x509"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

var (
	fuzzCAOnce sync.Once
	fuzzCA     *CA
	fuzzCRL    []byte
)

func fuzzSetup(f *testing.F) {
	fuzzCAOnce.Do(func() {
		var err error
		if fuzzCA, err = NewCA("fuzz CA", time.Hour); err != nil {
			f.Fatal(err)
		}
		dir := f.TempDir()
		iss, _ := fuzzCA.Issue(Request{Name: "t", Role: Terminal, Agency: "HN.UBND", Clearance: telegram.Secret, Validity: time.Hour})
		fuzzCA.Revoke(dir, iss.Cert, 1)
		if fuzzCRL, err = fuzzCA.CRL(dir, time.Hour); err != nil {
			f.Fatal(err)
		}
	})
}

// FuzzIdentity: a certificate with arbitrary identity names in its URI
// SANs either yields a complete, valid identity or is refused; never a
// half one, never a panic.
func FuzzIdentity(f *testing.F) {
	fuzzSetup(f)
	f.Add("urn:dienbao:role:terminal", "urn:dienbao:agency:NA.VINH.UBND", "urn:dienbao:clearance:SECRET")
	f.Add("urn:dienbao:role:operator", "urn:dienbao:clearance:TOPSECRET", "")
	f.Add("urn:dienbao:role:terminal", "urn:dienbao:role:operator", "urn:dienbao:clearance:SECRET")
	f.Add("urn:dienbao:agency:na.tu", "urn:dienbao:role:switch", "urn:dienbao:clearance:x")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		tmpl := &x509.Certificate{SerialNumber: fuzzCA.Cert.SerialNumber, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		for _, s := range []string{a, b, c} {
			if u, err := url.Parse(s); err == nil && s != "" {
				tmpl.URIs = append(tmpl.URIs, u)
			}
		}
		der, err := x509.CreateCertificate(nil, tmpl, fuzzCA.Cert, fuzzCA.Cert.PublicKey, fuzzCA.Key)
		if err != nil {
			return
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := IdentityOf(cert)
		if err != nil {
			return
		}
		if _, err := ParseRole(string(id.Role)); err != nil || !id.Clearance.Valid() {
			t.Fatalf("accepted identity %+v", id)
		}
		if (id.Role == Terminal || id.Role == Switch) && id.Agency == "" {
			t.Fatalf("a %s without an agency", id.Role)
		}
		if id.Agency != "" {
			if p, err := telegram.ParseAddress(string(id.Agency)); err != nil || p != id.Agency {
				t.Fatalf("agency %q not canonical", id.Agency)
			}
		}
	})
}

// FuzzParseCRL: no bytes panic the CRL reader, and nothing but a CRL
// signed by the CA is accepted.
func FuzzParseCRL(f *testing.F) {
	fuzzSetup(f)
	f.Add(fuzzCRL)
	f.Add([]byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		crl, err := ParseCRL(data, []*x509.Certificate{fuzzCA.Cert})
		if err != nil {
			return
		}
		if crl.NextUpdate.IsZero() {
			t.Fatal("accepted a CRL without a next update")
		}
	})
}
