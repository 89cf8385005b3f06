package main

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/google/renameio/v2"
)

// The certificate lifecycle after tg certs init: a holder's key is made
// on the holder's machine (request), the CA signs the request (sign), the
// certificate goes beside the key (install); renew does it again with a
// new key before the certificate ends; inspect shows any of the files.

// passphraseFlags encrypt the private keys a command writes.
type passphraseFlags struct {
	Encrypt        bool   `help:"Encrypt the private keys written under a passphrase (PKCS#8, AES-256): asked on the terminal, or read from --passphrase-file."`
	PassphraseFile string `type:"path" help:"With --encrypt: a file (mode 0600) whose first line is the passphrase."`
}

// tokenKey reads the PKCS#11 URI of a key pair to make in a token, which
// --encrypt does not go with: the token's PIN protects the key.
func (p passphraseFlags) tokenKey(op, uri string) (certs.TokenKey, error) {
	if p.Encrypt {
		return certs.TokenKey{}, fault.E(op, fault.Invalid, "--encrypt and a key in a PKCS#11 token: the token's PIN protects the key")
	}
	return certs.ParseTokenURI(uri)
}

// passphrase is the passphrase to encrypt with (nil: none asked).
func (p passphraseFlags) passphrase(e *env, what string) ([]byte, error) {
	if p.PassphraseFile != "" && !p.Encrypt {
		return nil, fault.E("certs", fault.Invalid, "--passphrase-file goes with --encrypt")
	}
	if !p.Encrypt {
		return nil, nil
	}
	if p.PassphraseFile != "" {
		return certs.PassphraseFile(p.PassphraseFile)
	}
	if promptPassphrase == nil {
		return nil, fault.E("certs", fault.Invalid, "--encrypt needs a terminal to ask the passphrase, or --passphrase-file")
	}
	a, err := promptPassphrase("New passphrase for " + what + ": ")
	if err != nil {
		return nil, err
	}
	b, err := promptPassphrase("Again: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(a, b) {
		return nil, fault.E("certs", fault.Invalid, "the two passphrases differ")
	}
	if len(a) < 8 {
		return nil, fault.E("certs", fault.Invalid, "a passphrase of fewer than 8 characters is refused")
	}
	return a, nil
}

// promptPassphrase asks on the terminal (nil when not on one; main sets it).
var promptPassphrase func(prompt string) ([]byte, error)

type certsRequestCmd struct {
	Role      string   `required:"" help:"terminal | operator | auditor | switch"`
	Name      string   `required:"" help:"Holder's name (common name)."`
	Agency    string   `help:"Agency address (required for terminals and switches)."`
	Clearance string   `default:"UNCLASSIFIED" help:"Highest classification asked for."`
	Scope     []string `help:"Operators: address prefixes and link:PEER, as for tg certs issue."`
	DNS       []string `help:"DNS names (switch certificates)."`
	IP        []string `help:"IP addresses (switch certificates)."`
	Switch    string   `default:"127.0.0.1:4433" help:"Switch address written into the identity folder."`
	Out       string   `required:"" type:"path" help:"Identity folder to create (key.pem, request.pem, switch)."`
	PKCS11    string   `name:"pkcs11" placeholder:"URI" help:"Make the key pair in a PKCS#11 token instead of a file: pkcs11:token=LABEL;object=NAME?module-path=LIB&pin-source=file:PINFILE (key.pem then holds this URI, no key)."`
	passphraseFlags
}

