package certs

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/google/renameio/v2"
)

// Files a CA folder keeps for revocation.
const (
	RevokedFile = "revoked.json" // every revocation, for the next CRL
	CRLFile     = "crl.pem"      // the latest CRL
)

// Revocation is one revoked certificate.
type Revocation struct {
	Serial  string    `json:"serial"` // hexadecimal
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
	Reason  int       `json:"reason"` // RFC 5280 reason code
}

// ReasonCodes are the RFC 5280 CRL reason codes tg accepts by name.
var ReasonCodes = map[string]int{"unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3,
	"superseded": 4, "cessationOfOperation": 5, "certificateHold": 6}

type revocations struct {
	Number  int64        `json:"crl_number"` // of the last CRL made
	Revoked []Revocation `json:"revoked"`
}

func loadRevocations(dir string) (revocations, error) {
	var r revocations
	b, err := os.ReadFile(filepath.Join(dir, RevokedFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		return r, fault.E("certs.crl", fault.Integrity, "cannot read "+RevokedFile+" in "+dir, err)
	}
	return r, nil
}

func (r revocations) save(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return renameio.WriteFile(filepath.Join(dir, RevokedFile), append(b, '\n'), 0o644)
}

// Revoke records that cert is revoked, in the CA folder dir. Revoking a
// certificate twice changes nothing. The revocation takes effect with the
// next CRL (see CRL).
func (ca *CA) Revoke(dir string, cert *x509.Certificate, reason int) error {
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		return fault.E("certs.revoke", fault.Invalid, "the certificate was not issued by this CA", err)
	}
	r, err := loadRevocations(dir)
	if err != nil {
		return err
	}
	sn := cert.SerialNumber.Text(16)
	for _, x := range r.Revoked {
		if x.Serial == sn {
			return nil
		}
	}
	r.Revoked = append(r.Revoked, Revocation{Serial: sn, Subject: cert.Subject.CommonName, At: time.Now().UTC(), Reason: reason})
	return r.save(dir)
}

// CRL makes and signs a new certificate revocation list of every
// revocation recorded in dir, valid for validity (its next-update time),
// and returns it PEM-encoded. Each CRL has a higher number than the last.
func (ca *CA) CRL(dir string, validity time.Duration) ([]byte, error) {
	r, err := loadRevocations(dir)
	if err != nil {
		return nil, err
	}
	r.Number++
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(r.Number), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(validity)}
	for _, x := range r.Revoked {
		sn, ok := new(big.Int).SetString(x.Serial, 16)
		if !ok {
			return nil, fault.Errorf("certs.crl", fault.Integrity, "%s: bad serial %q", RevokedFile, x.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: sn, RevocationTime: x.At, ReasonCode: x.Reason})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fault.E("certs.crl", fault.Internal, "sign the CRL", err)
	}
	if err := r.save(dir); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), nil
}

// WriteCRL replaces the CRL file at path atomically, so a switch watching
// it never reads half of one.
func WriteCRL(path string, crl []byte) error {
	if err := renameio.WriteFile(path, crl, 0o644); err != nil {
		return fault.E("certs.crl", fault.Internal, "cannot write "+path, err)
	}
	return nil
}

// CRL is a verified revocation list, as the switch checks certificates
// against it.
type CRL struct {
	Number     *big.Int
	ThisUpdate time.Time
	NextUpdate time.Time
	revoked    map[string]bool
}

// ParseCRL reads a CRL (PEM or DER) and checks that one of the CAs signed it.
func ParseCRL(data []byte, cas []*x509.Certificate) (*CRL, error) {
	const op = "certs.crl"
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "X509 CRL" {
			return nil, fault.Errorf(op, fault.Invalid, "a %s, not an X509 CRL", b.Type)
		}
		data = b.Bytes
	}
	rl, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "not a CRL", err)
	}
	signed := false
	for _, ca := range cas {
		if rl.CheckSignatureFrom(ca) == nil {
			signed = true
			break
		}
	}
	if !signed {
		return nil, fault.E(op, fault.Integrity, "the CRL is not signed by the network CA")
	}
	if rl.NextUpdate.IsZero() {
		return nil, fault.E(op, fault.Invalid, "the CRL has no next-update time")
	}
	c := &CRL{Number: rl.Number, ThisUpdate: rl.ThisUpdate, NextUpdate: rl.NextUpdate, revoked: map[string]bool{}}
	for _, e := range rl.RevokedCertificateEntries {
		c.revoked[e.SerialNumber.Text(16)] = true
	}
	return c, nil
}

// Revoked reports whether cert is on the list.
func (c *CRL) Revoked(cert *x509.Certificate) bool { return c.revoked[cert.SerialNumber.Text(16)] }

// Len is the number of revoked certificates listed.
func (c *CRL) Len() int { return len(c.revoked) }

// Stale reports whether the CRL is past its next-update time at now: it
// can no longer be trusted to list every revocation.
func (c *CRL) Stale(now time.Time) bool { return !now.Before(c.NextUpdate) }

// ParsePEMCertificates reads every certificate in a PEM bundle.
func ParsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
}
