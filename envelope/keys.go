package envelope

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// The algorithms of format version 1.
const (
	Version = 1
	SigAlg  = "ed25519"
	KEMID   = 0x647a // ML-KEM-768 + X25519 (RFC 9180 registry, draft-ietf-hpke-pq)
	keysDir = "agency-keys"
	keyExt  = ".key"
)

var kem = hpke.MLKEM768X25519()

// PEM block types.
const (
	pemKey         = "DIENBAO AGENCY KEY"
	pemRequest     = "DIENBAO AGENCY KEY REQUEST"
	pemCertificate = "DIENBAO AGENCY KEY CERTIFICATE"
	pemRevocation  = "DIENBAO AGENCY KEY REVOCATION"
)

// Domain separation of the signatures.
const (
	domainKey        = "dienbao agency key v1\x00"
	domainRevocation = "dienbao key revocation v1\x00"
	domainTelegram   = "dienbao telegram v1\x00"
	domainWrap       = "dienbao e2e key v1\x00"
)

// AgencyKey is an agency's private key pair: the HPKE key addressees'
// content keys are sealed to, and the Ed25519 key its telegrams are signed
// with. It lives only in the agency's terminals' identity folders.
type AgencyKey struct {
	Agency  telegram.Address `cbor:"1,keyasint"`
	Serial  string           `cbor:"2,keyasint"`
	KEMSeed []byte           `cbor:"3,keyasint"` // hpke PrivateKey.Bytes
	Sign    []byte           `cbor:"4,keyasint"` // the Ed25519 seed
	Created time.Time        `cbor:"5,keyasint"`

	hp hpke.PrivateKey
	sk ed25519.PrivateKey
}

// NewAgencyKey makes a fresh key pair for agency.
func NewAgencyKey(agency telegram.Address) (*AgencyKey, error) {
	hp, err := kem.GenerateKey()
	if err != nil {
		return nil, err
	}
	seed, err := hp.Bytes()
	if err != nil {
		return nil, err
	}
	_, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	var sn [8]byte
	rand.Read(sn[:])
	k := &AgencyKey{Agency: agency, Serial: hex.EncodeToString(sn[:]), KEMSeed: seed, Sign: sk.Seed(),
		Created: time.Now().UTC().Truncate(time.Second)}
	return k, k.load()
}

func (k *AgencyKey) load() error {
	hp, err := kem.NewPrivateKey(k.KEMSeed)
	if err != nil {
		return fmt.Errorf("agency key %s: %w", k.Serial, err)
	}
	if len(k.Sign) != ed25519.SeedSize {
		return fmt.Errorf("agency key %s: signing seed is %d bytes", k.Serial, len(k.Sign))
	}
	k.hp, k.sk = hp, ed25519.NewKeyFromSeed(k.Sign)
	return nil
}

// Public is the key's unsigned public half: a request for the CA to
// certify, valid for validity from now.
func (k *AgencyKey) Public(validity time.Duration) KeyBody {
	// Not truncated: of two keys of an agency, the later made is current
	// (Directory.Current), even within a second.
	now := time.Now().UTC()
	return KeyBody{V: Version, Agency: k.Agency, Serial: k.Serial, KEM: KEMID, Enc: k.hp.PublicKey().Bytes(),
		SigAlg: SigAlg, Sign: k.sk.Public().(ed25519.PublicKey), NotBefore: now.Add(-24 * time.Hour), NotAfter: now.Add(validity)}
}

// KeyBody is an agency's public keys as certified.
type KeyBody struct {
	V         int              `cbor:"1,keyasint"`
	Agency    telegram.Address `cbor:"2,keyasint"`
	Serial    string           `cbor:"3,keyasint"`
	KEM       uint16           `cbor:"4,keyasint"`
	Enc       []byte           `cbor:"5,keyasint"`
	SigAlg    string           `cbor:"6,keyasint"`
	Sign      []byte           `cbor:"7,keyasint"`
	NotBefore time.Time        `cbor:"8,keyasint"`
	NotAfter  time.Time        `cbor:"9,keyasint"`
}

// Signed is a body the CA signed: a KeyCertificate or a Revocation.
type Signed struct {
	Body []byte `cbor:"1,keyasint"`
	Sig  []byte `cbor:"2,keyasint"`
}

