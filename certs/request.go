package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"

	"github.com/dienbao/dienbao/switch/fault"
)

// Certificate requests (PKCS#10), so that a holder's private key never
// leaves the machine that made it: tg certs request makes the key and a
// request naming the identity asked for (in the same URI names a
// certificate carries); tg certs sign, at the CA, issues exactly that
// identity for the request's key; tg certs install puts the certificate
// beside the key.

// RequestFile is the request's file name in an identity folder.
const RequestFile = "request.pem"

// NewRequest makes a key and a certificate request for req's identity
// (req.Validity is not part of a request: the CA decides it).
func NewRequest(req Request) (csrPEM []byte, key crypto.Signer, err error) {
	if err := req.check(); err != nil {
		return nil, nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fault.E("certs.request", fault.Internal, "generate key", err)
	}
	der, err := RequestFor(req, k)
	if err != nil {
		return nil, nil, err
	}
	return der, k, nil
}

// RequestFor makes a certificate request for req's identity signed by an
// existing key (a renewal with a key kept in a token, or a test).
func RequestFor(req Request, key crypto.Signer) ([]byte, error) {
	subj := pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{string(req.Role)}}
	if req.Agency != "" {
		subj.Organization = []string{string(req.Agency)}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj,
		URIs: uris(req.Role, req.Agency, req.Clearance, req.Scope, req.Links), DNSNames: req.DNSNames, IPAddresses: req.IPs}, key)
	if err != nil {
		return nil, fault.E("certs.request", fault.Internal, "create the request", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// ParseRequest reads a certificate request, checks its signature (its
// maker holds the key) and the identity it asks for, and returns that
// identity as a Request, with the request's public key.
func ParseRequest(data []byte) (Request, crypto.PublicKey, error) {
	const op = "certs.sign"
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return Request{}, nil, fault.E(op, fault.Invalid, "not a PEM certificate request (tg certs request writes one)")
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return Request{}, nil, fault.E(op, fault.Invalid, "unreadable certificate request", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return Request{}, nil, fault.E(op, fault.Invalid, "the request's signature does not verify: its maker does not hold its key", err)
	}
	id, err := IdentityOf(&x509.Certificate{Subject: csr.Subject, URIs: csr.URIs})
	if err != nil {
		return Request{}, nil, err
	}
	req := Request{Name: id.Name, Role: id.Role, Agency: id.Agency, Clearance: id.Clearance, Scope: id.Scope, Links: id.Links,
		DNSNames: csr.DNSNames, IPs: csr.IPAddresses}
	if err := req.check(); err != nil {
		return Request{}, nil, err
	}
	return req, csr.PublicKey, nil
}