func (c *certsRequestCmd) Run(e *env) error {
	req, err := requestOf(c.Role, c.Name, c.Agency, c.Clearance, c.Scope, c.DNS, c.IP)
	if err != nil {
		return err
	}
	if c.PKCS11 != "" {
		if err := c.inToken(req); err != nil {
			return err
		}
	} else {
		pass, err := c.passphrase(e, "the key")
		if err != nil {
			return err
		}
		csr, key, err := certs.NewRequest(req)
		if err != nil {
			return err
		}
		if err := writeKeyAndRequest(c.Out, key, csr, pass); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(c.Out, certs.FolderSwitch), []byte(c.Switch+"\n"), 0o644); err != nil {
		return err
	}
	reqFile := filepath.Join(c.Out, certs.RequestFile)
	if e.json {
		return e.emit(map[string]any{"out": c.Out, "request": reqFile, "encrypted": c.Encrypt, "token": c.PKCS11 != ""})
	}
	_, err = fmt.Fprintf(e.stdout, "key made in %s (it never leaves this machine); give %s to the CA:\n"+
		"  tg certs sign --ca CA %s --out cert.pem\nthen, here: tg --id %s certs install --ca ca.pem cert.pem\n", filepath.Join(c.Out, certs.FolderKey), reqFile, filepath.Base(reqFile), c.Out)
	return err
}

// inToken makes the key pair in the PKCS#11 token c.PKCS11 names and
// writes the URI as key.pem, and the request the token signed.
func (c *certsRequestCmd) inToken(req certs.Request) error {
	tk, err := c.tokenKey("certs.request", c.PKCS11)
	if err != nil {
		return err
	}
	return tokenKeyAndRequest(tk, req, c.Out)
}

// tokenKeyAndRequest makes the key pair tk names in its token, and writes
// into dir its URI as key.pem and the request the token signed.
func tokenKeyAndRequest(tk certs.TokenKey, req certs.Request, dir string) error {
	key, err := tk.Generate()
	if err != nil {
		return err
	}
	csr, err := certs.RequestFor(req, key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E("certs", fault.Internal, "create "+dir, err)
	}
	if err := certs.WriteNew(filepath.Join(dir, certs.FolderKey), []byte(tk.URI+"\n"), 0o600); err != nil {
		return err
	}
	return certs.WriteNew(filepath.Join(dir, certs.RequestFile), csr, 0o644)
}

// writeKeyAndRequest writes a new key (mode 0600, encrypted under pass if
// set) and its request into dir, refusing to overwrite either.
func writeKeyAndRequest(dir string, key crypto.Signer, csr, pass []byte) error {
	keyPEM, err := certs.MarshalKeyEncrypted(key, pass)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fault.E("certs", fault.Internal, "create "+dir, err)
	}
	if err := certs.WriteNew(filepath.Join(dir, certs.FolderKey), keyPEM, 0o600); err != nil {
		return err
	}
	return certs.WriteNew(filepath.Join(dir, certs.RequestFile), csr, 0o644)
}

// requestOf builds a certificate request from the flags tg certs issue and
// request share.
func requestOf(role, name, agencyText, clearanceText string, scopeText, dns, ipText []string) (certs.Request, error) {
	r, err := certs.ParseRole(role)
	if err != nil {
		return certs.Request{}, err
	}
	clearance, err := telegram.ParseClassification(clearanceText)
	if err != nil {
		return certs.Request{}, err
	}
	req := certs.Request{Name: name, Role: r, Clearance: clearance, DNSNames: dns}
	if agencyText != "" {
		if req.Agency, err = telegram.ParseAddress(agencyText); err != nil {
			return req, err
		}
	}
	if req.IPs, err = parseIPs(ipText); err != nil {
		return req, err
	}
	req.Scope, req.Links, err = parseScope(scopeText)
	return req, err
}

type certsSignCmd struct {
	CA      string `required:"" type:"path" help:"CA folder (ca.pem, ca.key)."`
	Request string `arg:"" type:"existingfile" help:"The request (request.pem from tg certs request or renew)."`
	Days    int    `default:"365" help:"Validity in days (never past the CA's own end)."`
	Out     string `required:"" type:"path" help:"Where to write the certificate (with the CA's chain)."`
}

