package server

import (
	"errors"
	"io"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// The journal's requests (store/journal.go keeps settled telegrams for
// [journal] retention): retrieve gives a copy, never a delivery; resend
// queues a delivered telegram again, flagged possible duplicate.

func (sess *session) handleRetrieve(str *quic.Stream, payload []byte) {
	var req wire.RetrieveRequest
	if err := wire.Decode(wire.TRetrieve, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	st := sess.s.store
	h, states, err := st.Deliveries(req.ID)
	if fault.Is(fault.NotExist, err) {
		sess.replyError(str, fault.Errorf("retrieve", fault.NotExist, "no telegram %s in custody or in the journal", req.ID))
		return
	}
	if err != nil {
		sess.replyError(str, err)
		return
	}
	to, err := mayRetrieve(sess.id, h, states)
	if fault.Is(fault.Permission, err) {
		sess.deny(str, err)
		return
	}
	if err != nil {
		sess.replyError(str, err)
		return
	}
	body := st.Body(h)
	first, err := body.Next()
	if err != nil && !errors.Is(err, io.EOF) {
		sess.replyError(str, fault.E("retrieve", fault.NotExist, "the body of telegram "+h.ID.String()+" was not kept", err))
		return
	}
	if err := st.Record(store.AuditEntry{Actor: sess.id.String(), Event: store.AuditRetrieved, ID: h.ID, From: h.From, To: to,
		Precedence: h.Precedence, Classification: h.Classification}); err != nil {
		sess.replyError(str, err)
		return
	}
	if err := wire.WriteFrame(str, wire.TRetrieved, wire.Retrieved{Header: h}); err != nil {
		return
	}
	for chunk := first; chunk != nil; {
		if _, err := str.Write(chunk); err != nil {
			return
		}
		if chunk, err = body.Next(); err != nil {
			if !errors.Is(err, io.EOF) {
				str.CancelWrite(streamCut) // the copy is cut short, never passed off as whole
			}
			return
		}
	}
}

func (sess *session) handleResend(str *quic.Stream, payload []byte) {
	var req wire.ResendRequest
	if err := wire.Decode(wire.TResend, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	h, err := sess.s.store.Header(req.ID)
	if fault.Is(fault.NotExist, err) {
		sess.replyError(str, fault.Errorf("resend", fault.NotExist, "no telegram %s in custody or in the journal", req.ID))
		return
	}
	if err != nil {
		sess.replyError(str, err)
		return
	}
	if err := mayResend(sess.id, h); err != nil {
		sess.deny(str, err)
		return
	}
	res, err := sess.s.store.Resend(req.ID, req.To, sess.id.String(), req.Reason)
	if err != nil {
		sess.replyError(str, err)
		return
	}
	wire.WriteFrame(str, wire.TResent, wire.Resent{Resent: res.Done, Skipped: res.Skipped})
}

// handleJournal lists an agency's telegrams through the audit log's
// index: a filing it made, or a queueing (or deferral) to it, names a
// telegram; each is then looked up in custody and the journal. It takes
// the audit query slot and scan budget, like any audit query.
func (sess *session) handleJournal(str *quic.Stream, payload []byte) {
	var req wire.JournalQuery
	if err := wire.Decode(wire.TJournal, payload, &req); err != nil {
		sess.replyError(str, err)
		return
	}
	req, err := journalScope(sess.id, req)
	if err != nil {
		sess.deny(str, err)
		return
	}
	if req.Limit <= 0 {
		req.Limit = 50
	}
	req.Limit = min(req.Limit, 1000)
	q := store.AuditQuery{Agency: req.Agency, Since: req.Since, Until: req.Until, To: req.Before, Newest: true,
		Limit: store.MaxQueryLimit, Scan: auditScanBudget}
	if req.Agency == "" {
		q.Event = store.AuditFiled
	}
	if !sess.s.auditReads.take(sess.s.cfg.RequestTimeout) {
		sess.replyError(str, fault.E("journal", fault.Unavailable, "the switch is answering as many audit queries as it may at once; retry"))
		return
	}
	entries, resume, err := sess.s.store.QueryAuditPage(q)
	sess.s.auditReads.give()
	if err != nil {
		sess.replyError(str, err)
		return
	}
	var page wire.JournalPage
	seen := map[telegram.ID]bool{}
	for i, e := range entries {
		names := e.Event == store.AuditFiled && (req.Agency == "" || e.From == req.Agency) ||
			(e.Event == store.AuditQueued || e.Event == store.AuditDeferred) && e.To == req.Agency
		if !names || seen[e.ID] {
			continue
		}
		if len(page.Rows)+page.Withheld == req.Limit {
			resume = entries[i-1].Index // go on below the last entry read
			break
		}
		seen[e.ID] = true
		if e.Classification > sess.id.Clearance && sess.id.Role == certs.Operator {
			page.Withheld++
			continue
		}
		page.Rows = append(page.Rows, sess.journalRow(e))
	}
	if resume == 0 && len(entries) == store.MaxQueryLimit {
		resume = entries[len(entries)-1].Index
	}
	page.Resume = resume
	wire.WriteFrame(str, wire.TJournaled, page)
}

// journalRow describes the telegram an audit entry names, from custody or
// the journal, or from the entry alone once purged.
func (sess *session) journalRow(e store.AuditEntry) wire.JournalRow {
	row := wire.JournalRow{ID: e.ID, FiledAt: e.ID.Time(), From: e.From, Precedence: e.Precedence,
		Classification: e.Classification, State: "purged"}
	h, states, err := sess.s.store.Deliveries(e.ID)
	if err != nil {
		return row
	}
	row.FiledAt, row.To, row.BodyLen, row.State = h.FiledAt, h.Addressees(), h.BodyLen, "in_custody"
	if store.Settled(states) {
		row.State = "settled"
	}
	return row
}
