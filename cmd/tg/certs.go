package main

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

type certsCmd struct {
	Init         certsInitCmd         `cmd:"" help:"Create a CA in a new folder: an offline root (root.pem, root.key) and the issuing intermediate it signs (ca.pem, ca.key), which signs certificates and CRLs."`
	Issue        certsIssueCmd        `cmd:"" help:"Issue a certificate and its key into a new identity folder (the key is made here: prefer request, sign, install)."`
	Request      certsRequestCmd      `cmd:"" help:"On the holder's machine: make a key (never leaves it) and a certificate request in a new identity folder."`
	Sign         certsSignCmd         `cmd:"" help:"At the CA: issue the certificate a request asks for."`
	Install      certsInstallCmd      `cmd:"" help:"On the holder's machine: put a signed certificate beside its key in the identity folder."`
	Inspect      certsInspectCmd      `cmd:"" help:"Show a certificate, an identity folder, a request, a CRL or a CA folder: who, what, until when, and whether it checks out."`
	Renew        certsRenewCmd        `cmd:"" help:"Renew an identity folder's certificate before it ends: same identity, new key (a request for the CA, or signed at once with --ca)."`
	Intermediate certsIntermediateCmd `cmd:"" help:"Make a new issuing intermediate from the root (root.key), to replace one that ends or is compromised."`
	Revoke       certsRevokeCmd       `cmd:"" help:"Revoke a certificate and write a new CRL."`
	CRL          certsCRLCmd          `cmd:"" name:"crl" help:"Write a fresh CRL (renew it before its next-update time)."`
	SignKeys     certsSignKeysCmd     `cmd:"" name:"sign-keys" help:"Certify agency key requests (tg agency-keys new) for the directory's keys folder."`
	RevokeKeys   certsRevokeKeysCmd   `cmd:"" name:"revoke-keys" help:"Revoke an agency's key (lost or compromised) in the directory's keys folder."`
}

type certsInitCmd struct {
	Out          string `required:"" type:"path" help:"Folder for the CA (must not hold one)."`
	Name         string `default:"dienbao network CA" help:"The CA's common name."`
	Years        int    `default:"20" help:"The root's validity in years."`
	IssuingYears int    `default:"5" help:"The issuing intermediate's validity in years."`
	PKCS11       string `name:"pkcs11" placeholder:"URI" help:"Make both key pairs in a PKCS#11 token instead of files: pkcs11:token=LABEL;object=NAME?module-path=LIB&pin-source=file:PINFILE. The root's is NAME-root, the intermediate's NAME-issuing; root.key and ca.key then hold their URIs."`
	passphraseFlags
}

func (c *certsInitCmd) Run(e *env) error {
	if c.Years < 1 || c.IssuingYears < 1 {
		return fault.E("certs.init", fault.Invalid, "--years and --issuing-years must be at least 1")
	}
	var pass []byte
	var rootKey, issuingKey crypto.Signer
	var err error
	if c.PKCS11 != "" {
		if rootKey, issuingKey, err = c.inToken(); err != nil {
			return err
		}
	} else if pass, err = c.passphrase(e, "the CA's keys"); err != nil {
		return err
	}
	root, issuing, err := certs.NewHierarchyOf(c.Name, years(c.Years), years(c.IssuingYears), rootKey, issuingKey)
	if err != nil {
		return err
	}
	if err := certs.SaveHierarchy(c.Out, root, issuing, pass); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]any{"ca": filepath.Join(c.Out, certs.CACertFile), "root": filepath.Join(c.Out, certs.RootCertFile),
			"serial": issuing.Cert.SerialNumber.Text(16), "root_serial": root.Cert.SerialNumber.Text(16), "encrypted": len(pass) > 0,
			"token": c.PKCS11 != ""})
	}
	offline := "move root.key offline now"
	if c.PKCS11 != "" {
		offline = "its key is in the token (root.key names it): keep the token offline"
	}
	_, err = fmt.Fprintf(e.stdout, "CA created in %s:\n"+
		"  root.pem, root.key   the root (until %s): "+offline+"; it is needed only for tg certs intermediate\n"+
		"  ca.pem, ca.key       the issuing intermediate (until %s): signs certificates and CRLs\n"+
		"  ca.pem is what every switch and identity folder trusts (the intermediate, then the root)\n",
		c.Out, root.Cert.NotAfter.Format("2006-01-02"), issuing.Cert.NotAfter.Format("2006-01-02"))
	return err
}

// inToken makes the root's and the intermediate's key pairs in the token
// c.PKCS11 names (objects NAME-root and NAME-issuing).
func (c *certsInitCmd) inToken() (root, issuing crypto.Signer, err error) {
	tk, err := c.tokenKey("certs.init", c.PKCS11)
	if err != nil {
		return nil, nil, err
	}
	// Before anything is made in the token, which tg never deletes from.
	for _, f := range []string{certs.CACertFile, certs.RootCertFile} {
		if _, err := os.Stat(filepath.Join(c.Out, f)); err == nil {
			return nil, nil, fault.Errorf("certs.init", fault.Invalid, "%s already holds a CA (%s)", c.Out, f)
		}
	}
	for _, k := range []struct {
		suffix string
		key    *crypto.Signer
	}{{"-root", &root}, {"-issuing", &issuing}} {
		pair, err := tk.WithObject(tk.Object + k.suffix)
		if err != nil {
			return nil, nil, err
		}
		if *k.key, err = pair.Generate(); err != nil {
			return nil, nil, err
		}
	}
	return root, issuing, nil
}

