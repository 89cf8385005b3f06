package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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
	// PEM is what the network trusts, as identity folders and switches
	// hold it in ca.pem: the CA's certificate, and for an issuing
	// intermediate, the root's after it.
	PEM []byte
	// Chain is appended to the certificates this CA issues: an issuing
	// intermediate's own certificate (empty for a root that issues).
	Chain []byte
}

// File names inside a CA folder. A folder made by tg certs init holds a
// root and an issuing intermediate: ca.pem (the intermediate's
// certificate, then the root's: what every switch and identity folder
// trusts), ca.key (the intermediate's key: it signs certificates and
// CRLs), root.pem and root.key (the root's: move root.key offline; it is
// needed only to make a new intermediate). A folder of one self-signed CA
// (ca.pem, ca.key; dev sites and earlier versions) issues as before.
const (
	CACertFile   = "ca.pem"
	CAKeyFile    = "ca.key"
	RootCertFile = "root.pem"
	RootKeyFile  = "root.key"
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
	return newCA(name, validity, nil, nil)
}

// NewHierarchy creates an offline root valid for rootValidity and an
// issuing intermediate it signs, valid for issuingValidity.
func NewHierarchy(name string, rootValidity, issuingValidity time.Duration) (root, issuing *CA, err error) {
	return NewHierarchyOf(name, rootValidity, issuingValidity, nil, nil)
}

// NewHierarchyOf is NewHierarchy over key pairs made elsewhere (in a
// PKCS#11 token: TokenKey.Generate); a nil key is made here.
func NewHierarchyOf(name string, rootValidity, issuingValidity time.Duration, rootKey, issuingKey crypto.Signer) (root, issuing *CA, err error) {
	if root, err = newCA(name+" root", rootValidity, nil, rootKey); err != nil {
		return nil, nil, err
	}
	issuing, err = newCA(name+" issuing CA", issuingValidity, root, issuingKey)
	return root, issuing, err
}

// newCA creates a CA certificate for key (made here if nil): self-signed
// if parent is nil, else an intermediate that parent signs (and that
// issues only end-entity certificates).
func newCA(name string, validity time.Duration, parent *CA, key crypto.Signer) (*CA, error) {
	if key == nil {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, fault.E("certs.ca", fault.Internal, "generate key", err)
		}
		key = k
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
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
		if tmpl.NotAfter.After(parent.Cert.NotAfter) {
			tmpl.NotAfter = parent.Cert.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		return nil, fault.E("certs.ca", fault.Internal, "create CA certificate", err)
	}
	cert, _ := x509.ParseCertificate(der)
	own := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca := &CA{Cert: cert, Key: key, PEM: own}
	if parent != nil {
		ca.PEM, ca.Chain = append(bytes.Clone(own), parent.PEM...), own
	}
	return ca, nil
}

// Save writes ca.pem and ca.key (mode 0600) into dir, refusing to overwrite.
func (ca *CA) Save(dir string) error {
	return ca.save(dir, CACertFile, CAKeyFile, nil)
}

// SaveEncrypted is Save with the key encrypted under passphrase (in the
// clear if it is empty).
func (ca *CA) SaveEncrypted(dir string, passphrase []byte) error {
	return ca.save(dir, CACertFile, CAKeyFile, passphrase)
}

// SaveHierarchy writes a root and its issuing intermediate into a new CA
// folder dir (see CACertFile), their keys encrypted under passphrase if
// it is not empty.
func SaveHierarchy(dir string, root, issuing *CA, passphrase []byte) error {
	if err := root.save(dir, RootCertFile, RootKeyFile, passphrase); err != nil {
		return err
	}
	return issuing.save(dir, CACertFile, CAKeyFile, passphrase)
}

func (ca *CA) save(dir, certFile, keyFile string, passphrase []byte) error {
	var keyPEM []byte
	var err error
	if t, ok := ca.Key.(interface{ TokenURI() string }); ok {
		keyPEM = []byte(t.TokenURI() + "\n") // the key stays in its token: its file names it
	} else if keyPEM, err = MarshalKeyEncrypted(ca.Key, passphrase); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E("certs.save", fault.Internal, "create CA folder", err)
	}
	if err := WriteNew(filepath.Join(dir, certFile), ca.PEM, 0o644); err != nil {
		return err
	}
	return WriteNew(filepath.Join(dir, keyFile), keyPEM, 0o600)
}

