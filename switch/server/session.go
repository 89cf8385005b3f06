package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/switchboard"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// session is one authenticated connection.
type session struct {
	s    *Server
	conn *quic.Conn
	id   certs.Identity
	log  *zap.Logger
	ctx  context.Context
	// since and remote describe the connection for operators.
	since  time.Time
	remote string
	group  string            // the TLS key exchange in use
	cert   *x509.Certificate // the client's, for revocation

	// closed is closed once the session has ended and given back what it
	// held in flight.
	closed chan struct{}

	mu         sync.Mutex
	subscribed bool
	sub        wire.Subscribe    // what it subscribed to
	seat       *switchboard.Seat // its place at the switchboard, once subscribed
	streams    [5]*dstream       // delivery streams, by rank
	bodies     *budget           // filing bodies being received on this connection
	wake       chan struct{}
}

// handleConn authenticates a connection and serves its streams.
func (s *Server) handleConn(conn *quic.Conn) {
	state := conn.ConnectionState().TLS
	remote := conn.RemoteAddr().String()
	if len(state.PeerCertificates) == 0 {
		conn.CloseWithError(codeIdentity, "no client certificate")
		return
	}
	id, err := certs.IdentityOf(state.PeerCertificates[0])
	if err != nil { // checked at the handshake already: cannot happen
		conn.CloseWithError(codeIdentity, err.Error())
		return
	}
	sess := &session{s: s, conn: conn, id: id, ctx: conn.Context(), since: time.Now(), remote: remote, group: state.CurveID.String(), cert: state.PeerCertificates[0],
		log:  s.log.With(zap.String("identity", id.String()), zap.String("role", string(id.Role)), zap.String("remote", remote)),
		wake: make(chan struct{}, 1), closed: make(chan struct{}), bodies: newBudget(s.cfg.ConnBodyBudget, 0)}
	s.mu.Lock()
	if s.draining {
		s.mu.Unlock()
		conn.CloseWithError(codeShutdown, "the switch is shutting down")
		return
	}
	if err := admit(id, sess.cert, s.open, s.cfg.MaxSessions, s.cfg.MaxSessionsPerCert, s.cfg.MaxSessionsPerAgency); err != nil {
		s.mu.Unlock()
		reason := "session refused from " + remote + ": " + err.Error()
		s.refusal(deniedKey("session", id.String(), id.Agency, err.Error()), store.AuditEntry{Actor: id.String(), From: id.Agency,
			Event: store.AuditSecurity, Reason: reason}, true)
		conn.CloseWithError(codeBusy, err.Error())
		return
	}
	s.sessions[sess] = struct{}{}
	s.open.add(id, sess.cert, 1)
	s.tuneMemory(len(s.sessions))
	s.mu.Unlock()
	// A CRL loaded between this handshake and now missed this session.
	if err := s.crlCheck(func(crl *certs.CRL) bool { return crl.Revoked(sess.cert) }); err != nil {
		s.security(id, err.Error()+": session from "+remote+" closed")
		conn.CloseWithError(codeRevoked, err.Error())
	}
	sess.log.Info("session opened")
	defer func() {
		sess.close()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.open.add(id, sess.cert, -1)
		if id.Role == certs.Terminal {
			s.lastSeen.Store(id.Agency, time.Now())
		}
		s.tuneMemory(len(s.sessions))
		s.mu.Unlock()
		close(sess.closed)
		sess.log.Info("session closed")
	}()
	for {
		str, err := conn.AcceptStream(sess.ctx)
		if err != nil {
			return
		}
		if !s.beginRequest() {
			str.CancelRead(codeShutdown)
			wire.WriteFrame(str, wire.TError, wire.ErrorOf(fault.E("switch", fault.Unavailable, "the switch is shutting down; retry")))
			str.Close()
			continue
		}
		go func() {
			var once sync.Once
			release := func() { once.Do(s.reqs.Done) }
			defer release()
			sess.handleStream(str, release)
		}()
	}
}