func (c *certsSignCmd) Run(e *env) error {
	data, err := os.ReadFile(c.Request)
	if err != nil {
		return fault.E("certs.sign", fault.NotExist, "cannot read "+c.Request, err)
	}
	req, pub, err := certs.ParseRequest(data)
	if err != nil {
		return err
	}
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	req.Validity = time.Duration(c.Days) * 24 * time.Hour
	iss, err := ca.Sign(req, pub)
	if err != nil {
		return err
	}
	if err := certs.WriteNew(c.Out, iss.CertPEM, 0o644); err != nil {
		return err
	}
	id, _ := certs.IdentityOf(iss.Cert)
	if e.json {
		return e.emit(certJSON(iss.Cert, id, time.Now()))
	}
	_, err = fmt.Fprintf(e.stdout, "signed %s certificate %s for %q (%s, clearance %s), until %s, into %s\n",
		id.Role, iss.Cert.SerialNumber.Text(16), id.Name, orNone(string(id.Agency)), id.Clearance, iss.Cert.NotAfter.Format("2006-01-02"), c.Out)
	return err
}

func orNone(s string) string {
	if s == "" {
		return "no agency"
	}
	return s
}

type certsInstallCmd struct {
	Cert string `arg:"" type:"existingfile" help:"The signed certificate (from tg certs sign)."`
	CA   string `type:"existingfile" help:"The network's ca.pem to trust (default: the identity folder's, or the CA chain the certificate came with is checked against it)."`
}

func (c *certsInstallCmd) Run(e *env) error {
	const op = "certs.install"
	dir := e.id
	if dir == "" {
		return fault.E(op, fault.Invalid, "which identity folder? pass --id DIR or set TG_ID")
	}
	certPEM, err := os.ReadFile(c.Cert)
	if err != nil {
		return fault.E(op, fault.NotExist, "cannot read "+c.Cert, err)
	}
	chain, err := certs.ParsePEMCertificates(certPEM)
	if err != nil || len(chain) == 0 {
		return fault.Errorf(op, fault.Invalid, "%s holds no certificate", c.Cert)
	}
	caFile := c.CA
	if caFile == "" {
		caFile = filepath.Join(dir, certs.FolderCA)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return fault.E(op, fault.Invalid, "no CA to check the certificate against: pass --ca ca.pem (the network's)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return fault.Errorf(op, fault.Invalid, "%s holds no certificate", caFile)
	}
	id, err := certs.IdentityOf(chain[0])
	if err != nil {
		return err
	}
	if err := certs.VerifyChain(chain, roots, time.Now(), x509.ExtKeyUsageClientAuth); err != nil {
		return fault.E(op, fault.Invalid, "the certificate does not check against "+caFile+": "+err.Error())
	}
	// The key it is for: a renewal's new key (renew/), else the folder's.
	keyDir := dir
	renewing := false
	if k, err := keyMatches(filepath.Join(dir, renewDir), chain[0]); err == nil && k {
		keyDir, renewing = filepath.Join(dir, renewDir), true
	} else if k, err := keyMatches(dir, chain[0]); err != nil || !k {
		if err == nil {
			err = fault.Errorf(op, fault.Invalid, "%s is not the certificate of the key in %s (nor of a renewal's key)", c.Cert, dir)
		}
		return err
	}
	if renewing {
		for _, name := range []string{certs.FolderKey, certs.FolderCert} {
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, name+".old")); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fault.E(op, fault.Internal, "cannot keep the former "+name, err)
			}
		}
		if err := os.Rename(filepath.Join(keyDir, certs.FolderKey), filepath.Join(dir, certs.FolderKey)); err != nil {
			return fault.E(op, fault.Internal, "cannot move the new key into place", err)
		}
		os.RemoveAll(keyDir)
	}
	if err := renameio.WriteFile(filepath.Join(dir, certs.FolderCert), certPEM, 0o644); err != nil {
		return err
	}
	if renewing {
		// The inbox is sealed under a key derived from the private key:
		// re-seal it under the new one (read under either meanwhile).
		if err := e.rekeyInbox(); err != nil {
			return fault.E(op, fault.Internal, "the new key is in place, but the inbox could not be re-sealed under it (tg reads it under the former key meanwhile): "+err.Error())
		}
	}
	if c.CA != "" {
		if err := renameio.WriteFile(filepath.Join(dir, certs.FolderCA), caPEM, 0o644); err != nil {
			return err
		}
	}
	os.Remove(filepath.Join(dir, certs.RequestFile))
	if e.json {
		return e.emit(certJSON(chain[0], id, time.Now()))
	}
	what := "installed"
	if renewing {
		what = "renewed: the new key and certificate are in place, the inbox re-sealed under the new key (the former certificate kept as cert.pem.old)"
	}
	_, err = fmt.Fprintf(e.stdout, "%s %s: %s certificate %s for %q, until %s\n", dir, what, id.Role, chain[0].SerialNumber.Text(16), id.Name, chain[0].NotAfter.Format("2006-01-02"))
	return err
}

