package certs

import (
	"crypto/x509"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Role is what a certificate's holder may do.
type Role string

// Roles.
const (
	Terminal Role = "terminal"
	Operator Role = "operator"
	Auditor  Role = "auditor"
	Switch   Role = "switch"
)

// ParseRole validates a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case Terminal, Operator, Auditor, Switch:
		return r, nil
	}
	return "", fault.Errorf("role", fault.Invalid, "unknown role %q: use terminal, operator, auditor or switch", s)
}

// Identity is who a verified certificate says its holder is.
type Identity struct {
	Name      string                  // the certificate's common name, e.g. "HN.UBND terminal 1"
	Role      Role                    //
	Agency    telegram.Address        // empty for operators and auditors without an agency
	Clearance telegram.Classification //
	Serial    string                  // certificate serial, hex
	// Scope limits an operator to the agencies under these address
	// prefixes (a prefix covers itself and the addresses below it: NA
	// covers NA.UBND and NA.VINH.UBND); empty: the whole network.
	Scope []telegram.Address
	// Links: the links to peer switches a scoped operator may see and
	// act on (scope entries link:PEER); with a scope, none but these.
	Links []string
}

// InScope says whether agency a is within the identity's scope.
func (id Identity) InScope(a telegram.Address) bool {
	if !id.Scoped() {
		return true
	}
	for _, p := range id.Scope {
		if a == p || strings.HasPrefix(string(a), string(p)+".") {
			return true
		}
	}
	return false
}

// InLink says whether the link to peer is within the identity's scope.
func (id Identity) InLink(peer string) bool {
	return !id.Scoped() || slices.Contains(id.Links, peer)
}

// Scoped says whether the identity is limited to part of the network.
func (id Identity) Scoped() bool { return len(id.Scope)+len(id.Links) > 0 }

const urnPrefix = "urn:dienbao:"

// clearance names inside URNs: no spaces.
func clearanceURN(c telegram.Classification) string {
	return strings.ReplaceAll(c.String(), " ", "")
}

func uris(role Role, agency telegram.Address, clearance telegram.Classification, scope []telegram.Address, links []string) []*url.URL {
	var out []*url.URL
	add := func(k, v string) { out = append(out, &url.URL{Scheme: "urn", Opaque: "dienbao:" + k + ":" + v}) }
	add("role", string(role))
	if agency != "" {
		add("agency", string(agency))
	}
	add("clearance", clearanceURN(clearance))
	if len(scope)+len(links) > 0 {
		var parts []string
		for _, p := range scope {
			parts = append(parts, string(p))
		}
		for _, l := range links {
			parts = append(parts, "link:"+l)
		}
		add("scope", strings.Join(parts, "+")) // urn:dienbao:scope:NA+HN.UBND+link:TW
	}
	return out
}

// VerifyChain checks a peer's certificate chain (leaf first, then any
// intermediates it sent) against roots at time now, for usage.
func VerifyChain(chain []*x509.Certificate, roots *x509.CertPool, now time.Time, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return fault.E("certs.verify", fault.Permission, "no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

// IdentityOf reads the identity from a certificate that has already been
// verified against the CA. It is strict: each urn:dienbao: field at most
// once, role and clearance required, agency required for terminals and
// switches, and every value well-formed.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	const op = "certs.identity"
	id := Identity{Name: cert.Subject.CommonName, Serial: cert.SerialNumber.Text(16)}
	seen := map[string]bool{}
	for _, u := range cert.URIs {
		s := u.String()
		if !strings.HasPrefix(s, urnPrefix) {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(s, urnPrefix), ":")
		if !ok || v == "" {
			return Identity{}, fault.Errorf(op, fault.Permission, "malformed identity name %q", s)
		}
		if seen[k] {
			return Identity{}, fault.Errorf(op, fault.Permission, "certificate names its %s twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "role":
			id.Role, err = ParseRole(v)
		case "agency":
			id.Agency, err = telegram.ParseAddress(v)
			if err == nil && string(id.Agency) != v {
				err = fault.Errorf(op, fault.Invalid, "agency %q is not in canonical form", v)
			}
		case "clearance":
			id.Clearance, err = telegram.ParseClassification(v)
		case "scope":
			for _, p := range strings.Split(v, "+") {
				if peer, ok := strings.CutPrefix(p, "link:"); ok {
					if err = CheckPeerName(peer); err != nil {
						break
					}
					id.Links = append(id.Links, peer)
					continue
				}
				var a telegram.Address
				if a, err = telegram.ParseAddress(p); err != nil {
					break
				}
				if string(a) != p {
					err = fault.Errorf(op, fault.Invalid, "scope %q is not in canonical form", p)
					break
				}
				id.Scope = append(id.Scope, a)
			}
		default:
			err = fault.Errorf(op, fault.Invalid, "unknown identity field %q", k)
		}
		if err != nil {
			return Identity{}, fault.E(op, fault.Permission, "certificate identity is invalid", err)
		}
	}
	if id.Role == "" || id.Clearance == 0 {
		return Identity{}, fault.E(op, fault.Permission, "certificate carries no dienbao role and clearance")
	}
	if id.Scoped() && id.Role != Operator {
		return Identity{}, fault.Errorf(op, fault.Permission, "a %s certificate cannot carry a scope; only operators' do", id.Role)
	}
	if id.Agency == "" && (id.Role == Terminal || id.Role == Switch) {
		return Identity{}, fault.Errorf(op, fault.Permission, "a %s certificate must name its agency", id.Role)
	}
	return id, nil
}

// String names the identity for logs and audit records.
func (id Identity) String() string {
	if id.Agency != "" {
		return string(id.Agency) + "/" + id.Name
	}
	return id.Name
}

// CheckPeerName checks a peer switch's name as a scope names it: 1 to 64
// letters, digits, dots, dashes or underscores.
func CheckPeerName(name string) error {
	if name == "" || len(name) > 64 || strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		return fault.Errorf("certs.identity", fault.Invalid, "link %q: a peer switch's name (letters, digits, . - _)", name)
	}
	return nil
}
