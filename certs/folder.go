package certs

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"

	"github.com/dienbao/dienbao/switch/fault"
)

// An identity folder holds what a tg user needs to reach the switch:
//
//	cert.pem   the holder's certificate
//	key.pem    its private key (mode 0600)
//	ca.pem     the network CA, to verify the switch
//	switch     the switch's address, HOST:PORT, one line
const (
	FolderCert   = "cert.pem"
	FolderKey    = "key.pem"
	FolderCA     = "ca.pem"
	FolderSwitch = "switch"
)

// WriteFolder creates an identity folder. It refuses to overwrite an
// existing certificate or key.
func WriteFolder(dir string, iss *Issued, caPEM []byte, switchAddr string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E("certs.folder", fault.Internal, "create identity folder", err)
	}
	if err := WriteNew(filepath.Join(dir, FolderKey), iss.KeyPEM, 0o600); err != nil {
		return err
	}
	if err := WriteNew(filepath.Join(dir, FolderCert), iss.CertPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, FolderCA), caPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, FolderSwitch), []byte(switchAddr+"\n"), 0o644)
}

// Folder is a loaded identity folder.
type Folder struct {
	Dir  string
	Cert tls.Certificate
	CAs  *x509.CertPool
	// CAPEM and CACerts are the network CA's certificates as read from
	// ca.pem: what checks the agencies' published keys (package envelope).
	CAPEM   []byte
	CACerts []*x509.Certificate
	Switch  string // HOST:PORT: the first of Switches
	// Switches are every address in the switch file (one per line, or
	// separated by spaces or commas): the nodes of a replicated switch,
	// which the client tries until it finds the leader.
	Switches []string
	Identity Identity
}

// LoadFolder reads and checks an identity folder.
func LoadFolder(dir string) (*Folder, error) {
	const op = "certs.folder"
	if dir == "" {
		return nil, fault.E(op, fault.Invalid, "no identity folder: pass --id DIR or set TG_ID")
	}
	pair, err := LoadKeyPair(filepath.Join(dir, FolderCert), filepath.Join(dir, FolderKey), DefaultPassphrase)
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "cannot load certificate and key from "+dir+": "+err.Error())
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, FolderCA))
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "cannot read the CA certificate in "+dir, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fault.Errorf(op, fault.Invalid, "%s holds no PEM certificate", filepath.Join(dir, FolderCA))
	}
	cas, _ := ParsePEMCertificates(caPEM) // those that parse, as the pool holds them
	addr, err := os.ReadFile(filepath.Join(dir, FolderSwitch))
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "cannot read the switch address in "+dir, err)
	}
	id, err := IdentityOf(pair.Leaf)
	if err != nil {
		return nil, err
	}
	addrs := strings.FieldsFunc(string(addr), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
	if len(addrs) == 0 {
		return nil, fault.Errorf(op, fault.Invalid, "%s names no switch address", filepath.Join(dir, FolderSwitch))
	}
	return &Folder{Dir: dir, Cert: pair, CAs: pool, CAPEM: caPEM, CACerts: cas, Switch: addrs[0], Switches: addrs, Identity: id}, nil
}