// renewDir is where tg certs renew keeps the new key until its
// certificate is installed.
const renewDir = "renew"

// keyMatches says whether the key in dir is cert's (false, nil if dir has
// no key).
func keyMatches(dir string, cert *x509.Certificate) (bool, error) {
	path := filepath.Join(dir, certs.FolderKey)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	key, err := certs.ParseKey(path, data, certs.DefaultPassphrase)
	if err != nil {
		return false, err
	}
	return certs.IsKeyOf(key, cert), nil
}

type certsRenewCmd struct {
	CA   string `type:"path" help:"The CA folder, if it is at hand: sign and install at once."`
	Days int    `default:"365" help:"With --ca: validity in days."`
	passphraseFlags
}

func (c *certsRenewCmd) Run(e *env) error {
	const op = "certs.renew"
	f, err := e.folder()
	if err != nil {
		return err
	}
	leaf := f.Cert.Leaf
	id := f.Identity
	req := certs.Request{Name: id.Name, Role: id.Role, Agency: id.Agency, Clearance: id.Clearance, Scope: id.Scope, Links: id.Links,
		DNSNames: leaf.DNSNames, IPs: leaf.IPAddresses}
	dir := filepath.Join(f.Dir, renewDir)
	if err := os.RemoveAll(dir); err != nil {
		return fault.E(op, fault.Internal, "cannot clear "+dir, err)
	}
	old, _ := os.ReadFile(filepath.Join(f.Dir, certs.FolderKey))
	if certs.IsTokenURI(old) {
		if err := c.inToken(string(old), req, dir); err != nil {
			return err
		}
	} else if err := c.inFile(e, old, f.Dir, req, dir); err != nil {
		return err
	}
	reqFile := filepath.Join(dir, certs.RequestFile)
	if c.CA == "" {
		if e.json {
			return e.emit(map[string]any{"request": reqFile, "not_after": leaf.NotAfter})
		}
		_, err = fmt.Fprintf(e.stdout, "new key and request for %q (the certificate ends %s) in %s; give %s to the CA:\n"+
			"  tg certs sign --ca CA %s --out cert.pem\nthen: tg --id %s certs install cert.pem\n",
			id.Name, leaf.NotAfter.Format("2006-01-02"), dir, reqFile, certs.RequestFile, f.Dir)
		return err
	}
	out := filepath.Join(dir, "cert.pem")
	sign := &certsSignCmd{CA: c.CA, Request: reqFile, Days: c.Days, Out: out}
	quiet := &env{ctx: e.ctx, stdout: &bytes.Buffer{}, stderr: e.stderr, utc: e.utc}
	if err := sign.Run(quiet); err != nil {
		return err
	}
	return (&certsInstallCmd{Cert: out}).Run(e)
}

// inFile makes the renewal's key as a file in dir, as protected as the
// one it replaces (old), and its request.
func (c *certsRenewCmd) inFile(e *env, old []byte, folder string, req certs.Request, dir string) error {
	pass, err := c.passphrase(e, "the new key")
	if err != nil {
		return err
	}
	if !c.Encrypt && certs.KeyEncrypted(old) {
		if pass, err = certs.DefaultPassphrase(filepath.Join(folder, certs.FolderKey)); err != nil {
			return err
		}
	}
	csr, key, err := certs.NewRequest(req)
	if err != nil {
		return err
	}
	return writeKeyAndRequest(dir, key, csr, pass)
}

