//go:build !cgo

package certs

import (
	"crypto"

	"github.com/dienbao/dienbao/switch/fault"
)

// Without cgo there is no PKCS#11 (the module is a C library): a binary
// built with CGO_ENABLED=0 refuses a key in a token, saying so.

var errNoCgo = fault.E("certs.token", fault.Invalid, "this binary was built without cgo, and PKCS#11 tokens need it: build with a C compiler (CGO_ENABLED=1)")

// Signer refuses: no PKCS#11 without cgo.
func (k TokenKey) Signer() (crypto.Signer, error) { return nil, errNoCgo }

// Generate refuses: no PKCS#11 without cgo.
func (k TokenKey) Generate() (crypto.Signer, error) { return nil, errNoCgo }
