package server

import (
	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
	"go.uber.org/zap"
)

// The audit log's requests. Who sees what is decided in policy.go; every
// refusal is a security event in the log itself.

// exportPage bounds one page of leaves, well inside a frame.
const exportPage = 160 << 10

// auditScanBudget bounds the entries one audit query reads: a query whose
// filters match little answers after that many with where to go on,
// instead of reading the whole log in one request.
const auditScanBudget = 20000

func (sess *session) handleAuditQuery(str *quic.Stream, payload []byte) {
	var q wire.AuditQuery
	if err := wire.Decode(wire.TAuditQuery, payload, &q); err != nil {
		sess.replyError(str, err)
		return
	}
	if q.Event != "" && !audit.ValidEvent(q.Event) {
		sess.replyError(str, fault.Errorf("audit", fault.Invalid, "unknown audit event %q", q.Event))
		return
	}
	q, redact, err := auditQueryScope(sess.id, q, func() bool { return sess.party(q.ID) })
	if err != nil {
		sess.deny(str, err)
		return
	}
	// No more than a frame holds (entries are at least ~160 bytes encoded):
	// reading more would only be thrown away; the client asks for the rest.
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, store.MaxQueryLimit, exportPage/160)
	if !sess.s.auditReads.take(sess.s.cfg.RequestTimeout) {
		sess.replyError(str, fault.E("audit", fault.Unavailable, "the switch is answering as many audit queries as it may at once; retry"))
		return
	}
	entries, resume, err := sess.s.store.QueryAuditPage(store.AuditQuery{ID: q.ID, Agency: q.Agency, Event: q.Event,
		Precedence: q.Precedence, Classification: q.Classification, Since: q.Since, Until: q.Until,
		From: q.From, To: q.To, Newest: q.Newest, Limit: q.Limit, Scan: auditScanBudget})
	sess.s.auditReads.give()
	if err != nil {
		sess.log.Error("audit query failed", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	more := len(entries) == q.Limit || resume != 0
	size := 0
	for i := range entries {
		e := &entries[i]
		if redact {
			redactEntry(e)
		}
		// A generous bound on the entry's encoded size: the page must fit
		// in one frame; the client asks again for the rest.
		size += 96 + len(e.Actor) + len(e.Event) + len(e.From) + len(e.To) + len(e.Reason)
		if size > exportPage {
			n := max(i, 1)
			if n < len(entries) {
				resume = 0 // cut for the frame's size: the client goes on from the last entry
			}
			entries, more = entries[:n], true
			break
		}
	}
	wire.WriteFrame(str, wire.TAuditEntries, wire.AuditEntries{Entries: entries, Redacted: redact, More: more, Resume: resume})
}

func (sess *session) handleAuditExport(str *quic.Stream, payload []byte) {
	var req wire.AuditExport
	if err := wire.Decode(wire.TAuditExport, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	var page wire.AuditLeaves
	bytes := 0
	err := sess.s.store.AuditLeaves(req.From, 4096, func(index uint64, leaf []byte) error {
		if bytes+len(leaf) > exportPage && len(page.Leaves) > 0 {
			return errPageFull
		}
		bytes += len(leaf) + 16
		page.Leaves = append(page.Leaves, wire.AuditLeaf{Index: index, Leaf: append([]byte(nil), leaf...)})
		return nil
	})
	if err != nil && err != errPageFull {
		sess.log.Error("audit export failed", zap.Error(err))
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TAuditLeaves, page)
}

var errPageFull = fault.E("audit", fault.Other, "page full")

func (sess *session) handleAuditCheckpoint(str *quic.Stream, payload []byte) {
	var req wire.AuditCheckpointRequest
	if err := wire.Decode(wire.TAuditCheckpoint, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if req.All {
		if err := mayListCheckpoints(sess.id); err != nil {
			sess.deny(str, err)
			return
		}
	}
	st := sess.s.store
	out := wire.AuditCheckpoints{VerifierKey: st.VerifierKey()}
	if !req.All {
		cp, err := sess.s.checkpointFor(sess.id, 0)
		if err != nil {
			sess.log.Error("cannot sign a checkpoint", zap.Error(err))
			sess.replyError(str, err)
			return
		}
		out.Notes = [][]byte{cp.Note}
		out.Cosigned = sess.s.cosignatures()
		if sess.s.links != nil {
			if k, err := sess.s.witnessKeys(); err == nil {
				out.WitnessKey = k.VKey
			}
		}
		wire.WriteFrame(str, wire.TAuditCheckpoints, out)
		return
	}
	bytes := 0
	err := st.Checkpoints(req.After, func(cp store.SignedCheckpoint) error {
		if bytes+len(cp.Note) > exportPage {
			return errPageFull
		}
		bytes += len(cp.Note) + 8
		out.Notes = append(out.Notes, cp.Note)
		return nil
	})
	if err != nil && err != errPageFull {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TAuditCheckpoints, out)
}

func (sess *session) handleAuditProof(str *quic.Stream, payload []byte) {
	var req wire.AuditProofRequest
	if err := wire.Decode(wire.TAuditProof, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	b, err := sess.s.store.Proof(req.ID, func(size uint64) (store.SignedCheckpoint, error) {
		// A checkpoint witnesses cosigned, if one covers the entries: the
		// bundle then carries their cosignatures.
		if cp, ok := sess.s.witnessedCheckpoint(size); ok {
			return cp, nil
		}
		return sess.s.checkpointFor(sess.id, size)
	})
	if err != nil {
		sess.replyError(str, err)
		return
	}
	if err := mayProve(sess.id, b); err != nil {
		sess.deny(str, err)
		return
	}
	wire.WriteFrame(str, wire.TAuditBundle, wire.AuditBundle{Bundle: b})
}

// party reports whether the session's agency sent telegram id or is one of
// its addressees.
func (sess *session) party(id telegram.ID) bool {
	h, err := sess.s.store.Header(id)
	if err != nil {
		return false
	}
	if h.From == sess.id.Agency {
		return true
	}
	for _, a := range h.Addressees() {
		if a == sess.id.Agency {
			return true
		}
	}
	return false
}

// handleAuditConsistency proves that one tree size is a prefix of a later
// one. The proof is only hashes; anyone who may read checkpoints may ask.
func (sess *session) handleAuditConsistency(str *quic.Stream, payload []byte) {
	var req wire.AuditConsistencyRequest
	if err := wire.Decode(wire.TAuditConsistency, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	if req.Size1 > req.Size2 {
		sess.replyError(str, fault.Errorf("audit", fault.Invalid, "consistency from size %d to the smaller size %d", req.Size1, req.Size2))
		return
	}
	hashes, err := sess.s.store.ConsistencyProof(req.Size1, req.Size2)
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TAuditProofHashes, wire.AuditProofHashes{Hashes: hashes})
}

// checkpointFor returns a checkpoint of at least size entries for who:
// the latest stored one if it covers them; otherwise one signed now, for
// an auditor always (auditors may force one), for others at most once per
// CheckpointInterval across the switch (signing is work on the FLASH lane
// and every checkpoint is checked by every verify). Asked for size 0, an
// auditor gets one of the whole log as it stands, others the latest.
func (s *Server) checkpointFor(who certs.Identity, size uint64) (store.SignedCheckpoint, error) {
	auditor := who.Role == certs.Auditor
	latest, ok, err := s.store.LatestCheckpoint()
	if err != nil {
		return latest, err
	}
	if ok && latest.Size >= size && !(auditor && size == 0) {
		return latest, nil
	}
	if !auditor && ok && !s.signing.Allow() {
		return latest, fault.Errorf("audit", fault.Unavailable,
			"the latest checkpoint covers %d entries, not yet these; the switch signs one every %s: retry then", latest.Size, s.cfg.CheckpointInterval)
	}
	return s.store.Checkpoint()
}