// inToken makes the renewal's key pair in the token of the former one
// (uri), under a new object (certs.RenewedObject), and writes its URI as
// dir's key.pem and the request the token signed. The former key pair
// stays in the token until deleted with the token's own tools.
func (c *certsRenewCmd) inToken(uri string, req certs.Request, dir string) error {
	tk, err := c.tokenKey("certs.renew", uri)
	if err != nil {
		return err
	}
	if tk, err = tk.WithObject(certs.RenewedObject(tk.Object, time.Now())); err != nil {
		return err
	}
	return tokenKeyAndRequest(tk, req, dir)
}

type certsIntermediateCmd struct {
	Root   string `required:"" type:"path" help:"The CA folder holding root.pem and root.key (brought back from offline)."`
	Out    string `required:"" type:"path" help:"A new CA folder for the new intermediate (ca.pem, ca.key; revoked.json starts empty)."`
	Name   string `default:"dienbao network CA issuing CA" help:"The intermediate's common name."`
	Years  int    `default:"5" help:"Validity in years (never past the root's end)."`
	PKCS11 string `name:"pkcs11" placeholder:"URI" help:"Make the intermediate's key pair in a PKCS#11 token, as the URI names it (ca.key then holds the URI)."`
	passphraseFlags
}

func (c *certsIntermediateCmd) Run(e *env) error {
	root, err := certs.LoadRoot(c.Root)
	if err != nil {
		return err
	}
	var pass []byte
	var key crypto.Signer
	if c.PKCS11 != "" {
		tk, err := c.tokenKey("certs.intermediate", c.PKCS11)
		if err != nil {
			return err
		}
		if key, err = tk.Generate(); err != nil {
			return err
		}
	} else if pass, err = c.passphrase(e, "the intermediate's key"); err != nil {
		return err
	}
	issuing, err := root.NewIssuingOf(c.Name, years(c.Years), key)
	if err != nil {
		return err
	}
	if err := issuing.SaveEncrypted(c.Out, pass); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]any{"ca": filepath.Join(c.Out, certs.CACertFile), "serial": issuing.Cert.SerialNumber.Text(16)})
	}
	_, err = fmt.Fprintf(e.stdout, "new issuing intermediate in %s, until %s: give its ca.pem to every switch and identity folder\n",
		c.Out, issuing.Cert.NotAfter.Format("2006-01-02"))
	return err
}

type certsInspectCmd struct {
	Path string `arg:"" type:"path" help:"A certificate, an identity folder, a request, a CRL (PEM or DER) or a CA folder."`
}

func (c *certsInspectCmd) Run(e *env) error {
	const op = "certs.inspect"
	now := time.Now()
	if st, err := os.Stat(c.Path); err == nil && st.IsDir() {
		return inspectFolder(e, c.Path, now)
	}
	data, err := os.ReadFile(c.Path)
	if err != nil {
		return fault.E(op, fault.NotExist, "cannot read "+c.Path, err)
	}
	b, _ := pem.Decode(data)
	switch {
	case b != nil && b.Type == "CERTIFICATE REQUEST":
		req, _, err := certs.ParseRequest(data)
		if err != nil {
			return err
		}
		out := map[string]any{"kind": "request", "name": req.Name, "role": req.Role, "agency": req.Agency, "clearance": req.Clearance.String(), "scope": scopeText(req.Scope, req.Links)}
		return emitOrLines(e, out, []string{"certificate request (its signature checks: its maker holds the key)",
			fmt.Sprintf("asks for: %s %q, %s, clearance %s%s", req.Role, req.Name, orNone(string(req.Agency)), req.Clearance, scopeLine(req.Scope, req.Links))})
	case b != nil && b.Type == "X509 CRL", b == nil:
		der := data
		if b != nil {
			der = b.Bytes
		}
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return fault.E(op, fault.Invalid, c.Path+" is not a certificate, a request or a CRL")
		}
		out := map[string]any{"kind": "crl", "issuer": rl.Issuer.CommonName, "number": rl.Number.String(), "this_update": rl.ThisUpdate,
			"next_update": rl.NextUpdate, "revoked": len(rl.RevokedCertificateEntries), "expires_in_days": days(rl.NextUpdate, now)}
		return emitOrLines(e, out, []string{fmt.Sprintf("CRL number %s from %s: %d revoked", rl.Number, rl.Issuer.CommonName, len(rl.RevokedCertificateEntries)),
			fmt.Sprintf("signed %s, next update %s (%s)", e.when(rl.ThisUpdate), e.when(rl.NextUpdate), untilText(rl.NextUpdate, now))})
	}
	chain, err := certs.ParsePEMCertificates(data)
	if err != nil || len(chain) == 0 {
		return fault.Errorf(op, fault.Invalid, "%s holds no certificate", c.Path)
	}
	return emitCert(e, chain, nil, now)
}