// RevocationBody says the CA withdrew an agency's key from a time on:
// signatures by it on telegrams filed from then are not accepted, and
// nothing more is sealed to it.
type RevocationBody struct {
	V         int              `cbor:"1,keyasint"`
	Agency    telegram.Address `cbor:"2,keyasint"`
	Serial    string           `cbor:"3,keyasint"`
	RevokedAt time.Time        `cbor:"4,keyasint"`
	Reason    string           `cbor:"5,keyasint,omitempty"`
}

// Certify signs body with the CA's key.
func Certify(ca crypto.Signer, body KeyBody) ([]byte, error) {
	if err := body.check(); err != nil {
		return nil, err
	}
	return caSign(ca, domainKey, body)
}

// Revoke signs a revocation with the CA's key.
func Revoke(ca crypto.Signer, r RevocationBody) ([]byte, error) {
	r.V = Version
	if r.Serial == "" || r.Agency == "" {
		return nil, errors.New("a revocation names an agency and a key serial")
	}
	return caSign(ca, domainRevocation, r)
}

func caSign(ca crypto.Signer, domain string, v any) ([]byte, error) {
	body, err := wire.Marshal(v)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(append([]byte(domain), body...))
	var opts crypto.SignerOpts = crypto.SHA256
	if _, ok := ca.Public().(ed25519.PublicKey); ok {
		return nil, errors.New("an Ed25519 CA key is not supported for agency keys")
	}
	sig, err := ca.Sign(rand.Reader, d[:], opts)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(Signed{Body: body, Sig: sig})
}

func (b KeyBody) check() error {
	switch {
	case b.V != Version:
		return fmt.Errorf("agency key format %d, want %d", b.V, Version)
	case b.KEM != KEMID:
		return fmt.Errorf("agency key %s: KEM %#x, want ML-KEM-768+X25519 (%#x)", b.Serial, b.KEM, KEMID)
	case b.SigAlg != SigAlg || len(b.Sign) != ed25519.PublicKeySize:
		return fmt.Errorf("agency key %s: signature key is not Ed25519", b.Serial)
	case b.Serial == "":
		return errors.New("agency key without a serial")
	case !b.NotAfter.After(b.NotBefore):
		return fmt.Errorf("agency key %s: not after is not after not before", b.Serial)
	}
	if _, err := telegram.ParseAddress(string(b.Agency)); err != nil {
		return err
	}
	if _, err := kem.NewPublicKey(b.Enc); err != nil {
		return fmt.Errorf("agency key %s: encryption key: %w", b.Serial, err)
	}
	return nil
}

// caVerify checks a CA-signed object under any of cas and decodes its body
// into v.
func caVerify(raw []byte, domain string, cas []*x509.Certificate, v any) error {
	var s Signed
	if err := wire.Unmarshal(raw, &s); err != nil {
		return err
	}
	var last error = errors.New("no CA certificate to check it with")
	for _, ca := range cas {
		alg := x509.ECDSAWithSHA256
		if ca.PublicKeyAlgorithm == x509.RSA {
			alg = x509.SHA256WithRSA
		}
		if last = ca.CheckSignature(alg, append([]byte(domain), s.Body...), s.Sig); last == nil {
			return wire.Unmarshal(s.Body, v)
		}
	}
	return fmt.Errorf("not signed by the network's CA: %w", last)
}

// Cert is a verified key certificate.
type Cert struct {
	KeyBody
	Raw []byte // the certificate as the CA signed it
	enc hpke.PublicKey
}

