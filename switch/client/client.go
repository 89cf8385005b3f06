// Package client is the Go library agency terminals (and tg) use to talk
// to a dienbao switch: file telegrams, receive their own in precedence
// order, and receive delivery reports.
//
// Receiving is at-least-once on the wire and exactly-once as the terminal
// sees it: a handler must store what it is given durably before returning
// nil, only then is the acknowledgement sent, and a store keyed by
// telegram ID (see Inbox) drops what it already holds. Handlers run
// concurrently, one goroutine per precedence stream, so a FLASH is handled
// while a long ROUTINE body is still arriving.
package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/envelope"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// Client is one connection to the switch.
type Client struct {
	conn   *quic.Conn
	folder *certs.Folder
	opts   options
	addr   string // the address connected to
	// group: the switch is a replicated one, whose members are at addrs
	// (the folder's, and those the leader named): Receive with Follow
	// finds the new leader when the connection ends.
	group bool
	addrs []string
	// MaxFrame and MaxBody bound what the client accepts from the switch.
	MaxFrame int
	MaxBody  int64
	// RetryFor bounds how long SendBatch goes on filing again what the
	// switch refused with a retry-after hint (it is saturated, or the
	// agency is over its filing rate), backing off: 0 means
	// DefaultRetryFor, a negative value never retries.
	RetryFor time.Duration
	e2e      e2e // end-to-end sealing state (e2e.go)
	// OnReject, if set, is told of each delivery this terminal refused
	// (it failed end-to-end verification), after the switch was told.
	OnReject func(h telegram.Header, r *envelope.Refusal)
}

// DefaultRetryFor is how long SendBatch retries by default.
const DefaultRetryFor = 30 * time.Second

// Option adjusts how Dial connects.
type Option func(*options)

type options struct {
	idle, keepAlive time.Duration
}

// DefaultIdleTimeout and DefaultKeepAlive are what Dial uses without
// options. A switch that died is noticed within the idle timeout; one that
// restarted answers the next keep-alive with a stateless reset, so it is
// noticed within the keep-alive period.
const (
	DefaultIdleTimeout = 15 * time.Second
	DefaultKeepAlive   = 5 * time.Second
)

// WithIdleTimeout sets how long a silent connection lives (default
// DefaultIdleTimeout). The shorter of the client's and the switch's
// applies.
func WithIdleTimeout(d time.Duration) Option { return func(o *options) { o.idle = d } }

// WithKeepAlive sets how often the client sends a keep-alive when nothing
// else is sent (default DefaultKeepAlive, and never more than a third of
// the idle timeout).
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// Dial connects to the switch named in the identity folder, presenting the
// folder's certificate and checking that the peer is a switch certified by
// the folder's CA. With several addresses (the nodes of a replicated
// switch), it finds the leader (group.go).
func Dial(ctx context.Context, f *certs.Folder, opts ...Option) (*Client, error) {
	o := options{idle: DefaultIdleTimeout, keepAlive: DefaultKeepAlive}
	for _, opt := range opts {
		opt(&o)
	}
	o.keepAlive = min(o.keepAlive, o.idle/3)
	if len(f.Switches) > 1 {
		return dialGroup(ctx, f, o, f.Switches)
	}
	return dialOne(ctx, f, o, f.Switch)
}

// dialOne connects to the switch at addr.
func dialOne(ctx context.Context, f *certs.Folder, o options, addr string) (*Client, error) {
	const op = "dial"
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fault.E(op, fault.Invalid, "the switch address "+addr+" is not HOST:PORT", err)
	}
	tlsConf := &tls.Config{
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: wire.KeyExchanges,
		Certificates:     []tls.Certificate{f.Cert},
		RootCAs:          f.CAs,
		ServerName:       host,
		NextProtos:       []string{wire.ALPN},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the switch sent no certificate")
			}
			id, err := certs.IdentityOf(cs.PeerCertificates[0])
			if err != nil {
				return err
			}
			if id.Role != certs.Switch {
				return fmt.Errorf("the peer is a %s, not a switch", id.Role)
			}
			return nil
		},
	}
	conn, err := quic.DialAddr(ctx, addr, tlsConf, &quic.Config{
		HandshakeIdleTimeout:  10 * time.Second,
		MaxIdleTimeout:        o.idle,
		KeepAlivePeriod:       o.keepAlive,
		MaxIncomingStreams:    16,
		MaxIncomingUniStreams: -1,
	})
	if err != nil {
		if ref := refusedCertificate(f, err); ref != nil {
			return nil, ref
		}
		var unknown x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(err, &unknown):
			return nil, fault.E(op, fault.Permission, "the switch at "+addr+" presented a certificate this identity's CA did not issue: "+
				"it is not this network's switch, or this folder's ca.pem belongs to another network", err)
		case errors.As(err, &invalid):
			return nil, fault.E(op, fault.Permission, "the switch at "+addr+" presented a certificate that is not valid now (expired, or this machine's clock is wrong)", err)
		}
		return nil, fault.E(op, fault.Unavailable, "cannot reach the switch at "+addr, err)
	}
	return &Client{conn: conn, folder: f, opts: o, addr: addr, MaxFrame: wire.DefaultMaxFrame, MaxBody: 64 << 20}, nil
}

// badCertificate is TLS alert 42 as QUIC carries it (RFC 9001, 4.8).
const badCertificate = 0x100 + 42

// refusedCertificate explains a switch's refusal of this terminal's
// certificate, or returns nil if err is not one. The switch says only "bad
// certificate" (it tells a stranger no more), and in TLS 1.3 it says so
// after the client thinks the handshake done, so the first request fails
// with it; the terminal says what that can mean, and checks what it can
// itself.
func refusedCertificate(f *certs.Folder, err error) error {
	const op = "dial"
	var te *quic.TransportError
	if !errors.As(err, &te) || !te.Remote || te.ErrorCode != badCertificate {
		return nil
	}
	leaf, now := f.Cert.Leaf, time.Now()
	switch {
	case leaf != nil && now.Before(leaf.NotBefore):
		return fault.Errorf(op, fault.Permission, "the switch refused this certificate: it is not valid before %s, and this machine's clock says %s",
			leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	case leaf != nil && now.After(leaf.NotAfter):
		return fault.Errorf(op, fault.Permission, "the switch refused this certificate: it expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return fault.E(op, fault.Permission, "the switch refused this certificate: it is revoked, expired or not yet valid by the switch's clock, "+
		"or not issued by the switch's CA; the switch's operator finds which in its log and audit log", err)
}

// Identity is who this client is, from its certificate.
func (c *Client) Identity() certs.Identity { return c.folder.Identity }

// Done is closed when the connection ends, from either side.
func (c *Client) Done() <-chan struct{} { return c.conn.Context().Done() }

// Err says why the connection ended (nil while it is up): for example a
// *quic.StatelessResetError when the switch restarted and no longer knows
// the connection, or a *quic.IdleTimeoutError when it went silent.
func (c *Client) Err() error {
	if c.conn.Context().Err() == nil {
		return nil
	}
	return context.Cause(c.conn.Context())
}

// Close ends the connection.
func (c *Client) Close() error { return c.conn.CloseWithError(0, "") }

// CloseErr explains why the connection ended, if it has.
func (c *Client) closeErr(err error) error {
	if ref := refusedCertificate(c.folder, err); ref != nil {
		return ref
	}
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote {
		return fault.Errorf("switch", fault.Unavailable, "the switch closed the connection: %s", ae.ErrorMessage)
	}
	return err
}
