package server

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/dienbao/dienbao/switch/directory"
	"github.com/dienbao/dienbao/switch/filing"
	"go.uber.org/zap"
)

// Config is everything a Server needs. It is data: built and validated by
// the daemon, never read from files here.
type Config struct {
	Listen    string          // UDP HOST:PORT
	DataDir   string          // the Badger folder
	Cert      tls.Certificate // the switch's certificate and key
	CAs       *x509.CertPool  // the network CA
	Directory *directory.Directory
	Limits    filing.Limits
	MaxFrame  int // default wire.DefaultMaxFrame
	// Window is the number of unacknowledged deliveries per precedence per
	// session (default 32).
	Window int
	Logger *zap.Logger
	// Name is the switch's name in audit records (default "switch").
	Name string
}

// QUIC application error codes used when the switch closes a connection.
const (
	codeShutdown   = 0x10 // the switch is shutting down
	codeIdentity   = 0x11 // the certificate carries no usable identity
	codeProtocol   = 0x12 // the peer broke the protocol
	streamProtocol = 0x12 // stream cancelled for a protocol error
	streamTooLarge = 0x13 // stream cancelled: announced size over the limit
)
