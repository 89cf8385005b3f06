package server

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"go.uber.org/zap"
)

// Revocation. With a CRL configured, every handshake is checked against
// it (in VerifyConnection, which also runs on every connection since
// session tickets are off), live sessions whose certificate it lists are
// closed as soon as it is loaded, and it is reloaded at SIGHUP and when its
// file changes (checked each timer interval). A CRL past its next-update
// time is still used for CRLGrace (logged, audited, and in the metrics);
// past that it fails closed: every handshake is refused and every session
// closed until a fresh one is installed. A file that does not parse or
// verify is refused: the one in force stays (and goes stale in its time).
//
// With CRLRenew the switch signs a fresh CRL itself, from the issuing CA's
// folder, once the one in force is within CRLRenew.Before of its
// next-update time (a failure is logged and audited, and tried again every
// crlRenewRetry). Once a day it logs and audits the CRL and the
// certificates it holds (its own, the CA's) that end within
// ExpiryWarning.

var (
	errRevoked  = errors.New("certificate revoked")
	errStaleCRL = errors.New("the revocation list is past its next-update time and its grace: every certificate is refused until a fresh CRL is installed")
)

// crlRenewRetry is how long after a failed renewal the switch tries again.
const crlRenewRetry = 10 * time.Minute

// crlCheck checks a peer certificate against the CRL in force.
func (s *Server) crlCheck(serialRevoked func(*certs.CRL) bool) error {
	crl := s.crl.Load()
	if crl == nil {
		return nil
	}
	if crl.Stale(time.Now().Add(-s.cfg.CRLGrace)) {
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
	s.crlStaleNoted, s.crlGraceNoted = false, false
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

// watchCRL reloads the CRL when its file changed, renews it when it is
// due, enforces staleness, and warns of ends near.
func (s *Server) watchCRL() {
	s.crlMu.Lock()
	defer s.crlMu.Unlock()
	defer s.warnExpiry()
	if s.cfg.CRL == "" {
		return
	}
	if s.crlFile.changed(s.cfg.CRL) {
		if err := s.loadCRL(); err != nil {
			s.log.Error("CRL file changed but was refused; the one in force stays until it changes again", zap.Error(err))
		}
	}
	s.renewCRL()
	now := time.Now()
	crl := s.crl.Load()
	switch {
	case crl == nil:
	case crl.Stale(now.Add(-s.cfg.CRLGrace)) && !s.crlStaleNoted:
		s.crlStaleNoted = true
		s.security(certs.Identity{Name: "switch"}, "revocation list past its next-update time ("+crl.NextUpdate.UTC().Format(time.RFC3339)+
			") and its grace of "+s.cfg.CRLGrace.String()+": refusing every certificate and closing every session")
		s.closeSessions(func(*session) bool { return true }, "the switch's revocation list is out of date")
	case crl.Stale(now) && !crl.Stale(now.Add(-s.cfg.CRLGrace)) && !s.crlGraceNoted:
		s.crlGraceNoted = true
		s.security(certs.Identity{Name: "switch"}, fmt.Sprintf("revocation list past its next-update time (%s): still used for its grace, until %s; install a fresh CRL (tg certs crl) before then",
			crl.NextUpdate.UTC().Format(time.RFC3339), crl.NextUpdate.Add(s.cfg.CRLGrace).UTC().Format(time.RFC3339)))
	}
}

// renewCRL signs and puts in force a fresh CRL when the one in force is
// within CRLRenew.Before of its next-update time (or none is). crlMu held.
func (s *Server) renewCRL() {
	r := s.cfg.CRLRenew
	if r == nil {
		return
	}
	now := time.Now()
	if crl := s.crl.Load(); crl != nil && crl.NextUpdate.Sub(now) > r.Before {
		return
	}
	if !s.crlRenewTried.IsZero() && now.Sub(s.crlRenewTried) < crlRenewRetry {
		return
	}
	err := func() error {
		ca, err := certs.LoadCAWith(r.CADir, r.Passphrase)
		if err != nil {
			return err
		}
		pem, err := ca.CRL(r.CADir, r.Validity)
		if err != nil {
			return err
		}
		if err := certs.WriteCRL(s.cfg.CRL, pem); err != nil {
			return err
		}
		return s.loadCRL()
	}()
	if err != nil {
		s.crlRenewTried = now
		s.log.Error("cannot renew the revocation list; trying again in "+crlRenewRetry.String(), zap.Error(err))
		s.audit(store.AuditEntry{Actor: "switch", Event: audit.Revocation, Reason: "the revocation list could not be renewed: " + err.Error()})
		return
	}
	s.crlRenewTried, s.crlStaleNoted, s.crlGraceNoted = time.Time{}, false, false
	crl := s.crl.Load()
	s.audit(store.AuditEntry{Actor: "switch", Event: audit.Revocation, Reason: fmt.Sprintf("the switch signed a fresh revocation list (number %s, %d revoked), valid until %s",
		crl.Number, crl.Len(), crl.NextUpdate.UTC().Format(time.RFC3339))})
}

// warnExpiry logs and audits, once a day, the CRL and the certificates
// the switch holds that end within ExpiryWarning. crlMu held.
func (s *Server) warnExpiry() {
	now := time.Now()
	if now.Sub(s.expiryWarned) < 24*time.Hour {
		return
	}
	s.expiryWarned = now
	var ends []string
	soon := func(what string, t time.Time) {
		if !t.IsZero() && t.Sub(now) < s.cfg.ExpiryWarning {
			ends = append(ends, fmt.Sprintf("%s ends %s (in %s)", what, t.UTC().Format(time.RFC3339), t.Sub(now).Round(time.Minute)))
		}
	}
	if crl := s.crl.Load(); crl != nil && s.cfg.CRLRenew == nil {
		soon("the revocation list", crl.NextUpdate)
	}
	if leaf := s.cfg.Cert.Leaf; leaf != nil {
		soon("the switch's certificate "+leaf.Subject.CommonName, leaf.NotAfter)
	}
	for _, ca := range s.cfg.CACerts {
		soon("the CA certificate "+ca.Subject.CommonName, ca.NotAfter)
	}
	for _, e := range ends {
		s.log.Warn("renew before it ends: " + e)
		s.audit(store.AuditEntry{Actor: "switch", Event: audit.Revocation, Reason: e + ": renew it"})
	}
}

// audit records an entry, logging a failure.
func (s *Server) audit(e store.AuditEntry) {
	if err := s.store.Record(e); err != nil {
		s.log.Error("cannot audit", zap.String("event", e.Event), zap.Error(err))
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