// inspectFolder shows an identity folder (cert.pem, key.pem, ca.pem) or a
// CA folder (ca.pem, ca.key, root.pem).
func inspectFolder(e *env, dir string, now time.Time) error {
	certFile := filepath.Join(dir, certs.FolderCert)
	if _, err := os.Stat(certFile); err != nil {
		certFile = filepath.Join(dir, certs.CACertFile) // a CA folder
	}
	data, err := os.ReadFile(certFile)
	if err != nil {
		return fault.E("certs.inspect", fault.NotExist, dir+" is neither an identity folder nor a CA folder", err)
	}
	chain, err := certs.ParsePEMCertificates(data)
	if err != nil || len(chain) == 0 {
		return fault.Errorf("certs.inspect", fault.Invalid, "%s holds no certificate", certFile)
	}
	checks := map[string]any{}
	if caPEM, err := os.ReadFile(filepath.Join(dir, certs.FolderCA)); err == nil && !chain[0].IsCA {
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		err := certs.VerifyChain(chain, roots, now, x509.ExtKeyUsageClientAuth)
		checks["chain_ok"] = err == nil
		if err != nil {
			checks["chain_error"] = err.Error()
		}
	}
	keyFile := filepath.Join(dir, certs.FolderKey)
	if chain[0].IsCA {
		keyFile = filepath.Join(dir, certs.CAKeyFile)
	}
	if kd, err := os.ReadFile(keyFile); err == nil {
		checks["key_encrypted"] = certs.KeyEncrypted(kd)
		if certs.IsTokenURI(kd) {
			tk, _ := certs.ParseTokenURI(string(kd))
			checks["key_token"] = tk.Token + "/" + tk.Object
		}
		if ok, err := keyMatchesFile(keyFile, kd, chain[0]); err == nil {
			checks["key_matches"] = ok
		}
	}
	return emitCert(e, chain, checks, now)
}

func keyMatchesFile(path string, data []byte, cert *x509.Certificate) (bool, error) {
	if certs.KeyEncrypted(data) {
		return false, errors.New("encrypted: not opened to inspect")
	}
	key, err := certs.ParseKey(path, data, nil)
	if err != nil {
		return false, err
	}
	return certs.IsKeyOf(key, cert), nil
}

// certJSON is a certificate as tg certs inspect, sign and install print
// it with --json.
func certJSON(c *x509.Certificate, id certs.Identity, now time.Time) map[string]any {
	out := map[string]any{"kind": "certificate", "subject": c.Subject.CommonName, "serial": c.SerialNumber.Text(16), "issuer": c.Issuer.CommonName,
		"not_before": c.NotBefore, "not_after": c.NotAfter, "expires_in_days": days(c.NotAfter, now), "ca": c.IsCA}
	if !c.IsCA {
		out["role"], out["agency"], out["clearance"], out["scope"] = id.Role, id.Agency, id.Clearance.String(), scopeText(id.Scope, id.Links)
		out["dns"], out["ip"] = c.DNSNames, c.IPAddresses
	}
	return out
}

