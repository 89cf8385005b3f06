//go:build cgo

package certs

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/ThalesGroup/crypto11"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/miekg/pkcs11"
)

// Keys in a PKCS#11 token (an HSM, a smart card, SoftHSM), through
// github.com/ThalesGroup/crypto11. Where a key file is expected (an
// identity folder's key.pem, a switch's key), a file holding a PKCS#11 URI
// (RFC 7512) instead of a PEM key names a key pair in a token:
//
//	pkcs11:token=dienbao;object=na-ubnd-1?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/dienbao/token.pin
//
// The private key never leaves the token: it signs the TLS handshakes and
// the certificate request. pin-source names a file (mode 0600) whose first
// line is the user PIN; pin-value gives it inline (the key file is then
// itself a secret, and must be mode 0600 as a key is). A terminal's inbox
// key, which is otherwise derived from its private key, comes from a
// secret key the token keeps beside it (object OBJECT-inbox, made once):
// HMAC-SHA256 of a fixed label, computed in the token.

// tokens holds one crypto11 context per module and token, for the life
// of the process (a context holds the token's sessions).
var tokens = struct {
	sync.Mutex
	m map[string]*crypto11.Context
}{m: map[string]*crypto11.Context{}}

func (k TokenKey) context() (*crypto11.Context, error) {
	const op = "certs.token"
	tokens.Lock()
	defer tokens.Unlock()
	id := k.Module + "\x00" + k.Token
	if c := tokens.m[id]; c != nil {
		return c, nil
	}
	pin := k.Pin
	if k.PinFile != "" {
		p, err := PassphraseFile(k.PinFile)
		if err != nil {
			return nil, fault.E(op, fault.Invalid, "the token's PIN: "+err.Error())
		}
		pin = string(p)
	}
	c, err := crypto11.Configure(&crypto11.Config{Path: k.Module, TokenLabel: k.Token, Pin: pin})
	if err != nil {
		return nil, fault.E(op, fault.Unavailable, fmt.Sprintf("cannot open token %q with %s", k.Token, k.Module), err)
	}
	tokens.m[id] = c
	return c, nil
}

// Signer finds the key pair in the token.
func (k TokenKey) Signer() (crypto.Signer, error) {
	c, err := k.context()
	if err != nil {
		return nil, err
	}
	s, err := c.FindKeyPair(nil, []byte(k.Object))
	if err != nil {
		return nil, fault.E("certs.token", fault.Unavailable, "cannot read token "+k.Token, err)
	}
	if s == nil {
		return nil, fault.Errorf("certs.token", fault.NotExist, "token %q holds no key pair %q", k.Token, k.Object)
	}
	return &tokenSigner{Signer: s, key: k}, nil
}

// Generate makes a new P-256 key pair in the token, refusing to replace
// one of the same label.
func (k TokenKey) Generate() (crypto.Signer, error) {
	c, err := k.context()
	if err != nil {
		return nil, err
	}
	if s, err := c.FindKeyPair(nil, []byte(k.Object)); err == nil && s != nil {
		return nil, fault.Errorf("certs.token", fault.Invalid, "token %q already holds a key pair %q: name another object", k.Token, k.Object)
	}
	id := make([]byte, 16)
	rand.Read(id)
	s, err := c.GenerateECDSAKeyPairWithLabel(id, []byte(k.Object), elliptic.P256())
	if err != nil {
		return nil, fault.E("certs.token", fault.Unavailable, "cannot make a key pair in token "+k.Token, err)
	}
	return &tokenSigner{Signer: s, key: k}, nil
}

// tokenSigner is a key pair in a token, with the token's secret for the
// keys derived from it.
type tokenSigner struct {
	crypto.Signer
	key TokenKey
}

// TokenURI is the URI that names the key pair: what a key file holds.
func (t *tokenSigner) TokenURI() string { return t.key.URI }

// DeriveSecret is HMAC-SHA256 of label under the secret key the token
// keeps beside the key pair (OBJECT-inbox, made at the first call): a
// secret that never leaves the token, the same at every call.
func (t *tokenSigner) DeriveSecret(label string) ([]byte, error) {
	c, err := t.key.context()
	if err != nil {
		return nil, err
	}
	name := []byte(t.key.Object + "-inbox")
	sk, err := c.FindKey(nil, name)
	if err != nil || sk == nil { // crypto11 says "not found" as an error
		id := make([]byte, 16)
		rand.Read(id)
		sk, err = c.GenerateSecretKeyWithLabel(id, name, 256, crypto11.CipherGeneric)
	}
	if err != nil {
		return nil, fault.E("certs.token", fault.Unavailable, "the token's inbox secret", err)
	}
	h, err := sk.NewHMAC(pkcs11.CKM_SHA256_HMAC, 32)
	if err != nil {
		return nil, fault.E("certs.token", fault.Unavailable, "HMAC in the token", err)
	}
	h.Write([]byte(label))
	sum := h.Sum(nil)
	if len(sum) == 0 {
		return nil, errors.New("the token gave an empty HMAC")
	}
	return sum, nil
}
