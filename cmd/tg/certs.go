package main

import (
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
	Init       certsInitCmd       `cmd:"" help:"Create a CA (ca.pem, ca.key) in a new folder."`
	Issue      certsIssueCmd      `cmd:"" help:"Issue a certificate into a new identity folder."`
	Revoke     certsRevokeCmd     `cmd:"" help:"Revoke a certificate and write a new CRL."`
	CRL        certsCRLCmd        `cmd:"" name:"crl" help:"Write a fresh CRL (renew it before its next-update time)."`
	SignKeys   certsSignKeysCmd   `cmd:"" name:"sign-keys" help:"Certify agency key requests (tg agency-keys new) for the directory's keys folder."`
	RevokeKeys certsRevokeKeysCmd `cmd:"" name:"revoke-keys" help:"Revoke an agency's key (lost or compromised) in the directory's keys folder."`
}

type certsInitCmd struct {
	Out   string `required:"" type:"path" help:"Folder for the CA (must not hold one)."`
	Name  string `default:"dienbao network CA" help:"The CA's common name."`
	Years int    `default:"10" help:"Validity in years."`
}

func (c *certsInitCmd) Run(e *env) error {
	ca, err := certs.NewCA(c.Name, time.Duration(c.Years)*365*24*time.Hour)
	if err != nil {
		return err
	}
	if err := ca.Save(c.Out); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"ca": filepath.Join(c.Out, certs.CACertFile), "serial": ca.Cert.SerialNumber.Text(16)})
	}
	_, err = fmt.Fprintf(e.stdout, "CA created: %s (key %s, mode 0600: keep it offline)\n",
		filepath.Join(c.Out, certs.CACertFile), filepath.Join(c.Out, certs.CAKeyFile))
	return err
}

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
	const op = "certs.issue"
	ca, err := certs.LoadCA(c.CA)
	if err != nil {
		return err
	}
	role, err := certs.ParseRole(c.Role)
	if err != nil {
		return err
	}
	clearance, err := telegram.ParseClassification(c.Clearance)
	if err != nil {
		return err
	}
	var agency telegram.Address
	if c.Agency != "" {
		if agency, err = telegram.ParseAddress(c.Agency); err != nil {
			return err
		}
	}
	var ips []net.IP
	for _, s := range c.IP {
		ip := net.ParseIP(s)
		if ip == nil {
			return fault.Errorf(op, fault.Invalid, "%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	var scope []telegram.Address
	var links []string
	for _, s := range c.Scope {
		if peer, ok := strings.CutPrefix(s, "link:"); ok {
			if err := certs.CheckPeerName(peer); err != nil {
				return err
			}
			links = append(links, peer)
			continue
		}
		a, err := telegram.ParseAddress(s)
		if err != nil {
			return err
		}
		scope = append(scope, a)
	}
	iss, err := ca.Issue(certs.Request{Name: c.Name, Role: role, Agency: agency, Clearance: clearance,
		DNSNames: c.DNS, IPs: ips, Scope: scope, Links: links, Validity: time.Duration(c.Days) * 24 * time.Hour})
	if err != nil {
		return err
	}
	if err := certs.WriteFolder(c.Out, iss, ca.PEM, c.Switch); err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]string{"out": c.Out, "serial": iss.Cert.SerialNumber.Text(16),
			"role": string(role), "agency": string(agency), "clearance": clearance.String()})
	}
	_, err = fmt.Fprintf(e.stdout, "issued %s certificate %s for %q into %s\n", role, iss.Cert.SerialNumber.Text(16), c.Name, c.Out)
	return err
}

type certsRevokeCmd struct {
	CA     string `required:"" type:"path" help:"CA folder (ca.pem, ca.key; the revocations are kept there)."`
	Cert   string `required:"" type:"path" help:"The certificate to revoke: a cert.pem, or an identity folder."`
	Reason string `default:"unspecified" enum:"unspecified,keyCompromise,affiliationChanged,superseded,cessationOfOperation,certificateHold" help:"RFC 5280 reason."`
	Days   int    `default:"7" help:"Validity of the new CRL in days (its next-update time): renew it before then with tg certs crl."`
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
	Days int    `default:"7" help:"Validity in days (the next-update time). A switch refuses every certificate once its CRL is past it."`
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
