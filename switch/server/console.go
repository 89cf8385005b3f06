package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/monitor"
)

// The console over HTTPS: TLS 1.3 with the switch's certificate; a client
// certificate from the network's CA is asked for and checked as a QUIC
// session's is (chain, the switch's clock, the revocation list), and only
// operators and auditors are let in. A refusal is logged and audited as a
// refused handshake is.

// ConsoleTLS is the TLS configuration of the HTTPS console.
func (s *Server) ConsoleTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{s.cfg.Cert},
		// Requested, not required: a browser without one gets a page that
		// says why, and the refusal is audited.
		ClientAuth:             tls.RequestClientCert,
		NextProtos:             []string{"http/1.1"},
		SessionTicketsDisabled: true,
	}
}

// ConsoleHosts are the Host header values the HTTPS console answers to:
// the names and addresses in the switch's certificate.
func (s *Server) ConsoleHosts() []string {
	leaf := s.cfg.Cert.Leaf
	if leaf == nil {
		return nil
	}
	out := append([]string(nil), leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// ConsoleAuthorize lets an operator or an auditor in, an operator with a
// scope to its part of the network; anyone else is refused, and the
// refusal audited.
func (s *Server) ConsoleAuthorize(r *http.Request) (monitor.Viewer, error) {
	var err error
	who := certs.Identity{Name: "unknown"}
	switch {
	case r.TLS == nil || len(r.TLS.PeerCertificates) == 0:
		err = errors.New("no client certificate: the console takes an operator's or an auditor's certificate from the network's CA")
	default:
		who.Name = "certificate " + r.TLS.PeerCertificates[0].Subject.CommonName
		var id certs.Identity
		if id, err = s.verifyChain(r.TLS.PeerCertificates, x509.ExtKeyUsageClientAuth, "certificate not accepted"); err == nil {
			who = id
			if id.Role != certs.Operator && id.Role != certs.Auditor {
				err = fmt.Errorf("%s certificates cannot see the console; operators and auditors can", id.Role)
			}
		}
	}
	if err != nil {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.refusal(deniedKey("console", who.String(), "", host),
			store.AuditEntry{Actor: who.String(), Event: store.AuditSecurity, Reason: "console refused to " + r.RemoteAddr + ": " + err.Error()}, true)
		return monitor.Viewer{}, err
	}
	v := monitor.Viewer{Name: who.String()}
	if who.Scoped() {
		v.Scope, v.In, v.Link = scopeList(who), who.InScope, who.InLink
	}
	return v, nil
}
