package server

import (
	"fmt"
	"slices"

	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// End-to-end sealing (package envelope): the switch serves the agencies'
// published keys, and refuses a filing the site's policy wants sealed that
// is not, or whose envelope's signed header does not match the filing.
// It never verifies a signature or opens a body: that is the addressee's
// terminal's work, which reports a failure with a Reject.

// keyset is the published keys in force: the certificates that verified
// under the CA, by agency, and every revocation.
type keyset struct {
	certs       map[telegram.Address][][]byte
	revocations [][]byte
}

// loadKeys checks the directory's published keys under the CA. Entries
// that do not verify are left out and returned as errors. The keys folder
// is the network's: it may hold keys of agencies other switches serve.
func (s *Server) loadKeys(dir *directory.Directory) []error {
	p, err := publishedKeys(dir)
	if err != nil {
		return []error{err}
	}
	var errs []error
	ks := &keyset{certs: map[telegram.Address][][]byte{}}
	for _, raw := range p.Certs {
		c, err := envelope.ParseCert(raw, s.cfg.CACerts)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ks.certs[c.Agency] = append(ks.certs[c.Agency], raw)
	}
	for _, raw := range p.Revocations {
		if _, err := envelope.ParseRevocation(raw, s.cfg.CACerts); err != nil {
			errs = append(errs, err)
			continue
		}
		ks.revocations = append(ks.revocations, raw)
	}
	s.keys.Store(ks)
	return errs
}

// noteKeys loads the published keys and logs what was left out.
func (s *Server) noteKeys(dir *directory.Directory) {
	for _, err := range s.loadKeys(dir) {
		s.log.Error("published agency key left out", zap.Error(err))
	}
	ks := s.keys.Load()
	n := 0
	for _, cs := range ks.certs {
		n += len(cs)
	}
	s.log.Info("agency keys published", zap.Int("keys", n), zap.Int("agencies", len(ks.certs)), zap.Int("revocations", len(ks.revocations)))
}

// handleAgencyKeys serves published keys.
func (sess *session) handleAgencyKeys(str *quic.Stream, payload []byte) {
	var req wire.AgencyKeysRequest
	if err := wire.Decode(wire.TAgencyKeys, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	ks := sess.s.keys.Load()
	out := wire.AgencyKeys{Revocations: ks.revocations, Certs: [][]byte{}}
	if out.Revocations == nil {
		out.Revocations = [][]byte{}
	}
	for _, a := range req.Agencies {
		if len(ks.certs[a]) == 0 {
			out.Missing = append(out.Missing, a)
			continue
		}
		out.Certs = append(out.Certs, ks.certs[a]...)
	}
	wire.WriteFrame(str, wire.TAgencyKeyed, out)
}

// mustSeal reports whether the site's policy wants class sealed end to
// end: SECRET and TOP SECRET always; the others unless listed in
// AllowPlain.
func (s *Server) mustSeal(class telegram.Classification) bool {
	if class >= telegram.Secret {
		return true
	}
	return !slices.Contains(s.cfg.AllowPlain, class)
}

// sealed is what the switch keeps of a sealed filing's envelope: the
// audit log's note (the digest of the signed header) and the digest of
// the sealed content the sender signed (what a refiling under the same
// reference is compared by: a resealed telegram differs in every byte).
type sealed struct {
	note    string
	content []byte
}

// checkSealed applies the policy to one filing whose header is h: a
// sealed body's envelope must match the filing (the sender is the
// certificate's agency, checked before); a plain one must be allowed for
// its classification. It marks h sealed and fills out.
func (s *Server) checkSealed(h *telegram.Header, body []byte, out *sealed) error {
	const op = "file"
	if !envelope.Is(body) {
		if !s.mustSeal(h.Classification) {
			return nil
		}
		ks := s.keys.Load()
		for _, a := range h.Addressees() {
			if len(ks.certs[a]) == 0 {
				return fault.Errorf(op, fault.Invalid, "a %s telegram must be sealed and signed end to end on this switch, and %s has no published end-to-end key to seal for (the CA certifies one with tg certs sign-keys)", h.Classification, a)
			}
		}
		return fault.Errorf(op, fault.Invalid, "a %s telegram must be sealed and signed end to end on this switch (its [end_to_end] allow_plain does not list %s): tg send seals it, without --plain, when the identity folder holds the agency's keys (tg agency-keys new)", h.Classification, h.Classification)
	}
	e, err := envelope.Parse(body)
	if err != nil {
		return fault.E(op, fault.Invalid, err.Error())
	}
	if err := e.Match(envelope.FieldsOf(*h)); err != nil {
		return fault.E(op, fault.Invalid, err.Error())
	}
	if h.Subject != "" {
		return fault.E(op, fault.Invalid, "a sealed telegram's subject travels inside its envelope; the clear subject must be empty")
	}
	h.Sealed = true
	out.note, out.content = "sealed "+e.Digest(), e.Signed().Content
	return nil
}

// reject records a terminal's refusal of a delivery that failed its
// end-to-end verification: not delivered, the sender told with the
// reason, audited (by the store) as rejected, and counted.
func (sess *session) reject(seat *switchboard.Seat, ds *dstream, payload []byte) error {
	var r wire.Reject
	if err := wire.Decode(wire.TReject, payload, &r); err != nil {
		return err
	}
	if err := seat.Reject(r.Tag, ds.rank, r.Reason, audit.Clean(r.Detail, 512)); err != nil {
		sess.s.security(sess.id, fmt.Sprintf("%v; connection closed", err))
		return err
	}
	sess.s.stats.rejected.WithLabelValues(r.Reason).Inc()
	return nil
}

// publishedKeys parses the directory's keys folder.
func publishedKeys(dir *directory.Directory) (envelope.Published, error) {
	p, err := envelope.ParseFiles(dir.Keys())
	if err != nil {
		return p, fault.E("directory", fault.Invalid, "the agency keys folder: "+err.Error())
	}
	return p, nil
}
