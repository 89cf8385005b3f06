package group

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// TLS is how nodes know each other: each presents its switch
// certificate, and accepts only a member's, issued by the network's CA
// and not revoked.
type TLS struct {
	Cert    tls.Certificate
	CAs     *x509.CertPool
	Revoked func(*x509.Certificate) bool // nil: no CRL
}

// ALPN names the node-to-node protocol.
const ALPN = "dienbao-group/1"

// maxMessage bounds one Raft message on the wire (entries are batched by
// Raft up to MaxSizePerMsg; one entry is one commit, bounded by Badger's
// transaction size).
const maxMessage = 256 << 20

// transport carries Raft's messages between nodes over QUIC: one
// connection per peer in each direction, one stream of length-prefixed
// messages, and a stream of its own for each snapshot (the message, then
// the records: store.Replica.WriteSnapshot).
type transport struct {
	n     *Node
	tls   TLS
	ln    *quic.Listener
	mu    sync.Mutex
	peers map[uint64]*peer
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
}

type peer struct {
	id  uint64
	out chan *pb.Message
}

func newTransport(n *Node, t TLS) (*transport, error) {
	ctx, stop := context.WithCancel(context.Background())
	tr := &transport{n: n, tls: t, peers: map[uint64]*peer{}, ctx: ctx, stop: stop}
	self := n.Self()
	ln, err := quic.ListenAddr(self.Raft, tr.config(true), quicConfig())
	if err != nil {
		stop()
		return nil, fmt.Errorf("cannot listen on %s for the group: %w", self.Raft, err)
	}
	tr.ln = ln
	return tr, nil
}

func quicConfig() *quic.Config {
	return &quic.Config{HandshakeIdleTimeout: 3 * time.Second, MaxIdleTimeout: 5 * time.Second, KeepAlivePeriod: time.Second,
		MaxIncomingStreams: 64, MaxIncomingUniStreams: -1, InitialStreamReceiveWindow: 4 << 20, MaxStreamReceiveWindow: 16 << 20,
		InitialConnectionReceiveWindow: 8 << 20, MaxConnectionReceiveWindow: 32 << 20}
}

// config is the TLS of either end: TLS 1.3, the post-quantum key
// exchange, the node's switch certificate, and a member's required of
// the other end.
func (tr *transport) config(server bool) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS13, CurvePreferences: wire.KeyExchanges, Certificates: []tls.Certificate{tr.tls.Cert},
		NextProtos: []string{ALPN}, InsecureSkipVerify: true, // the chain is checked below, against the CA, with the member's name
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error { return tr.verify(raw) }}
	if server {
		c.ClientAuth = tls.RequireAnyClientCert
	}
	return c
}

// verify accepts a member's switch certificate only.
func (tr *transport) verify(raw [][]byte) error {
	if len(raw) == 0 {
		return errors.New("no certificate")
	}
	var chain []*x509.Certificate
	for _, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return err
		}
		chain = append(chain, c)
	}
	if err := certs.VerifyChain(chain, tr.tls.CAs, time.Now(), x509.ExtKeyUsageAny); err != nil {
		return err
	}
	id, err := certs.IdentityOf(chain[0])
	if err != nil {
		return err
	}
	if id.Role != certs.Switch {
		return fmt.Errorf("a %s certificate, not a switch's", id.Role)
	}
	if tr.tls.Revoked != nil && tr.tls.Revoked(chain[0]) {
		return errors.New("the certificate is revoked")
	}
	if tr.memberNamed(id.Name) == 0 {
		return fmt.Errorf("%s is not a member of the group", id.Name)
	}
	return nil
}

// memberNamed is the ID of the member whose certificate bears name (0:
// none).
func (tr *transport) memberNamed(name string) uint64 {
	for _, m := range tr.n.Members() {
		if m.Name == name {
			return m.ID
		}
	}
	return 0
}

func (tr *transport) start() {
	tr.wg.Add(1)
	go tr.accept()
}

func (tr *transport) close() {
	tr.stop()
	tr.ln.Close()
	tr.wg.Wait()
}

// send hands messages to their peers' queues; a full queue drops the
// message (Raft sends again).
func (tr *transport) send(msgs []*pb.Message) {
	for _, m := range msgs {
		if m.GetType() == pb.MessageType_MsgSnap {
			tr.wg.Add(1)
			go tr.sendSnapshot(m)
			continue
		}
		p := tr.peer(m.GetTo())
		if p == nil {
			continue
		}
		select {
		case p.out <- m:
		default:
			tr.n.rn.ReportUnreachable(m.GetTo())
		}
	}
}

func (tr *transport) peer(id uint64) *peer {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if p, ok := tr.peers[id]; ok {
		return p
	}
	if tr.ctx.Err() != nil {
		return nil
	}
	p := &peer{id: id, out: make(chan *pb.Message, 4096)}
	tr.peers[id] = p
	tr.wg.Add(1)
	go tr.run(p)
	return p
}

func (tr *transport) addr(id uint64) (string, bool) {
	for _, m := range tr.n.Members() {
		if m.ID == id {
			return m.Raft, true
		}
	}
	return "", false
}

func (tr *transport) dial(id uint64) (*quic.Conn, error) {
	addr, ok := tr.addr(id)
	if !ok {
		return nil, fmt.Errorf("node %d is not a member", id)
	}
	ctx, cancel := context.WithTimeout(tr.ctx, 3*time.Second)
	defer cancel()
	return quic.DialAddr(ctx, addr, tr.config(false), quicConfig())
}

