package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// FuzzFrame feeds arbitrary bytes to the frame reader and every request
// and delivery decoder: none may panic, allocate past the frame limit, or
// accept a frame longer than the limit.
func FuzzFrame(f *testing.F) {
	for _, seed := range seeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 4096
		typ, payload, err := ReadFrame(bytes.NewReader(data), max)
		if err != nil {
			return
		}
		if len(payload)+2 > max {
			t.Fatalf("accepted a %d-byte frame over the %d limit", len(payload)+2, max)
		}
		targets := []any{&FileRequest{}, &FileReply{}, &Subscribe{}, &Subscribed{}, &Drained{}, &Deliver{}, &ReceiptFrame{}, &Ack{}, &Error{},
			&RotateKeys{}, &Keys{}, &AuditQuery{}, &AuditEntries{}, &AuditExport{}, &AuditLeaves{}, &AuditCheckpointRequest{},
			&AuditCheckpoints{}, &AuditProofRequest{}, &AuditBundle{}, &AuditConsistencyRequest{}, &AuditProofHashes{},
			&QueuesRequest{}, &Queues{}, &SessionsRequest{}, &Sessions{}, &ShowRequest{}, &Show{}, &Operate{}, &Operated{},
			&AgencyKeysRequest{}, &AgencyKeys{}, &Reject{}}
		for _, v := range targets {
			_ = Decode(typ, payload, v)
		}
	})
}

func seeds() [][]byte {
	var out [][]byte
	add := func(typ Type, v any) {
		var b bytes.Buffer
		WriteFrame(&b, typ, v)
		out = append(out, b.Bytes())
	}
	add(TFile, FileRequest{Filings: []Filing{{To: nil, Precedence: 4, Classification: 1, BodyLen: 3}}})
	add(TAck, Ack{Tag: 7})
	add(TSubscribe, Subscribe{Inbox: true})
	add(TDeliver, Deliver{Tag: 1})
	add(TReceipt, ReceiptFrame{Tag: 2})
	add(TError, Error{Kind: 1, Msg: "x"})
	add(TAuditQuery, AuditQuery{Agency: "NA.TU", Event: "delivered", Newest: true, Limit: 10})
	add(TAuditExport, AuditExport{From: 5})
	add(TAuditCheckpoint, AuditCheckpointRequest{All: true, After: 3})
	add(TAuditProof, AuditProofRequest{})
	add(TAuditConsistency, AuditConsistencyRequest{Size1: 1, Size2: 9})
	add(TQueues, QueuesRequest{Overdue: 5})
	add(TShow, ShowRequest{})
	add(TOperate, Operate{Action: ActCancel, Reason: "gửi nhầm"})
	add(TRotateKeys, RotateKeys{})
	add(TClock, ClockRequest{Confirm: true})
	add(TAgencyKeys, AgencyKeysRequest{Agencies: []telegram.Address{"NA.TU"}})
	add(TReject, Reject{Tag: 3, Reason: "signature", Detail: "altered"})
	add(TList, ListRequest{Agency: "NA.TU", State: "overdue", Newest: true, Limit: 10})
	add(TMoveQueue, MoveQueue{From: "NA.VINH.UBND", To: "NA.UBND"})
	add(TNotice, NoticeRequest{Post: &Notice{Affects: "NA", Until: time.Unix(1e9, 0).UTC(), Text: "mất điện"}})
	return out
}
