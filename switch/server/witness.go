package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// Switches in a network witness each other's audit logs (C2SP
// tlog-witness, tlog-cosignature): over each link, the sending switch asks
// its peer to cosign its latest checkpoint, with a consistency proof from
// the last one that peer cosigned; the peer cosigns only a checkpoint
// consistent with everything it cosigned before for that log. A switch
// cannot then show two histories to two auditors without its witnesses
// refusing one of them, audited (`witness`). The witness key is made on
// first use and kept in the store, sealed like every record.

// Settings the witness keeps.
const (
	settingWitnessKey = "witness key"
	settingWitnessed  = "witnessed/" // + origin: the last checkpoint cosigned for that log
	settingCosigned   = "cosigned/"  // + peer: the last checkpoint of this log that peer cosigned
)

// witnessKey is this switch's witness key pair.
type witnessKey struct {
	SKey string `cbor:"1,keyasint"`
	VKey string `cbor:"2,keyasint"`
}

// witnessed is what a witness keeps per log: the log's key (pinned at
// first sight) and the last checkpoint it cosigned (the log's signed note).
type witnessed struct {
	LogKey string `cbor:"1,keyasint"`
	Note   []byte `cbor:"2,keyasint"`
}

// cosignedBy is what a log keeps per witness: its key, and the last
// checkpoint it cosigned, with the cosignature.
type cosignedBy struct {
	Key  string `cbor:"1,keyasint"`
	Size uint64 `cbor:"2,keyasint"`
	Note []byte `cbor:"3,keyasint"`
}

// witnessKeys returns this switch's witness key pair, made on first use.
// It is read from the store once, then kept.
func (s *Server) witnessKeys() (witnessKey, error) {
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	if s.witnessKey.VKey != "" {
		return s.witnessKey, nil
	}
	var k witnessKey
	found, err := s.store.Setting(settingWitnessKey, &k)
	if err != nil {
		return k, err
	}
	if !found {
		if k.SKey, k.VKey, err = audit.NewWitnessKey("dienbao-witness/" + s.links.self); err != nil {
			return k, err
		}
		if err := s.store.PutSetting(settingWitnessKey, k, store.AuditEntry{}); err != nil {
			return k, err
		}
	}
	s.witnessKey = k
	return k, nil
}

// handleCosign is the witness: it cosigns a peer's checkpoint that extends
// the last one it cosigned for that log.
func (sess *session) handleCosign(str *quic.Stream, payload []byte) {
	var req wire.CosignRequest
	if err := wire.Decode(wire.TCosign, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	lk, ok := sess.peer(str, "cosign")
	if !ok {
		return
	}
	out, err := sess.s.cosign(lk.peer.Name, req)
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TCosigned, out)
}

func (s *Server) cosign(peer string, req wire.CosignRequest) (wire.Cosigned, error) {
	const op = "cosign"
	k, err := s.witnessKeys()
	if err != nil {
		return wire.Cosigned{}, err
	}
	out := wire.Cosigned{WitnessKey: k.VKey}
	cp, err := audit.OpenCheckpoint(req.Checkpoint, req.LogKey)
	if err != nil {
		return out, fault.E(op, fault.Invalid, "the checkpoint does not open with the log's key", err)
	}
	s.witnessMu.Lock()
	defer s.witnessMu.Unlock()
	var w witnessed
	found, err := s.store.Setting(settingWitnessed+cp.Origin, &w)
	if err != nil {
		return out, err
	}
	var last *audit.Checkpoint
	if found {
		if w.LogKey != req.LogKey {
			return out, s.refuseCosign(peer, cp, fmt.Sprintf("the log %s is signed with another key than the one this witness knows it by", cp.Origin))
		}
		l, err := audit.OpenCheckpoint(w.Note, w.LogKey)
		if err != nil {
			return out, fault.E(op, fault.Integrity, "the last checkpoint cosigned for "+cp.Origin+" is unreadable", err)
		}
		last = &l
	}
	if lastSize := sizeOf(last); req.Old != lastSize {
		out.Conflict = lastSize // ask again with a proof from there (0: from nothing)
		return out, nil
	}
	note, _, err := audit.Cosign(req.Checkpoint, req.LogKey, k.SKey, last, req.Proof)
	if errors.Is(err, audit.ErrInconsistent) {
		return out, s.refuseCosign(peer, cp, err.Error())
	} else if err != nil {
		return out, fault.E(op, fault.Invalid, "cannot cosign", err)
	}
	if last == nil || cp.Size > last.Size {
		if err := s.store.PutSetting(settingWitnessed+cp.Origin, witnessed{LogKey: req.LogKey, Note: req.Checkpoint}, store.AuditEntry{}); err != nil {
			return out, err
		}
	}
	out.Note = note
	return out, nil
}

func sizeOf(cp *audit.Checkpoint) uint64 {
	if cp == nil {
		return 0
	}
	return cp.Size
}