// run sends one peer's messages, connecting again after a failure.
func (tr *transport) run(p *peer) {
	defer tr.wg.Done()
	for tr.ctx.Err() == nil {
		err := tr.stream(p)
		if tr.ctx.Err() != nil {
			return
		}
		tr.n.rn.ReportUnreachable(p.id)
		tr.n.log.Debug("group link down", zap.Uint64("node", p.id), zap.Error(err))
		select {
		case <-tr.ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// open connects to node id and opens a stream of the kind given ('m':
// messages, 's': a snapshot), written through a buffer of size bytes.
// The caller closes the connection.
func (tr *transport) open(id uint64, kind byte, size int) (*quic.Conn, *quic.Stream, *bufio.Writer, error) {
	conn, err := tr.dial(id)
	if err != nil {
		return nil, nil, nil, err
	}
	str, err := conn.OpenStreamSync(tr.ctx)
	if err != nil {
		conn.CloseWithError(0, "")
		return nil, nil, nil, err
	}
	w := bufio.NewWriterSize(str, size)
	w.WriteByte(kind)
	return conn, str, w, nil
}

func (tr *transport) stream(p *peer) error {
	conn, _, w, err := tr.open(p.id, 'm', 256<<10)
	if err != nil {
		return err
	}
	defer conn.CloseWithError(0, "")
	for {
		var m *pb.Message
		select {
		case <-tr.ctx.Done():
			return nil
		case <-conn.Context().Done():
			return context.Cause(conn.Context())
		case m = <-p.out:
		}
		for {
			if err := writeMsg(w, m); err != nil {
				return err
			}
			select {
			case m = <-p.out:
				continue
			default:
			}
			break
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

func writeMsg(w io.Writer, m *pb.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	var l [4]byte
	binary.BigEndian.PutUint32(l[:], uint32(len(b)))
	if _, err := w.Write(l[:]); err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func readMsg(r io.Reader) (*pb.Message, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxMessage {
		return nil, fmt.Errorf("a message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	m := &pb.Message{}
	return m, proto.Unmarshal(b, m)
}

// sendSnapshot streams this node's records to a follower too far behind
// for the log, then the snapshot message, and tells Raft how it went.
func (tr *transport) sendSnapshot(m *pb.Message) {
	defer tr.wg.Done()
	err := func() error {
		conn, str, w, err := tr.open(m.GetTo(), 's', 1<<20)
		if err != nil {
			return err
		}
		defer conn.CloseWithError(0, "")
		if err := writeMsg(w, m); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		applied, err := tr.n.cfg.Replica.WriteSnapshot(str)
		if err != nil {
			return err
		}
		str.Close()
		var ack [1]byte
		if _, err := io.ReadFull(str, ack[:]); err != nil || ack[0] != 0 {
			return fmt.Errorf("the follower did not load the snapshot (%v)", err)
		}
		tr.n.log.Info("snapshot sent", zap.Uint64("node", m.GetTo()), zap.Uint64("applied", applied))
		return nil
	}()
	if err != nil {
		tr.n.log.Warn("snapshot not sent", zap.Uint64("node", m.GetTo()), zap.Error(err))
		tr.n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
		return
	}
	tr.n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
}

func (tr *transport) accept() {
	defer tr.wg.Done()
	for {
		conn, err := tr.ln.Accept(tr.ctx)
		if err != nil {
			return
		}
		tr.wg.Add(1)
		go tr.serve(conn)
	}
}

func (tr *transport) serve(conn *quic.Conn) {
	defer tr.wg.Done()
	defer conn.CloseWithError(0, "")
	// Messages on this connection must come from the member whose
	// certificate it presented.
	var from uint64
	if peer := conn.ConnectionState().TLS.PeerCertificates; len(peer) > 0 { // verified at the handshake
		if id, err := certs.IdentityOf(peer[0]); err == nil {
			from = tr.memberNamed(id.Name)
		}
	}
	if from == 0 {
		return
	}
	for {
		str, err := conn.AcceptStream(tr.ctx)
		if err != nil {
			return
		}
		tr.wg.Add(1)
		go tr.serveStream(str, from)
	}
}

func (tr *transport) serveStream(str *quic.Stream, from uint64) {
	defer tr.wg.Done()
	defer str.CancelRead(0)
	r := bufio.NewReaderSize(str, 256<<10)
	kind, err := r.ReadByte()
	if err != nil {
		return
	}
	switch kind {
	case 'm':
		for {
			m, err := readMsg(r)
			if err != nil || m.GetFrom() != from {
				return
			}
			tr.n.heard(m.GetFrom())
			if err := tr.n.rn.Step(tr.ctx, m); err != nil && tr.ctx.Err() != nil {
				return
			}
		}
	case 's':
		m, err := readMsg(r)
		if err != nil || m.GetFrom() != from || m.GetType() != pb.MessageType_MsgSnap {
			return
		}
		tr.n.heard(m.GetFrom())
		done := make(chan error, 1)
		select {
		case tr.n.snaps <- snapIn{msg: m, r: r, done: done}:
		case <-tr.ctx.Done():
			return
		}
		err = <-done
		ack := byte(0)
		if err != nil {
			tr.n.log.Warn("snapshot not loaded", zap.Error(err))
			ack = 1
		}
		str.Write([]byte{ack})
		str.Close()
	}
}

func sortedMembers(ms map[uint64]Member) []Member {
	out := make([]Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