// ParseCert checks a key certificate's CA signature and contents.
func ParseCert(raw []byte, cas []*x509.Certificate) (*Cert, error) {
	var b KeyBody
	if err := caVerify(raw, domainKey, cas, &b); err != nil {
		return nil, fmt.Errorf("agency key certificate: %w", err)
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	enc, _ := kem.NewPublicKey(b.Enc)
	return &Cert{KeyBody: b, Raw: raw, enc: enc}, nil
}

// ParseRevocation checks a revocation's CA signature.
func ParseRevocation(raw []byte, cas []*x509.Certificate) (RevocationBody, error) {
	var r RevocationBody
	if err := caVerify(raw, domainRevocation, cas, &r); err != nil {
		return r, fmt.Errorf("agency key revocation: %w", err)
	}
	if r.V != Version || r.Serial == "" {
		return r, errors.New("agency key revocation: malformed")
	}
	return r, nil
}

// Valid reports whether c may be used at t: within its validity, and not
// revoked at or before t.
func (c *Cert) Valid(t time.Time, revoked map[string]RevocationBody) error {
	if t.Before(c.NotBefore) || !t.Before(c.NotAfter) {
		return fmt.Errorf("%s's key %s is valid from %s to %s, not at %s", c.Agency, c.Serial,
			c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), t.UTC().Format(time.RFC3339))
	}
	if r, ok := revoked[c.Serial]; ok && !t.Before(r.RevokedAt) {
		return fmt.Errorf("%s's key %s was revoked at %s (%s)", c.Agency, c.Serial, r.RevokedAt.Format(time.RFC3339), r.Reason)
	}
	return nil
}

// EncodePEM wraps a key certificate, request or revocation for a file.
func EncodePEM(kind string, raw []byte) []byte {
	t := map[string]string{"cert": pemCertificate, "request": pemRequest, "revocation": pemRevocation}[kind]
	return pem.EncodeToMemory(&pem.Block{Type: t, Bytes: raw})
}

// Published is what a directory publishes: key certificates and
// revocations, raw, as read from PEM files.
type Published struct {
	Certs       [][]byte
	Revocations [][]byte
}

// ParsePEM sorts the blocks of a PEM file into p; a request is returned
// apart (the CA signs it).
func (p *Published) ParsePEM(data []byte) (requests []KeyBody, err error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		switch b.Type {
		case pemCertificate:
			p.Certs = append(p.Certs, b.Bytes)
		case pemRevocation:
			p.Revocations = append(p.Revocations, b.Bytes)
		case pemRequest:
			var kb KeyBody
			if err := wire.Unmarshal(b.Bytes, &kb); err != nil {
				return nil, err
			}
			requests = append(requests, kb)
		default:
			return nil, fmt.Errorf("unexpected PEM block %q", b.Type)
		}
	}
	return requests, nil
}

// Request encodes body as a certificate request file.
func Request(body KeyBody) ([]byte, error) {
	b, err := wire.Marshal(body)
	if err != nil {
		return nil, err
	}
	return EncodePEM("request", b), nil
}

// Save writes k into the identity folder dir (agency-keys/SERIAL.key,
// mode 0600), refusing to overwrite.
func (k *AgencyKey) Save(dir string) error {
	raw, err := wire.Marshal(k)
	if err != nil {
		return err
	}
	kd := filepath.Join(dir, keysDir)
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return err
	}
	return certs.WriteNew(filepath.Join(kd, k.Serial+keyExt), pem.EncodeToMemory(&pem.Block{Type: pemKey, Bytes: raw}), 0o600)
}

// LoadKeys reads the agency keys in the identity folder dir, newest first.
// A folder without any returns none and no error. Each key file must be
// private (mode 0600), as the TLS key is (certs.CheckPrivate).
func LoadKeys(dir string) ([]*AgencyKey, error) {
	kd := filepath.Join(dir, keysDir)
	ents, err := os.ReadDir(kd)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []*AgencyKey
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), keyExt) {
			continue
		}
		p := filepath.Join(kd, e.Name())
		if err := certs.CheckPrivate(p); err != nil {
			return nil, err
		}
		k, err := ReadKeyFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, nil
}

// ReadKeyFile reads one private agency key file.
func ReadKeyFile(p string) (*AgencyKey, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != pemKey {
		return nil, fmt.Errorf("%s is not an agency key file", p)
	}
	var k AgencyKey
	if err := wire.Unmarshal(b.Bytes, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &k, k.load()
}

// ParseFiles reads published keys from PEM files (name, contents): key
// certificates and revocations only; a request must be certified first.
func ParseFiles(files map[string][]byte) (Published, error) {
	var p Published
	for _, name := range slices.Sorted(maps.Keys(files)) {
		reqs, err := p.ParsePEM(files[name])
		if err == nil && len(reqs) > 0 {
			err = errors.New("it holds a key request: the CA certifies it first (tg certs sign-keys)")
		}
		if err != nil {
			return p, fmt.Errorf("%s: %w", name, err)
		}
	}
	return p, nil
}