// refuseCosign logs and audits a checkpoint this witness will not cosign:
// a fork, a rewrite, a log that shrank, or a changed key.
func (s *Server) refuseCosign(peer string, cp audit.Checkpoint, why string) error {
	reason := fmt.Sprintf("refused to cosign %s's checkpoint of %s at size %d: %s", peer, cp.Origin, cp.Size, why)
	s.log.Error("witness: checkpoint refused", zap.String("peer", peer), zap.String("reason", reason))
	if err := s.store.Record(store.AuditEntry{Actor: peer, Event: audit.Witness, Reason: reason}); err != nil {
		s.log.Error("cannot audit a witness refusal", zap.Error(err))
	}
	return fault.E("cosign", fault.Integrity, reason)
}

// cosignLoop asks the peer, as a witness, to cosign this switch's latest
// checkpoint, at once and then every checkpoint interval, while the link
// is up.
func (o *outbound) cosignLoop(ctx context.Context) {
	t := time.NewTicker(o.lk.l.s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		if err := o.requestCosignature(ctx); err != nil && ctx.Err() == nil {
			o.lk.log.Warn("checkpoint not cosigned by the peer", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (o *outbound) requestCosignature(ctx context.Context) error {
	s := o.lk.l.s
	cp, ok, err := s.store.LatestCheckpoint()
	if err != nil || !ok {
		return err
	}
	peer := o.lk.peer.Name
	var prev cosignedBy
	if _, err := s.store.Setting(settingCosigned+peer, &prev); err != nil {
		return err
	}
	if prev.Size == cp.Size && prev.Note != nil {
		return nil // cosigned already
	}
	old := prev.Size
	for range 2 { // once more after a conflict
		req := wire.CosignRequest{Checkpoint: cp.Note, LogKey: s.store.VerifierKey(), Old: old}
		if old > 0 && old < cp.Size {
			if req.Proof, err = s.store.ConsistencyProof(old, cp.Size); err != nil {
				return err
			}
		}
		var got wire.Cosigned
		if err := o.call(ctx, wire.TCosign, req, wire.TCosigned, &got); err != nil {
			return err
		}
		if got.Note == nil {
			old = got.Conflict
			continue
		}
		return s.store.PutSetting(settingCosigned+peer, cosignedBy{Key: got.WitnessKey, Size: cp.Size, Note: got.Note}, store.AuditEntry{})
	}
	return fault.Errorf("cosign", fault.Unavailable, "%s's last cosigned size for this log keeps changing", peer)
}

// call is one request and its answer on a stream of the link.
func (o *outbound) call(ctx context.Context, t wire.Type, req any, want wire.Type, reply any) error {
	str, err := o.conn.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer str.Close()
	str.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(str, t, req); err != nil {
		return err
	}
	return wire.ReadExpect(str, wire.DefaultMaxFrame, want, reply)
}

// cosignatures lists, for operators and auditors, the latest checkpoint of
// this switch's log each peer cosigned.
func (s *Server) cosignatures() []wire.Cosignature {
	if s.links == nil {
		return nil
	}
	var out []wire.Cosignature
	for _, lk := range s.links.order {
		var c cosignedBy
		if found, err := s.store.Setting(settingCosigned+lk.peer.Name, &c); err != nil || !found {
			continue
		}
		out = append(out, wire.Cosignature{Witness: lk.peer.Name, Key: c.Key, Size: c.Size, Note: c.Note})
	}
	return out
}

// witnessedCheckpoint is the checkpoint of at least size entries that the
// most witnesses cosigned (the larger on a tie), with every one of their
// cosignatures, for a proof bundle a verifier can hold to a witness
// policy; ok is false when none covers size.
func (s *Server) witnessedCheckpoint(size uint64) (store.SignedCheckpoint, bool) {
	bySize := map[uint64][][]byte{}
	for _, c := range s.cosignatures() {
		if c.Size >= size {
			bySize[c.Size] = append(bySize[c.Size], c.Note)
		}
	}
	best := uint64(0)
	for sz, notes := range bySize {
		if n := len(bySize[best]); len(notes) > n || (len(notes) == n && sz > best) {
			best = sz
		}
	}
	if best == 0 {
		return store.SignedCheckpoint{}, false
	}
	return store.SignedCheckpoint{Size: best, Note: mergeCosignatures(bySize[best])}, true
}

// mergeCosignatures joins notes of one checkpoint text, each cosigned by a
// witness, into one note with every signature line once.
func mergeCosignatures(notes [][]byte) []byte {
	text, sigs, _ := strings.Cut(string(notes[0]), "\n\n")
	lines := strings.SplitAfter(sigs, "\n")
	for _, n := range notes[1:] {
		_, more, _ := strings.Cut(string(n), "\n\n")
		for _, l := range strings.SplitAfter(more, "\n") {
			if l != "" && !slices.Contains(lines, l) {
				lines = append(lines, l)
			}
		}
	}
	return []byte(text + "\n\n" + strings.Join(lines, ""))
}
