package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// CA is a certificate authority able to issue dienbao certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	PEM  []byte // the CA certificate, PEM
}

// File names inside a CA folder.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca.key"
)

// Backdate is how long before its issue a certificate is valid from: a
// day, so that a clock off by hours (the classic mistake is local time set
// as UTC, seven hours in Vietnam) does not lock a terminal or a switch out
// with "not yet valid".
const Backdate = 24 * time.Hour

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA creates a self-signed CA valid for the given duration.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fault.E("certs.ca", fault.Internal, "generate key", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"dienbao"}},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fault.E("certs.ca", fault.Internal, "create CA certificate", err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Save writes ca.pem and ca.key (mode 0600) into dir, refusing to overwrite.
func (ca *CA) Save(dir string) error {
	keyPEM, err := MarshalKey(ca.Key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E("certs.save", fault.Internal, "create CA folder", err)
	}
	if err := WriteNew(filepath.Join(dir, CACertFile), ca.PEM, 0o644); err != nil {
		return err
	}
	return WriteNew(filepath.Join(dir, CAKeyFile), keyPEM, 0o600)
}

// LoadCA reads ca.pem and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	if err := CheckPrivate(filepath.Join(dir, CAKeyFile)); err != nil && !os.IsNotExist(err) { // missing: the load says so
		return nil, fault.E("certs.loadca", fault.Invalid, err.Error())
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fault.E("certs.loadca", fault.Invalid, "cannot load CA from "+dir, err)
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !pair.Leaf.IsCA {
		return nil, fault.Errorf("certs.loadca", fault.Invalid, "%s does not hold a CA certificate and key", dir)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	return &CA{Cert: pair.Leaf, Key: signer, PEM: caPEM}, nil
}

// Request describes a certificate to issue.
type Request struct {
	Name      string // common name
	Role      Role
	Agency    telegram.Address // required for terminals and switches
	Clearance telegram.Classification
	DNSNames  []string // switches: names clients dial
	IPs       []net.IP // switches: addresses clients dial
	Validity  time.Duration
	// Scope and Links (operators): the address prefixes and the links to
	// peer switches they may see and act on.
	Scope []telegram.Address
	Links []string
}

// Issued is a freshly issued certificate with its private key, both PEM.
type Issued struct {
	CertPEM []byte
	KeyPEM  []byte
	Cert    *x509.Certificate
}

// Issue creates a key pair and a certificate for req.
func (ca *CA) Issue(req Request) (*Issued, error) {
	const op = "certs.issue"
	if req.Name == "" {
		return nil, fault.E(op, fault.Invalid, "a certificate needs a name")
	}
	if !req.Clearance.Valid() {
		return nil, fault.E(op, fault.Invalid, "a certificate needs a clearance")
	}
	if _, err := ParseRole(string(req.Role)); err != nil {
		return nil, err
	}
	if req.Agency == "" && (req.Role == Terminal || req.Role == Switch) {
		return nil, fault.Errorf(op, fault.Invalid, "a %s certificate needs --agency", req.Role)
	}
	if len(req.Scope)+len(req.Links) > 0 && req.Role != Operator {
		return nil, fault.Errorf(op, fault.Invalid, "only an operator's certificate takes --scope, not a %s's", req.Role)
	}
	if req.Validity <= 0 {
		req.Validity = 365 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fault.E(op, fault.Internal, "generate key", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	subj := pkix.Name{CommonName: req.Name, OrganizationalUnit: []string{string(req.Role)}}
	if req.Agency != "" {
		subj.Organization = []string{string(req.Agency)}
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if req.Role == Switch {
		eku = append(eku, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               subj,
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(req.Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		URIs:                  uris(req.Role, req.Agency, req.Clearance, req.Scope, req.Links),
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fault.E(op, fault.Internal, "create certificate", err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err := MarshalKey(key)
	if err != nil {
		return nil, err
	}
	return &Issued{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM, Cert: cert}, nil
}

// Pool returns a cert pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// MarshalKey encodes a private key as PKCS#8 PEM.
func MarshalKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fault.E("certs.key", fault.Internal, "encode key", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteNew writes data to a new file at path with mode, fsynced; it
// refuses to overwrite one.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fault.E("certs.write", fault.Invalid, "refusing to overwrite or cannot create "+path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
