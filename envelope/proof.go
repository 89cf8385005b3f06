package envelope

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/telegram"
)

// ProofVersion is the proof format written.
const ProofVersion = 1

// Proof is what an addressee hands a third party (tg export-proof): the
// telegram as delivered, its signed form and the key that opens its
// content, the sender's key certificate and the CA that certified it, the
// revocations published when it was exported, and the switch's audit
// proof that it filed the telegram (with this envelope's signed header)
// and delivered it to the addressee. Checking it needs no access to the
// switch. Byte fields are base64 in JSON.
type Proof struct {
	V           int              `json:"v"`
	Addressee   telegram.Address `json:"addressee"`
	Header      telegram.Header  `json:"header"`
	Evidence    Evidence         `json:"evidence"`
	CA          string           `json:"ca"` // PEM
	Revocations [][]byte         `json:"revocations,omitempty"`
	Audit       *audit.Bundle    `json:"audit,omitempty"`
}

// Checked is what a proof proves.
type Checked struct {
	Opened *Opened
	// Filed and Delivered are the audit entries of the filing and of the
	// delivery to the addressee (nil without an audit proof).
	Filed, Delivered *audit.Entry
	Checkpoint       audit.Checkpoint
	VerifierKey      string
}

// Check verifies p: the signature and the content (Verify), then, with an
// audit proof, that the switch's signed log holds the filing of this
// telegram with this envelope's signed header, and its delivery to the
// addressee. The caller compares the verifier key with the switch's
// published one (auditKey, if given, must match it).
func (p Proof) Check(auditKey string) (*Checked, error) {
	if p.V != ProofVersion {
		return nil, fmt.Errorf("proof format %d, want %d", p.V, ProofVersion)
	}
	cas, err := certs.ParsePEMCertificates([]byte(p.CA))
	if err != nil || len(cas) == 0 {
		return nil, errors.New("the proof holds no CA certificate")
	}
	return p.check(cas, auditKey)
}

func (p Proof) check(cas []*x509.Certificate, auditKey string) (*Checked, error) {
	o, err := Verify(p.Evidence, p.Header, cas, p.Revocations)
	if err != nil {
		return nil, err
	}
	if o.Subject != p.Header.Subject {
		return nil, refuse(ReasonSignature, "the subject shown is not the one the sender signed")
	}
	out := &Checked{Opened: o}
	if p.Audit == nil {
		return out, nil
	}
	if p.Audit.ID != p.Header.ID {
		return nil, fmt.Errorf("the audit proof is about telegram %s, not %s", p.Audit.ID, p.Header.ID)
	}
	cp, entries, err := p.Audit.Check(auditKey)
	if err != nil {
		return nil, fmt.Errorf("the audit proof: %w", err)
	}
	out.Checkpoint, out.VerifierKey = cp, p.Audit.VerifierKey
	e, _ := Parse(p.Evidence.Envelope)
	for i := range entries {
		en := &entries[i]
		switch {
		case en.Event == audit.Filed && en.From == p.Header.From:
			if en.Reason != "sealed "+e.Digest() {
				return nil, fmt.Errorf("the switch filed telegram %s with another envelope (%q)", p.Header.ID, en.Reason)
			}
			out.Filed = en
		case en.Event == audit.Delivered && en.To == p.Addressee:
			out.Delivered = en
		}
	}
	if out.Filed == nil {
		return nil, errors.New("the audit proof holds no filing of the telegram")
	}
	if out.Delivered == nil {
		return nil, fmt.Errorf("the audit proof holds no delivery to %s", p.Addressee)
	}
	return out, nil
}