// LoadCA reads the issuing CA from dir: ca.pem and ca.key, the key asked
// a passphrase through DefaultPassphrase if it is encrypted.
func LoadCA(dir string) (*CA, error) {
	return LoadCAWith(dir, DefaultPassphrase)
}

// LoadCAWith is LoadCA asking pass for an encrypted key's passphrase.
func LoadCAWith(dir string, pass Passphrase) (*CA, error) {
	return loadCA(dir, CACertFile, CAKeyFile, pass)
}

// LoadRoot reads a CA folder's root (root.pem, root.key), to make a new
// issuing intermediate.
func LoadRoot(dir string) (*CA, error) {
	return loadCA(dir, RootCertFile, RootKeyFile, DefaultPassphrase)
}

func loadCA(dir, certFile, keyFile string, pass Passphrase) (*CA, error) {
	pair, err := LoadKeyPair(filepath.Join(dir, certFile), filepath.Join(dir, keyFile), pass)
	if err != nil {
		return nil, fault.E("certs.loadca", fault.Invalid, "cannot load the CA from "+dir+": "+err.Error())
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok || !pair.Leaf.IsCA {
		return nil, fault.Errorf("certs.loadca", fault.Invalid, "%s does not hold a CA certificate and key", dir)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, certFile))
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: pair.Leaf, Key: signer, PEM: caPEM}
	if pair.Leaf.CheckSignatureFrom(pair.Leaf) != nil { // an intermediate
		ca.Chain = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Leaf.Raw})
	}
	return ca, nil
}

// NewIssuing makes a new issuing intermediate signed by root, to replace
// an expiring or compromised one: its ca.pem must then go to every switch
// and identity folder.
func (root *CA) NewIssuing(name string, validity time.Duration) (*CA, error) {
	return newCA(name, validity, root, nil)
}

// NewIssuingOf is NewIssuing over a key pair made elsewhere (a token's).
func (root *CA) NewIssuingOf(name string, validity time.Duration, key crypto.Signer) (*CA, error) {
	return newCA(name, validity, root, key)
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
	if err := req.check(); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fault.E("certs.issue", fault.Internal, "generate key", err)
	}
	iss, err := ca.Sign(req, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	if iss.KeyPEM, err = MarshalKey(key); err != nil {
		return nil, err
	}
	return iss, nil
}

// check validates a request and fills in its default validity.
func (req *Request) check() error {
	const op = "certs.issue"
	if req.Name == "" {
		return fault.E(op, fault.Invalid, "a certificate needs a name")
	}
	if !req.Clearance.Valid() {
		return fault.E(op, fault.Invalid, "a certificate needs a clearance")
	}
	if _, err := ParseRole(string(req.Role)); err != nil {
		return err
	}
	if req.Agency == "" && (req.Role == Terminal || req.Role == Switch) {
		return fault.Errorf(op, fault.Invalid, "a %s certificate needs --agency", req.Role)
	}
	if len(req.Scope)+len(req.Links) > 0 && req.Role != Operator {
		return fault.Errorf(op, fault.Invalid, "only an operator's certificate takes --scope, not a %s's", req.Role)
	}
	if req.Validity <= 0 {
		req.Validity = 365 * 24 * time.Hour
	}
	return nil
}

// Sign issues a certificate for req to the holder of pub (whose private
// key stays where it was made: a certificate request). Issued.KeyPEM is
// empty; CertPEM is the certificate followed by the CA's chain.
func (ca *CA) Sign(req Request, pub crypto.PublicKey) (*Issued, error) {
	const op = "certs.issue"
	if err := req.check(); err != nil {
		return nil, err
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
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // never past the CA's own end
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fault.E(op, fault.Internal, "create certificate", err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.Chain...)
	return &Issued{CertPEM: certPEM, Cert: cert}, nil
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