func years(n int) time.Duration { return time.Duration(n) * 365 * 24 * time.Hour }

type certsIssueCmd struct {
	CA        string   `required:"" type:"path" help:"CA folder (ca.pem, ca.key)."`
	Role      string   `required:"" help:"terminal | operator | auditor | switch"`
	Name      string   `required:"" help:"Holder's name (common name)."`
	Agency    string   `help:"Agency address (required for terminals and switches)."`
	Clearance string   `default:"UNCLASSIFIED" help:"Highest classification the holder may file and receive."`
	Switch    string   `default:"127.0.0.1:4433" help:"Switch address written into the identity folder."`
	DNS       []string `help:"DNS names (switch certificates)."`
	IP        []string `help:"IP addresses (switch certificates)."`
	Scope     []string `help:"Operators: the address prefixes (NA covers NA.UBND and NA.VINH.UBND) and links to peer switches (link:TW) they may see and act on; default the whole network."`
	Days      int      `default:"365" help:"Validity in days."`
	Out       string   `required:"" type:"path" help:"Identity folder to create."`
}

func (c *certsIssueCmd) Run(e *env) error {
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	req, err := requestOf(c.Role, c.Name, c.Agency, c.Clearance, c.Scope, c.DNS, c.IP)
	if err != nil {
		return err
	}
	req.Validity = time.Duration(c.Days) * 24 * time.Hour
	iss, err := ca.Issue(req)
	if err != nil {
		return err
	}
	if err := certs.WriteFolder(c.Out, iss, ca.PEM, c.Switch); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"out": c.Out, "serial": iss.Cert.SerialNumber.Text(16),
			"role": string(req.Role), "agency": string(req.Agency), "clearance": req.Clearance.String()})
	}
	_, err = fmt.Fprintf(e.stdout, "issued %s certificate %s for %q into %s\n", req.Role, iss.Cert.SerialNumber.Text(16), c.Name, c.Out)
	return err
}

// parseIPs reads --ip values.
func parseIPs(in []string) ([]net.IP, error) {
	var ips []net.IP
	for _, s := range in {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fault.Errorf("certs.issue", fault.Invalid, "%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// parseScope reads --scope values: address prefixes and link:PEER.
func parseScope(in []string) (scope []telegram.Address, links []string, err error) {
	for _, s := range in {
		if peer, ok := strings.CutPrefix(s, "link:"); ok {
			if err := certs.CheckPeerName(peer); err != nil {
				return nil, nil, err
			}
			links = append(links, peer)
			continue
		}
		a, err := telegram.ParseAddress(s)
		if err != nil {
			return nil, nil, err
		}
		scope = append(scope, a)
	}
	return scope, links, nil
}

type certsRevokeCmd struct {
	CA     string `required:"" type:"path" help:"CA folder (ca.pem, ca.key; the revocations are kept there)."`
	Cert   string `required:"" type:"path" help:"The certificate to revoke: a cert.pem, or an identity folder."`
	Reason string `default:"unspecified" enum:"unspecified,keyCompromise,affiliationChanged,superseded,cessationOfOperation,certificateHold" help:"RFC 5280 reason."`
	Days   int    `default:"30" help:"Validity of the new CRL in days (its next-update time): renew it before then with tg certs crl, or let the switch renew it ([revocation] renew_from)."`
	Out    string `type:"path" help:"Where to write the new CRL (default: crl.pem in the CA folder)."`
}

func (c *certsRevokeCmd) Run(e *env) error {
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	path := c.Cert
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, certs.FolderCert)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fault.E("certs.revoke", fault.NotExist, "cannot read "+path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fault.Errorf("certs.revoke", fault.Invalid, "%s holds no PEM certificate", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fault.E("certs.revoke", fault.Invalid, path+" is not a certificate", err)
	}
	if err := ca.Revoke(c.CA, cert, certs.ReasonCodes[c.Reason]); err != nil {
		return err
	}
	out, err := writeCRL(ca, c.CA, c.Out, c.Days)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"revoked": cert.SerialNumber.Text(16), "subject": cert.Subject.CommonName, "crl": out})
	}
	_, err = fmt.Fprintf(e.stdout, "revoked %s (%s); new CRL in %s: give it to every switch (they reload it by themselves)\n",
		cert.SerialNumber.Text(16), cert.Subject.CommonName, out)
	return err
}

type certsCRLCmd struct {
	CA   string `required:"" type:"path" help:"CA folder."`
	Days int    `default:"30" help:"Validity in days (the next-update time). A switch refuses every certificate once its CRL is past it and its grace; a switch with [revocation] renew_from renews its own."`
	Out  string `type:"path" help:"Where to write the CRL (default: crl.pem in the CA folder)."`
}

func (c *certsCRLCmd) Run(e *env) error {
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	out, err := writeCRL(ca, c.CA, c.Out, c.Days)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"crl": out})
	}
	_, err = fmt.Fprintf(e.stdout, "CRL written to %s, valid %d days\n", out, c.Days)
	return err
}

func writeCRL(ca *certs.CA, dir, out string, days int) (string, error) {
	if days < 1 {
		return "", fault.E("certs.crl", fault.Invalid, "--days must be at least 1")
	}
	if out == "" {
		out = filepath.Join(dir, certs.CRLFile)
	}
	crl, err := ca.CRL(dir, time.Duration(days)*24*time.Hour)
	if err != nil {
		return "", err
	}
	return out, certs.WriteCRL(out, crl)
}
