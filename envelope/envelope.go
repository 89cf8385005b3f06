package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Magic begins every envelope: a body that begins with it is sealed.
const Magic = "DBE2E1\n"

// Is reports whether body is an envelope (begins with Magic).
func Is(body []byte) bool { return bytes.HasPrefix(body, []byte(Magic)) }

// SignedHeader is what the sender signs: the header fields the switch
// enforces, when it was signed, a nonce, the signing key, and the digest
// of the sealed content (subject and body).
type SignedHeader struct {
	V              int                     `cbor:"1,keyasint"`
	From           telegram.Address        `cbor:"2,keyasint"`
	To             []telegram.Address      `cbor:"3,keyasint"`
	Info           []telegram.Address      `cbor:"4,keyasint,omitempty"`
	Precedence     telegram.Precedence     `cbor:"5,keyasint"`
	Classification telegram.Classification `cbor:"6,keyasint"`
	Ref            string                  `cbor:"7,keyasint,omitempty"`
	DeliverAt      time.Time               `cbor:"8,keyasint,omitzero"`
	ExpiresAt      time.Time               `cbor:"9,keyasint,omitzero"`
	SignedAt       time.Time               `cbor:"10,keyasint"`
	Nonce          []byte                  `cbor:"11,keyasint"`
	Key            string                  `cbor:"12,keyasint"`
	Content        []byte                  `cbor:"13,keyasint"`
	SigAlg         string                  `cbor:"14,keyasint"`
}

// Wrap is the content key sealed for one addressee agency's key.
type Wrap struct {
	Agency telegram.Address `cbor:"1,keyasint"`
	Key    string           `cbor:"2,keyasint"`
	Sealed []byte           `cbor:"3,keyasint"`
}

// Envelope is a sealed and signed telegram body.
type Envelope struct {
	Header []byte `cbor:"1,keyasint"`
	Sig    []byte `cbor:"2,keyasint"`
	Keys   []Wrap `cbor:"3,keyasint"`
	Nonce  []byte `cbor:"4,keyasint"`
	Sealed []byte `cbor:"5,keyasint"`

	h SignedHeader
}

// Content is what is sealed: the subject and the body.
type Content struct {
	Subject string `cbor:"1,keyasint,omitempty"`
	Body    []byte `cbor:"2,keyasint"`
}

// Plain is a telegram before sealing: the header fields the switch will
// enforce, and the content.
type Plain struct {
	Fields
	Content
}

// Seal signs p with the sender's key and seals its content once, the
// content key wrapped for each addressee agency's certified key and the
// sender agency's own (one per agency, in to). It returns the envelope and the content key (which the
// sender may keep to prove later what it sent).
func Seal(p Plain, sender *AgencyKey, to map[telegram.Address]*Cert) (env, contentKey []byte, err error) {
	if sender == nil || sender.Agency != p.From {
		return nil, nil, fmt.Errorf("no signing key of %s", p.From)
	}
	content, err := wire.Marshal(p.Content)
	if err != nil {
		return nil, nil, err
	}
	cd := sha256.Sum256(content)
	nonce := make([]byte, 16)
	rand.Read(nonce)
	h := SignedHeader{V: Version, From: p.From, To: p.To, Info: p.Info, Precedence: p.Precedence,
		Classification: p.Classification, Ref: p.Ref, DeliverAt: p.DeliverAt, ExpiresAt: p.ExpiresAt,
		SignedAt: time.Now().UTC(), Nonce: nonce, Key: sender.Serial, Content: cd[:], SigAlg: SigAlg}
	hb, err := wire.Marshal(h)
	if err != nil {
		return nil, nil, err
	}
	hd := sha256.Sum256(hb)
	e := Envelope{Header: hb, Sig: ed25519.Sign(sender.sk, append([]byte(domainTelegram), hb...))}
	contentKey = make([]byte, 32)
	rand.Read(contentKey)
	// Sealed for the sender's own agency too, so that it can retrieve and
	// prove what it sent.
	for _, a := range addressees(p.To, append(slices.Clip(p.Info), p.From)) {
		c := to[a]
		if c == nil {
			return nil, nil, fmt.Errorf("%s has no published key to seal for", a)
		}
		sealed, err := hpke.Seal(c.enc, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(a, hd[:]), contentKey)
		if err != nil {
			return nil, nil, err
		}
		e.Keys = append(e.Keys, Wrap{Agency: a, Key: c.Serial, Sealed: sealed})
	}
	aead, err := contentAEAD(contentKey)
	if err != nil {
		return nil, nil, err
	}
	e.Nonce = make([]byte, aead.NonceSize())
	rand.Read(e.Nonce)
	e.Sealed = aead.Seal(nil, e.Nonce, content, hd[:])
	b, err := wire.Marshal(e)
	if err != nil {
		return nil, nil, err
	}
	return append([]byte(Magic), b...), contentKey, nil
}

