package server

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"net"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"
)

// transport opens the UDP socket the switch serves on, with a stateless
// reset key that is the same at every start of this switch: after a crash
// and restart, a terminal's next packet on its old connection is answered
// with a stateless reset (RFC 9000, 10.3), so the terminal knows at once
// that its session is gone instead of waiting out its idle timeout.
//
// The key is derived from the keyring's index key (never stored itself),
// so it needs no file of its own and changes only with the keyring. Without
// a keyring (some tests) it is random, and resets work only until the
// process ends.
func (s *Server) transport() (*quic.Transport, error) {
	addr, err := net.ResolveUDPAddr("udp", s.cfg.Listen)
	if err != nil {
		return nil, fault.E("server", fault.Invalid, "cannot resolve the listen address "+s.cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fault.E("server", fault.Unavailable, "cannot listen on "+s.cfg.Listen, err)
	}
	var key quic.StatelessResetKey
	if s.cfg.Keyring != nil {
		k, err := hkdf.Key(sha256.New, s.cfg.Keyring.IndexKey(), nil, "dienbao/quic-stateless-reset", len(key))
		if err != nil {
			udp.Close()
			return nil, fault.E("server", fault.Internal, "cannot derive the stateless reset key", err)
		}
		copy(key[:], k)
	} else {
		rand.Read(key[:])
	}
	// Source-address validation (RFC 9000, 8.1.2) once connection
	// attempts exceed RetryAbove per second: a spoofed source never
	// answers the Retry, so it reaches neither the handshake nor the log.
	attempts := rate.NewLimiter(rate.Limit(s.cfg.RetryAbove), 2*s.cfg.RetryAbove)
	verify := func(net.Addr) bool {
		if attempts.Allow() {
			return false
		}
		s.stats.retries.Inc()
		return true
	}
	return &quic.Transport{Conn: udp, StatelessResetKey: &key, VerifySourceAddress: verify}, nil
}
