package server

import (
	"errors"
	"os"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/fault"
	"go.uber.org/zap"
)

// Revocation. With a CRL configured, every handshake is checked against
// it (in VerifyConnection, which also runs on every connection since
// session tickets are off), live sessions whose certificate it lists are
// closed as soon as it is loaded, and it is reloaded at SIGHUP and when its
// file changes (checked each timer interval). A CRL past its next-update
// time fails closed: every handshake is refused and every session closed
// until a fresh one is installed. A file that does not parse or verify is
// refused: the one in force stays (and goes stale in its time).

var (
	errRevoked  = errors.New("certificate revoked")
	errStaleCRL = errors.New("the revocation list is past its next-update time: every certificate is refused until a fresh CRL is installed")
)

// crlCheck checks a peer certificate against the CRL in force.
func (s *Server) crlCheck(serialRevoked func(*certs.CRL) bool) error {
	crl := s.crl.Load()
	if crl == nil {
		return nil
	}
	if crl.Stale(time.Now()) {
		return errStaleCRL
	}
	if serialRevoked(crl) {
		return errRevoked
	}
	return nil
}

// loadCRL reads and verifies the CRL file and puts it in force.
func (s *Server) loadCRL() error {
	path := s.cfg.CRL
	s.crlFile.changed(path) // what is read now is what was seen
	data, err := os.ReadFile(path)
	if err != nil {
		return fault.E("crl", fault.Invalid, "cannot read the CRL "+path, err)
	}
	crl, err := certs.ParseCRL(data, s.cfg.CACerts)
	if err != nil {
		return err
	}
	if old := s.crl.Load(); old != nil && crl.Number != nil && old.Number != nil && crl.Number.Cmp(old.Number) < 0 {
		return fault.Errorf("crl", fault.Invalid, "CRL number %s is older than the one in force (%s)", crl.Number, old.Number)
	}
	s.crl.Store(crl)
	s.crlStaleNoted = false
	s.log.Info("revocation list in force", zap.String("file", path), zap.Int("revoked", crl.Len()),
		zap.Time("next_update", crl.NextUpdate), zap.Stringer("number", crl.Number))
	s.closeRevoked(crl)
	return nil
}

// ReloadCRL re-reads the CRL (SIGHUP). A bad file is refused and logged.
func (s *Server) ReloadCRL() {
	if s.cfg.CRL == "" {
		return
	}
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	if err := s.loadCRL(); err != nil {
		s.log.Error("CRL reload refused; the one in force stays", zap.Error(err))
	}
}

// watchCRL reloads the CRL when its file changed, and enforces staleness.
func (s *Server) watchCRL() {
	if s.cfg.CRL == "" {
		return
	}
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	if s.crlFile.changed(s.cfg.CRL) {
		if err := s.loadCRL(); err != nil {
			s.log.Error("CRL file changed but was refused; the one in force stays until it changes again", zap.Error(err))
		}
	}
	if crl := s.crl.Load(); crl != nil && crl.Stale(time.Now()) && !s.crlStaleNoted {
		s.crlStaleNoted = true
		s.security(certs.Identity{Name: "switch"}, "revocation list past its next-update time ("+crl.NextUpdate.UTC().Format(time.RFC3339)+"): refusing every certificate and closing every session")
		s.closeSessions(func(*session) bool { return true }, "the switch's revocation list is out of date")
	}
}

// closeRevoked closes every live session whose certificate crl lists.
func (s *Server) closeRevoked(crl *certs.CRL) {
	s.closeSessions(func(sess *session) bool { return crl.Revoked(sess.cert) }, "certificate revoked")
}

func (s *Server) closeSessions(match func(*session) bool, why string) {
	s.mu.Lock()
	var hit []*session
	for sess := range s.sessions {
		if match(sess) {
			hit = append(hit, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range hit {
		s.security(sess.id, why+": session from "+sess.remote+" closed")
		sess.conn.CloseWithError(codeRevoked, why)
	}
}
