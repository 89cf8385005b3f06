package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/wire"
)

// tlsConfig is TLS 1.3 with a required client certificate. The chain and
// the identity in it are checked by verifyPeer rather than by crypto/tls,
// so that a refused handshake is logged and audited with its reason and the
// remote address (crypto/tls would only send an alert). crypto/tls still
// checks that the client holds the certificate's key. Session tickets are
// off, so every connection is a full handshake and passes verifyPeer.
func (s *Server) tlsConfig() *tls.Config {
	base := &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: wire.KeyExchanges,
		Certificates:     []tls.Certificate{s.cfg.Cert},
		// Requested, not required, so that a handshake without one reaches
		// verifyPeer and is counted and audited like every other refusal
		// (a certificate sent must still be proven by its key: crypto/tls
		// checks CertificateVerify whatever the setting).
		ClientAuth:             tls.RequestClientCert,
		NextProtos:             []string{wire.ALPN},
		SessionTicketsDisabled: true,
	}
	outer := base.Clone()
	outer.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		remote := ""
		if hello.Conn != nil {
			remote = hello.Conn.RemoteAddr().String()
		}
		if !s.allowHandshake(remote) {
			return nil, errors.New("too many handshakes from this address; retry later")
		}
		if !slices.Contains(hello.SupportedCurves, tls.X25519MLKEM768) {
			// Refused here, and audited; crypto/tls then ends the
			// handshake itself, finding no group in common, with a
			// handshake_failure alert (an error returned here would send
			// internal_error).
			err := errors.New("the client offers no post-quantum key exchange (X25519MLKEM768 is required)")
			s.refuse(certs.Identity{Name: "client " + hello.ServerName}, remote, "no_post_quantum", err)
			return base, nil
		}
		c := base.Clone()
		c.VerifyConnection = func(cs tls.ConnectionState) error { return s.verifyPeer(cs, remote) }
		return c, nil
	}
	return outer
}

// verifyPeer checks the client's certificate chain against the network CA
// and reads the identity in it; a failure is refused and audited.
func (s *Server) verifyPeer(cs tls.ConnectionState, remote string) error {
	err := s.checkPeer(cs)
	if err != nil {
		who := certs.Identity{Name: "unknown"}
		if len(cs.PeerCertificates) > 0 {
			who.Name = "certificate " + cs.PeerCertificates[0].Subject.CommonName
		}
		s.refuse(who, remote, refusalClass(err), err)
	}
	return err
}

// refuse counts, logs and audits a refused handshake, aggregated per
// source host, refusal class and certificate name (refusals.go).
func (s *Server) refuse(who certs.Identity, remote, class string, err error) {
	s.stats.refused.WithLabelValues(class).Inc()
	reason := "handshake refused from " + remote + ": " + err.Error()
	host, _, _ := net.SplitHostPort(remote)
	s.refusal(deniedKey("handshake/"+class, who.String(), "", host), store.AuditEntry{Actor: who.String(), Event: store.AuditSecurity, Reason: reason}, true)
}

func (s *Server) checkPeer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	_, err := s.verifyChain(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, "certificate not accepted")
	return err
}

// verifyChain checks a peer's certificate chain against the network CA on
// the switch's clock, for usage (a failure says notAccepted first), reads
// the identity in it and checks the revocation list.
func (s *Server) verifyChain(chain []*x509.Certificate, usage x509.ExtKeyUsage, notAccepted string) (certs.Identity, error) {
	leaf := chain[0]
	if err := certs.VerifyChain(chain, s.cfg.CAs, s.clock.Now(), usage); err != nil {
		return certs.Identity{}, fmt.Errorf("%s: %w", notAccepted, err)
	}
	id, err := certs.IdentityOf(leaf)
	if err != nil {
		return id, err
	}
	return id, s.crlCheck(func(crl *certs.CRL) bool { return crl.Revoked(leaf) })
}

// refusalClass names a handshake refusal for the metric's reason label
// (a few fixed values, not the message).
func refusalClass(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.Is(err, errRevoked):
		return "revoked"
	case errors.Is(err, errStaleCRL):
		return "crl_out_of_date"
	case errors.As(err, &unknown):
		return "unknown_authority"
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "expired_or_not_yet_valid"
	case errors.As(err, &invalid):
		return "invalid_certificate"
	case err.Error() == "no client certificate":
		return "no_certificate"
	default:
		return "bad_identity"
	}
}
