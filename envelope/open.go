package envelope

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Reasons an addressee's terminal refuses a telegram, as the sender reads
// them in its NOT_DELIVERED report.
const (
	ReasonSignature  = "signature"  // not signed by the sender's valid, certified key, or altered on the way
	ReasonUnreadable = "unreadable" // not sealed for a key this terminal holds
)

// Refusal is why a telegram cannot be accepted as valid.
type Refusal struct {
	Reason string // ReasonSignature or ReasonUnreadable
	Detail string // what failed, without content
}

func (r *Refusal) Error() string { return r.Reason + ": " + r.Detail }

func refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// Directory is the published keys a terminal checks against: every
// certificate and revocation that verified under the CA.
type Directory struct {
	certs   map[string]*Cert
	revoked map[string]RevocationBody
}

// NewDirectory verifies what p publishes under cas. Entries that do not
// verify are left out and returned as errors.
func NewDirectory(p Published, cas []*x509.Certificate) (*Directory, []error) {
	d := &Directory{certs: map[string]*Cert{}, revoked: map[string]RevocationBody{}}
	var errs []error
	for _, raw := range p.Certs {
		c, err := ParseCert(raw, cas)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d.certs[c.Serial] = c
	}
	for _, raw := range p.Revocations {
		r, err := ParseRevocation(raw, cas)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if c, ok := d.certs[r.Serial]; ok && c.Agency != r.Agency {
			errs = append(errs, fmt.Errorf("revocation of key %s names %s, the key is %s's", r.Serial, r.Agency, c.Agency))
			continue
		}
		d.revoked[r.Serial] = r
	}
	return d, errs
}