func emitCert(e *env, chain []*x509.Certificate, checks map[string]any, now time.Time) error {
	c := chain[0]
	var id certs.Identity
	if !c.IsCA {
		var err error
		if id, err = certs.IdentityOf(c); err != nil {
			return err
		}
	}
	out := certJSON(c, id, now)
	var chainNames []string
	for _, x := range chain[1:] {
		chainNames = append(chainNames, x.Subject.CommonName)
	}
	out["chain"] = chainNames
	for k, v := range checks {
		out[k] = v
	}
	lines := []string{}
	if c.IsCA {
		lines = append(lines, fmt.Sprintf("CA certificate %q (serial %s), issued by %q", c.Subject.CommonName, c.SerialNumber.Text(16), c.Issuer.CommonName))
	} else {
		lines = append(lines, fmt.Sprintf("%s certificate %q (serial %s): %s, clearance %s%s", id.Role, id.Name, c.SerialNumber.Text(16),
			orNone(string(id.Agency)), id.Clearance, scopeLine(id.Scope, id.Links)))
		lines = append(lines, fmt.Sprintf("issued by %q%s", c.Issuer.CommonName, chainLine(chainNames)))
	}
	lines = append(lines, fmt.Sprintf("valid from %s until %s (%s)", e.when(c.NotBefore), e.when(c.NotAfter), untilText(c.NotAfter, now)))
	if len(c.DNSNames)+len(c.IPAddresses) > 0 {
		var names []string
		names = append(names, c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		lines = append(lines, "names: "+strings.Join(names, ", "))
	}
	if v, ok := checks["chain_ok"]; ok {
		if v == true {
			lines = append(lines, "chain: checks against the folder's ca.pem")
		} else {
			lines = append(lines, "chain: DOES NOT check against the folder's ca.pem: "+fmt.Sprint(checks["chain_error"]))
		}
	}
	if v, ok := checks["key_matches"]; ok {
		lines = append(lines, map[bool]string{true: "key: matches the certificate", false: "key: DOES NOT match the certificate"}[v == true])
	}
	if v, ok := checks["key_token"]; ok {
		lines = append(lines, fmt.Sprintf("key: in a PKCS#11 token (%s)", v))
	}
	if v, ok := checks["key_encrypted"]; ok && v == true {
		lines = append(lines, "key: encrypted under a passphrase")
	}
	return emitOrLines(e, out, lines)
}

func emitOrLines(e *env, v map[string]any, lines []string) error {
	if e.json {
		return e.emit(v)
	}
	_, err := fmt.Fprintln(e.stdout, strings.Join(lines, "\n"))
	return err
}

func chainLine(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return ", with its chain: " + strings.Join(names, ", ")
}

func days(t, now time.Time) int { return int(t.Sub(now).Hours() / 24) }

func untilText(t, now time.Time) string {
	d := t.Sub(now)
	switch {
	case d < 0:
		return fmt.Sprintf("ENDED %d days ago", int(-d.Hours()/24))
	case d < 14*24*time.Hour:
		return fmt.Sprintf("ENDS IN %d days: renew it", int(d.Hours()/24))
	}
	return fmt.Sprintf("%d days left", int(d.Hours()/24))
}

func scopeText(scope []telegram.Address, links []string) []string {
	var out []string
	for _, s := range scope {
		out = append(out, string(s))
	}
	for _, l := range links {
		out = append(out, "link:"+l)
	}
	return out
}

func scopeLine(scope []telegram.Address, links []string) string {
	if s := scopeText(scope, links); len(s) > 0 {
		return ", scope " + strings.Join(s, " ")
	}
	return ""
}

// rekeyInbox re-seals the identity's inbox under its current key.
func (e *env) rekeyInbox() error {
	e.loaded = nil
	in, err := e.inbox("")
	if err != nil {
		return err
	}
	if _, err = in.Rekey(); err != nil {
		return err
	}
	// Nothing is sealed under the former key any more: it goes.
	return os.Remove(filepath.Join(e.id, certs.FolderKey+".old"))
}
