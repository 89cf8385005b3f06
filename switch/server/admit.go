package server

import (
	"crypto/sha256"
	"crypto/x509"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// Session slots. One certificate, or one agency, must not take the
// switch's sessions from everyone else: each has a cap (MaxSessionsPerCert,
// MaxSessionsPerAgency), and the last tenth of MaxSessions is kept for
// operators, auditors and agencies with nothing connected, so that those
// can always get in.

// open counts the sessions open, by certificate and by agency (under
// Server.mu).
type openSessions struct {
	total    int
	byCert   map[[32]byte]int
	byAgency map[telegram.Address]int
}

func certKey(c *x509.Certificate) [32]byte { return sha256.Sum256(c.Raw) }

func (o *openSessions) add(id certs.Identity, c *x509.Certificate, n int) {
	if o.byCert == nil {
		o.byCert, o.byAgency = map[[32]byte]int{}, map[telegram.Address]int{}
	}
	o.total += n
	k := certKey(c)
	if o.byCert[k] += n; o.byCert[k] == 0 {
		delete(o.byCert, k)
	}
	if id.Role == certs.Terminal {
		if o.byAgency[id.Agency] += n; o.byAgency[id.Agency] == 0 {
			delete(o.byAgency, id.Agency)
		}
	}
}

// admit decides whether a new session of who, with certificate c, may
// open; an error says why not.
func admit(who certs.Identity, c *x509.Certificate, o openSessions, max, perCert, perAgency int) error {
	const op = "session"
	reserved := max / 10
	switch {
	case o.total >= max:
		return fault.Errorf(op, fault.Unavailable, "the switch is at its session limit (%d); retry later", max)
	case o.byCert[certKey(c)] >= perCert:
		return fault.Errorf(op, fault.Unavailable, "this certificate already has %d sessions open, the most one may have; close one first", perCert)
	case who.Role != certs.Terminal:
		return nil // operators and auditors may use the reserved slots
	case o.byAgency[who.Agency] >= perAgency:
		return fault.Errorf(op, fault.Unavailable, "%s already has %d sessions open, the most one agency may have; retry later", who.Agency, perAgency)
	case o.byAgency[who.Agency] > 0 && o.total >= max-reserved:
		return fault.Errorf(op, fault.Unavailable, "the switch is nearly at its session limit; its last %d slots are kept for agencies with nothing connected and for operators; retry later", reserved)
	}
	return nil
}