// Current is the key to seal for agency at t: the newest valid one.
func (d *Directory) Current(agency telegram.Address, t time.Time) (*Cert, error) {
	var best *Cert
	for _, c := range d.certs {
		if c.Agency == agency && c.Valid(t, d.revoked) == nil && (best == nil || c.NotBefore.After(best.NotBefore) ||
			c.NotBefore.Equal(best.NotBefore) && c.Serial > best.Serial) {
			best = c
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%s has no valid published key", agency)
	}
	return best, nil
}

// Cert returns the certificate of key serial.
func (d *Directory) Cert(serial string) (*Cert, bool) { c, ok := d.certs[serial]; return c, ok }

// Revoked is the revocations, by key serial.
func (d *Directory) Revoked() map[string]RevocationBody { return d.revoked }

// Len is how many certificates d holds.
func (d *Directory) Len() int { return len(d.certs) }

// Evidence is the signed form of a received telegram, kept beside the
// opened one: with the CA's certificate anyone can check offline that the
// sender signed what was opened.
type Evidence struct {
	Envelope   []byte `json:"envelope"`    // the body as delivered
	ContentKey []byte `json:"content_key"` // opens this telegram's content, nothing else
	SenderKey  []byte `json:"sender_key"`  // the sender's key certificate
}

// Opened is a verified, opened telegram.
type Opened struct {
	Content
	Signed   SignedHeader
	Evidence Evidence
}

// Open verifies body, delivered under header h, and opens it with one of
// mine (this agency's keys): the signed header must match h, be signed by
// the sender's certified key, valid and not revoked when the switch says
// it filed the telegram, and the content must be what was signed.
func Open(body []byte, h telegram.Header, agency telegram.Address, mine []*AgencyKey, dir *Directory) (*Opened, error) {
	e, c, err := checkSigned(body, h, dir)
	if err != nil {
		return nil, err
	}
	hd := sha256.Sum256(e.Header)
	var key []byte
	found := false
	for _, w := range e.Keys {
		if w.Agency != agency {
			continue
		}
		found = true
		for _, k := range mine {
			if k.Serial != w.Key {
				continue
			}
			if key, err = hpke.Open(k.hp, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(agency, hd[:]), w.Sealed); err != nil {
				return nil, refuse(ReasonUnreadable, "the content key sealed for %s's key %s does not open", agency, w.Key)
			}
		}
		if key == nil {
			return nil, refuse(ReasonUnreadable, "sealed for %s's key %s, which this terminal does not hold", agency, w.Key)
		}
	}
	if !found {
		return nil, refuse(ReasonUnreadable, "not sealed for %s", agency)
	}
	content, err := e.open(key)
	if err != nil {
		return nil, err
	}
	return &Opened{Content: content, Signed: e.h, Evidence: Evidence{Envelope: body, ContentKey: key, SenderKey: c.Raw}}, nil
}

// checkSigned parses body and checks its signature and signer against h.
func checkSigned(body []byte, h telegram.Header, dir *Directory) (*Envelope, *Cert, error) {
	e, err := Parse(body)
	if err != nil {
		return nil, nil, refuse(ReasonSignature, "%v", err)
	}
	// The delivery time is the sender's request: the switch may hold a
	// telegram longer (under a MINIMIZE), never shorter, so it is not
	// compared; the signed one is what the addressee is shown.
	f := FieldsOf(h)
	f.DeliverAt = e.h.DeliverAt
	if err := e.Match(f); err != nil {
		return nil, nil, refuse(ReasonSignature, "%v", err)
	}
	c, ok := dir.Cert(e.h.Key)
	if !ok {
		return nil, nil, refuse(ReasonSignature, "signed with key %s, which is not published under the CA", e.h.Key)
	}
	if err := e.checkSig(c, h.FiledAt, dir.revoked); err != nil {
		return nil, nil, err
	}
	return e, c, nil
}

func (e *Envelope) checkSig(c *Cert, filedAt time.Time, revoked map[string]RevocationBody) error {
	if c.Agency != e.h.From {
		return refuse(ReasonSignature, "signed with %s's key %s, not the sender %s's", c.Agency, c.Serial, e.h.From)
	}
	if err := c.Valid(filedAt, revoked); err != nil {
		return refuse(ReasonSignature, "%v", err)
	}
	if !ed25519.Verify(c.Sign, append([]byte(domainTelegram), e.Header...), e.Sig) {
		return refuse(ReasonSignature, "the signature does not verify under %s's key %s", c.Agency, c.Serial)
	}
	if e.h.SignedAt.After(filedAt.Add(time.Hour)) {
		return refuse(ReasonSignature, "signed at %s, after it was filed", e.h.SignedAt.Format(time.RFC3339))
	}
	return nil
}

// open decrypts the content with the content key and checks it is what
// was signed.
func (e *Envelope) open(key []byte) (Content, error) {
	hd := sha256.Sum256(e.Header)
	aead, err := contentAEAD(key)
	if err != nil {
		return Content{}, refuse(ReasonUnreadable, "bad content key")
	}
	pt, err := aead.Open(nil, e.Nonce, e.Sealed, hd[:])
	if err != nil {
		return Content{}, refuse(ReasonSignature, "the sealed content was altered (it fails its authentication)")
	}
	if d := sha256.Sum256(pt); !bytes.Equal(d[:], e.h.Content) {
		return Content{}, refuse(ReasonSignature, "the content is not what the sender signed")
	}
	var c Content
	if err := wire.Unmarshal(pt, &c); err != nil {
		return Content{}, refuse(ReasonSignature, "the content is malformed: %v", err)
	}
	return c, nil
}

// Verify checks evidence offline: the sender's key certificate under cas,
// not revoked (revocations as published) when the telegram was filed
// (filedAt, the switch's time, which its audit log proves); the signature;
// that the signed header matches h; and that the content key opens the
// envelope to the content the sender signed. It returns that content.
func Verify(ev Evidence, h telegram.Header, cas []*x509.Certificate, revocations [][]byte) (*Opened, error) {
	// The evidence's one key certificate is the directory: a signature by
	// any other key is not published there.
	d, errs := NewDirectory(Published{Certs: [][]byte{ev.SenderKey}, Revocations: revocations}, cas)
	if len(errs) > 0 {
		return nil, refuse(ReasonSignature, "%v", errs[0])
	}
	e, _, err := checkSigned(ev.Envelope, h, d)
	if err != nil {
		return nil, err
	}
	content, err := e.open(ev.ContentKey)
	if err != nil {
		return nil, err
	}
	return &Opened{Content: content, Signed: e.h, Evidence: ev}, nil
}