// addressees lists the agencies once each, in order.
func addressees(to, info []telegram.Address) []telegram.Address {
	var out []telegram.Address
	for _, a := range append(slices.Clip(to), info...) {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func wrapInfo(a telegram.Address, headerDigest []byte) []byte {
	return append(append([]byte(domainWrap+string(a)), 0), headerDigest...)
}

func contentAEAD(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// Parse decodes an envelope and its signed header, checking only their
// form. It does no public-key work: the switch calls it on every sealed
// filing.
func Parse(body []byte) (*Envelope, error) {
	if !Is(body) {
		return nil, errors.New("the body is not a sealed envelope")
	}
	var e Envelope
	if err := wire.Unmarshal(body[len(Magic):], &e); err != nil {
		return nil, fmt.Errorf("the envelope is malformed: %w", err)
	}
	if err := wire.Unmarshal(e.Header, &e.h); err != nil {
		return nil, fmt.Errorf("the envelope's signed header is malformed: %w", err)
	}
	switch {
	case e.h.V != Version:
		return nil, fmt.Errorf("envelope format %d, want %d", e.h.V, Version)
	case e.h.SigAlg != SigAlg || len(e.Sig) != ed25519.SignatureSize:
		return nil, errors.New("the envelope is not signed with Ed25519")
	case len(e.h.Content) != sha256.Size || len(e.h.Nonce) != 16 || e.h.Key == "":
		return nil, errors.New("the envelope's signed header is incomplete")
	case len(e.Nonce) != 12:
		return nil, errors.New("the envelope's content nonce is malformed")
	}
	return &e, nil
}

// Signed returns the signed header.
func (e *Envelope) Signed() SignedHeader { return e.h }

// Digest is the hex SHA-256 of the signed header: what the switch records
// in its audit log when it files the envelope.
func (e *Envelope) Digest() string {
	d := sha256.Sum256(e.Header)
	return hex.EncodeToString(d[:])
}

// Fields are the header fields a signature covers, as the switch or an
// addressee sees them.
type Fields struct {
	From           telegram.Address
	To, Info       []telegram.Address
	Precedence     telegram.Precedence
	Classification telegram.Classification
	Ref            string
	DeliverAt      time.Time
	ExpiresAt      time.Time
}

// FieldsOf takes the signed fields of a header as delivered.
func FieldsOf(h telegram.Header) Fields {
	return Fields{From: h.From, To: h.To, Info: h.Info, Precedence: h.Precedence, Classification: h.Classification,
		Ref: h.Ref, DeliverAt: h.DeliverAt, ExpiresAt: h.ExpiresAt}
}

// Match checks that the signed header says what f says, and that every
// addressee agency has a wrapped key. The switch refuses a filing that
// does not match; an addressee refuses a delivery that does not.
func (e *Envelope) Match(f Fields) error {
	h := e.h
	var diff []string
	if h.From != f.From {
		diff = append(diff, fmt.Sprintf("sender %s, not %s", h.From, f.From))
	}
	if !slices.Equal(h.To, f.To) || !slices.Equal(h.Info, f.Info) {
		diff = append(diff, "addressees")
	}
	if h.Precedence != f.Precedence {
		diff = append(diff, fmt.Sprintf("precedence %s, not %s", h.Precedence, f.Precedence))
	}
	if h.Classification != f.Classification {
		diff = append(diff, fmt.Sprintf("classification %s, not %s", h.Classification, f.Classification))
	}
	if h.Ref != f.Ref {
		diff = append(diff, "reference")
	}
	if !h.DeliverAt.Equal(f.DeliverAt) {
		diff = append(diff, "delivery time")
	}
	if !h.ExpiresAt.Equal(f.ExpiresAt) {
		diff = append(diff, "latest delivery time")
	}
	if len(diff) > 0 {
		return fmt.Errorf("the signed header differs from the telegram's header: %v", diff)
	}
	for _, a := range addressees(h.To, h.Info) {
		if !slices.ContainsFunc(e.Keys, func(w Wrap) bool { return w.Agency == a }) {
			return fmt.Errorf("the envelope is not sealed for addressee %s", a)
		}
	}
	return nil
}
