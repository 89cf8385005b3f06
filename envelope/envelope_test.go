package envelope

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/golden"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

type party struct {
	key  *AgencyKey
	cert []byte
}

func setup(t *testing.T, agencies ...telegram.Address) (*certs.CA, map[telegram.Address]party, *Directory) {
	t.Helper()
	ca, err := certs.NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ps := map[telegram.Address]party{}
	var pub Published
	for _, a := range agencies {
		k, err := NewAgencyKey(a)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Certify(ca.Key, k.Public(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ps[a] = party{k, c}
		pub.Certs = append(pub.Certs, c)
	}
	d, errs := NewDirectory(pub, []*x509.Certificate{ca.Cert})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return ca, ps, d
}

func sealFor(t *testing.T, d *Directory, from *AgencyKey, p Plain) []byte {
	t.Helper()
	to := map[telegram.Address]*Cert{}
	for _, a := range addressees(p.To, append(p.Info, p.From)) {
		c, err := d.Current(a, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		to[a] = c
	}
	env, _, err := Seal(p, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func headerOf(p Plain) telegram.Header {
	return telegram.Header{From: p.From, To: p.To, Info: p.Info, Precedence: p.Precedence, Classification: p.Classification,
		Ref: p.Ref, DeliverAt: p.DeliverAt, ExpiresAt: p.ExpiresAt, FiledAt: time.Now()}
}

func reasonOf(t *testing.T, err error) string {
	t.Helper()
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return r.Reason
}

func TestSealOpensAtEachAddresseeOnly(t *testing.T) {
	_, ps, d := setup(t, "TW.VPTW", "NA.TU", "NA.UBND", "HN.UBND", "DN.UBND")
	p := Plain{Fields: Fields{From: "TW.VPTW", To: []telegram.Address{"NA.TU", "NA.UBND"}, Info: []telegram.Address{"HN.UBND"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Ref: "r1"}, Content: Content{Subject: "Chỉ thị", Body: []byte("nội dung mật")}}
	env := sealFor(t, d, ps["TW.VPTW"].key, p)
	h := headerOf(p)
	for _, a := range []telegram.Address{"NA.TU", "NA.UBND", "HN.UBND"} {
		o, err := Open(env, h, a, []*AgencyKey{ps[a].key}, d)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		if o.Subject != "Chỉ thị" || string(o.Body) != "nội dung mật" {
			t.Fatalf("%s opened %q %q", a, o.Subject, o.Body)
		}
		if _, err := Verify(o.Evidence, h, []*x509.Certificate{}, nil); err == nil {
			t.Fatal("evidence verified without the CA")
		}
	}
	// DN.UBND is not an addressee: its key opens nothing.
	if _, err := Open(env, h, "DN.UBND", []*AgencyKey{ps["DN.UBND"].key}, d); reasonOf(t, err) != ReasonUnreadable {
		t.Fatalf("DN.UBND: %v", err)
	}
	// NA.TU's terminal holding only another agency's key cannot open it.
	if _, err := Open(env, h, "NA.TU", []*AgencyKey{ps["NA.UBND"].key}, d); reasonOf(t, err) != ReasonUnreadable {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestTamperingIsRefused(t *testing.T) {
	ca, ps, d := setup(t, "TW.VPTW", "NA.TU", "HN.UBND")
	p := Plain{Fields: Fields{From: "TW.VPTW", To: []telegram.Address{"NA.TU"}, Precedence: telegram.Routine,
		Classification: telegram.Secret}, Content: Content{Body: []byte("hello")}}
	env := sealFor(t, d, ps["TW.VPTW"].key, p)
	h := headerOf(p)
	mine := []*AgencyKey{ps["NA.TU"].key}
	if _, err := Open(env, h, "NA.TU", mine, d); err != nil {
		t.Fatal(err)
	}
	// A header raised on the way.
	h2 := h
	h2.Precedence = telegram.Flash
	if _, err := Open(env, h2, "NA.TU", mine, d); reasonOf(t, err) != ReasonSignature {
		t.Fatal(err)
	}
	// The sealed content altered (its last byte).
	bad := append([]byte(nil), env...)
	bad[len(bad)-1] ^= 1
	if _, err := Open(bad, h, "NA.TU", mine, d); reasonOf(t, err) != ReasonSignature {
		t.Fatal(err)
	}
	// Signed by a key the CA never certified, in the sender's name.
	rogue, _ := NewAgencyKey("TW.VPTW")
	rogue.Serial = ps["TW.VPTW"].key.Serial
	env2 := sealFor(t, d, rogue, p)
	if _, err := Open(env2, h, "NA.TU", mine, d); reasonOf(t, err) != ReasonSignature {
		t.Fatal(err)
	}
	// The sender's key revoked before the filing.
	rv, err := Revoke(ca.Key, RevocationBody{Agency: "TW.VPTW", Serial: ps["TW.VPTW"].key.Serial, RevokedAt: time.Now().Add(-time.Minute), Reason: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	d2, errs := NewDirectory(Published{Certs: [][]byte{ps["TW.VPTW"].cert, ps["NA.TU"].cert}, Revocations: [][]byte{rv}}, []*x509.Certificate{ca.Cert})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := Open(env, h, "NA.TU", mine, d2); reasonOf(t, err) != ReasonSignature {
		t.Fatal(err)
	}
	// Filed before the revocation: still valid (telegrams already on
	// their way stay good).
	hOld := h
	hOld.FiledAt = time.Now().Add(-2 * time.Minute)
	if _, err := Open(env, hOld, "NA.TU", mine, d2); err != nil {
		t.Fatalf("filed before the revocation: %v", err)
	}
	// Not an envelope at all.
	if _, err := Open([]byte("plain text"), h, "NA.TU", mine, d); reasonOf(t, err) != ReasonSignature {
		t.Fatal(err)
	}
}

func TestSwitchSideMatch(t *testing.T) {
	_, ps, d := setup(t, "TW.VPTW", "NA.TU", "HN.UBND")
	p := Plain{Fields: Fields{From: "TW.VPTW", To: []telegram.Address{"NA.TU", "HN.UBND"}, Precedence: telegram.Priority,
		Classification: telegram.Secret, Ref: "x"}, Content: Content{Body: []byte("b")}}
	env := sealFor(t, d, ps["TW.VPTW"].key, p)
	e, err := Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	f := FieldsOf(headerOf(p))
	if err := e.Match(f); err != nil {
		t.Fatal(err)
	}
	f.Ref = "y"
	if err := e.Match(f); err == nil {
		t.Fatal("a different reference matched")
	}
	e.Keys = e.Keys[:1]
	if err := e.Match(FieldsOf(headerOf(p))); err == nil {
		t.Fatal("an envelope missing an addressee's key matched")
	}
}

// The formats, each from fixed inputs: a change shows as a changed file.
func TestGoldenFormats(t *testing.T) {
	at := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	hp, err := kem.DeriveKeyPair(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := hp.Bytes()
	sk := ed25519.NewKeyFromSeed(make([]byte, 32))
	k := AgencyKey{Agency: "NA.TU", Serial: "0011223344556677", KEMSeed: seed, Sign: sk.Seed(), Created: at}
	kb := KeyBody{V: Version, Agency: "NA.TU", Serial: k.Serial, KEM: KEMID, Enc: hp.PublicKey().Bytes(), SigAlg: SigAlg,
		Sign: sk.Public().(ed25519.PublicKey), NotBefore: at, NotAfter: at.Add(365 * 24 * time.Hour)}
	sh := SignedHeader{V: Version, From: "TW.VPTW", To: []telegram.Address{"NA.TU"}, Info: []telegram.Address{"HN.UBND"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Ref: "CV-12", ExpiresAt: at.Add(time.Hour),
		SignedAt: at, Nonce: make([]byte, 16), Key: "8899aabbccddeeff", Content: make([]byte, 32), SigAlg: SigAlg}
	shb, _ := wire.Marshal(sh)
	env := Envelope{Header: shb, Sig: ed25519.Sign(sk, append([]byte(domainTelegram), shb...)),
		Keys: []Wrap{{Agency: "NA.TU", Key: k.Serial, Sealed: []byte{1, 2, 3}}}, Nonce: make([]byte, 12), Sealed: []byte{4, 5, 6}}
	proof := Proof{V: ProofVersion, Addressee: "NA.TU", Header: telegram.Header{From: "TW.VPTW", To: []telegram.Address{"NA.TU"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Subject: "Chỉ thị", FiledAt: at, BodyLen: 8, Sealed: true},
		Evidence: Evidence{Envelope: []byte(Magic), ContentKey: make([]byte, 32), SenderKey: []byte{0xa2}},
		CA:       "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n"}
	pj, err := json.MarshalIndent(proof, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "proof.json", append(pj, '\n'))
	for name, v := range map[string]any{
		"agency-key.cbor.hex":      &k,
		"key-body.cbor.hex":        kb,
		"revocation-body.cbor.hex": RevocationBody{V: Version, Agency: "NA.TU", Serial: k.Serial, RevokedAt: at, Reason: "lost"},
		"signed-header.cbor.hex":   sh,
		"content.cbor.hex":         Content{Subject: "Chỉ thị", Body: []byte("nội dung")},
		"envelope.cbor.hex":        env,
		"key-certificate.cbor.hex": Signed{Body: mustMarshal(t, kb), Sig: []byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01}},
	} {
		b, err := wire.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if name == "envelope.cbor.hex" {
			b = append([]byte(Magic), b...)
			if _, err := Parse(b); err != nil {
				t.Fatal(err)
			}
		}
		golden.Check(t, name, []byte(hex.EncodeToString(b)+"\n"))
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