// security logs and audits a security event by (or about) who.
func (s *Server) security(who certs.Identity, reason string, fields ...zap.Field) {
	s.log.Warn("security event", append(fields, zap.String("actor", who.String()), zap.String("reason", reason))...)
	if err := s.store.Record(store.AuditEntry{Actor: who.String(), From: who.Agency, Event: store.AuditSecurity,
		Reason: reason}); err != nil {
		s.log.Error("cannot audit a security event", zap.Error(err))
	}
}

// handleStream serves one request stream.
func (sess *session) handleStream(str *quic.Stream, release func()) {
	defer str.Close()
	// A request frame comes at once or not at all: a stream opened and
	// left silent is dropped, not kept with a goroutine for good.
	str.SetReadDeadline(time.Now().Add(sess.s.cfg.RequestTimeout))
	t, payload, err := wire.ReadFrame(str, sess.s.cfg.MaxFrame)
	str.SetReadDeadline(time.Time{})
	if err != nil {
		if !errors.Is(err, io.EOF) {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fault.Errorf("switch", fault.Invalid, "no complete request within %s", sess.s.cfg.RequestTimeout)
			}
			sess.log.Info("bad request frame", zap.Error(err))
			sess.replyError(str, err)
			str.CancelRead(streamProtocol)
		}
		return
	}
	if !sess.serve(t, str, payload, release) {
		return
	}
	release()
	sess.finishRead(str)
}

// serve dispatches one request and recovers from a panic in its handler:
// the request is answered Internal, its stream cancelled, the event logged
// with the stack and audited, and the switch goes on serving everyone. It
// reports whether the handler returned normally.
func (sess *session) serve(t wire.Type, str *quic.Stream, payload []byte, release func()) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			ok = false
			sess.log.Error("request handler failed; recovered", zap.Stringer("request", t), zap.Any("panic", p), zap.Stack("stack"))
			sess.s.security(sess.id, fmt.Sprintf("a %s request made the switch fail internally (recovered)", t))
			sess.replyError(str, fault.Errorf(t.String(), fault.Internal, "the switch failed on this request; it was not carried out"))
			str.CancelRead(streamProtocol)
		}
	}()
	sess.dispatch(t, str, payload, release)
	return true
}

// finishRead waits, once the request is answered, for the client's end of
// stream, and cancels the receive side if it does not come within the
// request timeout (or more bytes come instead). quic-go frees a stream for
// the peer's next one only when both sides are finished: a FIN arriving in
// a packet of its own, after the request, must still be read, or the
// connection runs out of streams after MaxStreams requests. Cancelling at
// once instead would make a client that has not sent its FIN yet see its
// request fail although it was answered.
func (sess *session) finishRead(str *quic.Stream) {
	if sess.ctx.Err() != nil { // the connection is gone (and a subscription's reader may still hold the stream)
		str.CancelRead(0)
		return
	}
	str.SetReadDeadline(time.Now().Add(sess.s.cfg.RequestTimeout))
	var b [1]byte
	if n, err := str.Read(b[:]); n > 0 || !errors.Is(err, io.EOF) {
		str.CancelRead(0)
	}
}

func (sess *session) replyError(w io.Writer, err error) {
	if e := wire.WriteFrame(w, wire.TError, wire.ErrorOf(err)); e != nil {
		sess.log.Debug("cannot send error", zap.Error(e))
	}
}

// deny refuses a request for lack of permission: error to the client,
// log line and audit record.
func (sess *session) deny(w io.Writer, err error) {
	reason := "request denied: " + err.Error()
	sess.s.refusal(deniedKey("denied", sess.id.String(), sess.id.Agency, reason),
		store.AuditEntry{Actor: sess.id.String(), From: sess.id.Agency, Event: store.AuditSecurity, Reason: reason}, false)
	sess.replyError(w, err)
}
