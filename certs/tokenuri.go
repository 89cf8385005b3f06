package certs

import (
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
)

// TokenKey is a key pair in a PKCS#11 token, as a URI names it.
type TokenKey struct {
	URI     string
	Module  string // module-path
	Token   string // token label
	Object  string // the key pair's label
	PinFile string // pin-source=file:...
	Pin     string // pin-value
}

// IsTokenURI says whether a key file's contents name a token key.
func IsTokenURI(data []byte) bool {
	return strings.HasPrefix(strings.TrimSpace(string(data)), "pkcs11:")
}

// ParseTokenURI reads a PKCS#11 URI (RFC 7512): token and object in the
// path, module-path and pin-source or pin-value in the query.
func ParseTokenURI(s string) (TokenKey, error) {
	const op = "certs.token"
	s = strings.TrimSpace(s)
	k := TokenKey{URI: s}
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return k, fault.Errorf(op, fault.Invalid, "%q is not a PKCS#11 URI (pkcs11:token=...;object=...?module-path=...)", s)
	}
	path, query, _ := strings.Cut(rest, "?")
	attr := func(list, sep string, set map[string]*string) error {
		for _, kv := range strings.Split(list, sep) {
			if kv == "" {
				continue
			}
			name, v, _ := strings.Cut(kv, "=")
			v, err := url.PathUnescape(v)
			if err != nil {
				return fault.Errorf(op, fault.Invalid, "the PKCS#11 URI's %s: %v", name, err)
			}
			if p, ok := set[name]; ok {
				*p = v
			}
		}
		return nil
	}
	var pinSource string
	if err := attr(path, ";", map[string]*string{"token": &k.Token, "object": &k.Object}); err != nil {
		return k, err
	}
	if err := attr(query, "&", map[string]*string{"module-path": &k.Module, "pin-source": &pinSource, "pin-value": &k.Pin}); err != nil {
		return k, err
	}
	if pinSource != "" {
		file, ok := strings.CutPrefix(pinSource, "file:")
		if !ok {
			return k, fault.Errorf(op, fault.Invalid, "pin-source %q: only file:PATH is read", pinSource)
		}
		k.PinFile = file
	}
	switch {
	case k.Module == "":
		return k, fault.E(op, fault.Invalid, "the PKCS#11 URI names no module-path (the token's library, e.g. /usr/lib/softhsm/libsofthsm2.so)")
	case k.Token == "" || k.Object == "":
		return k, fault.E(op, fault.Invalid, "the PKCS#11 URI must name the token and the object (token=...;object=...)")
	case k.Pin == "" && k.PinFile == "":
		return k, fault.E(op, fault.Invalid, "the PKCS#11 URI gives no PIN (pin-source=file:PATH)")
	}
	return k, nil
}

// WithObject is the same token, module and PIN under another object
// label: where a renewal makes its new key pair.
func (k TokenKey) WithObject(object string) (TokenKey, error) {
	rest := strings.TrimPrefix(strings.TrimSpace(k.URI), "pkcs11:")
	path, query, hasQuery := strings.Cut(rest, "?")
	var attrs []string
	for _, kv := range strings.Split(path, ";") {
		if name, _, _ := strings.Cut(kv, "="); name == "object" {
			kv = "object=" + url.PathEscape(object)
		}
		attrs = append(attrs, kv)
	}
	uri := "pkcs11:" + strings.Join(attrs, ";")
	if hasQuery {
		uri += "?" + query
	}
	return ParseTokenURI(uri)
}

// renewalSuffix is what RenewedObject appends: the renewal's time.
var renewalSuffix = regexp.MustCompile(`-\d{8}T\d{6}$`)

// RenewedObject is the object label of a renewal's key pair: the first
// key pair's label with the renewal's time (UTC), so that renewals never
// meet a label in use and do not grow the label.
func RenewedObject(object string, now time.Time) string {
	return renewalSuffix.ReplaceAllString(object, "") + "-" + now.UTC().Format("20060102T150405")
}
