package wire

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dienbao/dienbao/switch/fault"
)

// Version is the frame format version this package speaks.
const Version = 1

// ALPN is the TLS application protocol.
const ALPN = "dienbao/1"

// KeyExchanges are the only TLS key exchanges either end accepts: the
// hybrid post-quantum X25519MLKEM768, so that traffic recorded today cannot
// be decrypted later with a quantum computer.
var KeyExchanges = []tls.CurveID{tls.X25519MLKEM768}

// DefaultMaxFrame bounds a frame (header + CBOR). Bodies travel outside
// frames, so this only has to hold headers and batches of them.
const DefaultMaxFrame = 256 << 10

// Type is a frame type.
type Type uint8

// Frame types. Append only.
const (
	TError      Type = 1
	TFile       Type = 2  // client → switch: FileRequest, then the bodies
	TFileReply  Type = 3  // switch → client: FileReply
	TSubscribe  Type = 4  // client → switch: Subscribe
	TSubscribed Type = 5  // switch → client: Subscribed
	TDrained    Type = 6  // switch → client on the subscribe stream: nothing left for now
	TDeliver    Type = 7  // switch → client: Deliver, then the body
	TReceipt    Type = 8  // switch → client: ReceiptFrame
	TAck        Type = 9  // client → switch: Ack
	TRotateKeys Type = 10 // operator → switch: RotateKeys
	TKeys       Type = 11 // switch → operator: Keys

	TAuditQuery       Type = 12 // → AuditQuery
	TAuditEntries     Type = 13 // ← AuditEntries
	TAuditExport      Type = 14 // auditor → AuditExport
	TAuditLeaves      Type = 15 // ← AuditLeaves
	TAuditCheckpoint  Type = 16 // → AuditCheckpointRequest
	TAuditCheckpoints Type = 17 // ← AuditCheckpoints
	TAuditProof       Type = 18 // → AuditProofRequest
	TAuditBundle      Type = 19 // ← AuditBundle
	TAuditConsistency Type = 20 // → AuditConsistencyRequest
	TAuditProofHashes Type = 21 // ← AuditProofHashes

	TQueues      Type = 22 // operator → QueuesRequest
	TQueuesReply Type = 23 // ← Queues
	TSessions    Type = 24 // operator → SessionsRequest
	TSessionList Type = 25 // ← Sessions
	TShow        Type = 26 // operator → ShowRequest
	TShowReply   Type = 27 // ← Show
	TOperate     Type = 28 // operator → Operate
	TOperated    Type = 29 // ← Operated
	TClock       Type = 30 // operator → ClockRequest
	TClockReply  Type = 31 // ← Clock

	TRetrieve  Type = 32 // terminal or auditor → RetrieveRequest
	TRetrieved Type = 33 // ← Retrieved, then the body
	TResend    Type = 34 // sender's terminal or operator → ResendRequest
	TResent    Type = 35 // ← Resent
	TJournal   Type = 36 // terminal, operator or auditor → JournalQuery
	TJournaled Type = 37 // ← JournalPage

	TAuditArchive  Type = 38 // auditor → AuditArchiveRequest
	TAuditArchived Type = 39 // ← AuditArchived

	TMinimize  Type = 40 // operator (declare, lift, list) or terminal (list) → MinimizeRequest
	TMinimized Type = 41 // ← Minimizes

	TLinkOpen    Type = 42 // peer switch → LinkOpen
	TLinkOpened  Type = 43 // ← LinkOpened
	TRelay       Type = 44 // peer switch → RelayRequest, then the bodies
	TRelayReply  Type = 45 // ← RelayReply
	TLinks       Type = 46 // operator → LinksRequest
	TLinksReply  Type = 47 // ← Links
	TLinkOperate Type = 48 // operator → LinkOperate (hold or release a link)
	TCosign      Type = 49 // peer switch → CosignRequest
	TCosigned    Type = 50 // ← Cosigned
	TGroup       Type = 51 // terminal, operator or auditor → GroupRequest (a replicated switch)
	TGroupReply  Type = 52 // ← GroupStatus
	TAgencyKeys  Type = 53 // terminal, operator or auditor → AgencyKeysRequest
	TAgencyKeyed Type = 54 // ← AgencyKeys
	TReject      Type = 55 // terminal, on a delivery stream: Reject (a delivery that failed verification)
	TList        Type = 56 // operator → ListRequest
	TListed      Type = 57 // ← List
	TMoveQueue   Type = 58 // operator → MoveQueue
	TMovedQueue  Type = 59 // ← MovedQueue
	TNotice      Type = 60 // operator → NoticeRequest
	TNotices     Type = 61 // ← Notices
)

var typeNames = map[Type]string{TError: "error", TFile: "file", TFileReply: "file_reply", TSubscribe: "subscribe",
	TSubscribed: "subscribed", TDrained: "drained", TDeliver: "deliver", TReceipt: "receipt", TAck: "ack",
	TRotateKeys: "rotate_keys", TKeys: "keys", TAuditQuery: "audit_query", TAuditEntries: "audit_entries",
	TAuditExport: "audit_export", TAuditLeaves: "audit_leaves", TAuditCheckpoint: "audit_checkpoint",
	TAuditCheckpoints: "audit_checkpoints", TAuditProof: "audit_proof", TAuditBundle: "audit_bundle",
	TAuditConsistency: "audit_consistency", TAuditProofHashes: "audit_proof_hashes",
	TQueues: "queues", TQueuesReply: "queues_reply", TSessions: "sessions", TSessionList: "session_list",
	TShow: "show", TShowReply: "show_reply", TOperate: "operate", TOperated: "operated",
	TClock: "clock", TClockReply: "clock_reply", TRetrieve: "retrieve", TRetrieved: "retrieved",
	TResend: "resend", TResent: "resent", TJournal: "journal", TJournaled: "journal_page",
	TAuditArchive: "audit_archive", TAuditArchived: "audit_archived", TMinimize: "minimize", TMinimized: "minimized",
	TLinkOpen: "link_open", TLinkOpened: "link_opened", TRelay: "relay", TRelayReply: "relay_reply",
	TLinks: "links", TLinksReply: "links_reply", TLinkOperate: "link_operate", TCosign: "cosign", TCosigned: "cosigned",
	TGroup: "group", TGroupReply: "group_reply", TAgencyKeys: "agency_keys", TAgencyKeyed: "agency_keyed", TReject: "reject",
	TList: "list", TListed: "listed", TMoveQueue: "move_queue", TMovedQueue: "moved_queue",
	TNotice: "notice", TNotices: "notices"}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// ErrFrameTooLarge is returned when a frame's declared length exceeds the limit.
var ErrFrameTooLarge = fault.E("wire", fault.TooLarge, "frame exceeds the maximum frame size")

// WriteFrame encodes v and writes it as one frame.
func WriteFrame(w io.Writer, t Type, v any) error {
	payload, err := encMode.Marshal(v)
	if err != nil {
		return fault.E("wire.write", fault.Internal, "encode "+t.String(), err)
	}
	buf := make([]byte, 6, 6+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(2+len(payload)))
	buf[4], buf[5] = Version, byte(t)
	_, err = w.Write(append(buf, payload...))
	return err
}

// ReadFrame reads one frame's header and payload, refusing a declared length
// above max before reading it. io.EOF is returned only for a clean end
// before a frame starts.
func ReadFrame(r io.Reader, max int) (Type, []byte, error) {
	var hdr [6]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fault.E("wire.read", fault.Invalid, "truncated frame header")
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n < 2 {
		return 0, nil, fault.E("wire.read", fault.Invalid, "frame shorter than its header")
	}
	if int64(n) > int64(max) {
		return 0, nil, ErrFrameTooLarge
	}
	if _, err := io.ReadFull(r, hdr[4:6]); err != nil {
		return 0, nil, fault.E("wire.read", fault.Invalid, "truncated frame header", err)
	}
	if hdr[4] != Version {
		return 0, nil, fault.Errorf("wire.read", fault.Invalid, "unsupported frame version %d (this side speaks %d)", hdr[4], Version)
	}
	payload := make([]byte, n-2)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fault.E("wire.read", fault.Invalid, "truncated frame", err)
	}
	return Type(hdr[5]), payload, nil
}

// Audit reports whether t is an audit log request or reply.
func (t Type) Audit() bool { return t >= TAuditQuery && t <= TAuditProofHashes }

// Decode decodes a frame payload into v with the protocol's limits.
func Decode(t Type, payload []byte, v any) error {
	if err := decMode.Unmarshal(payload, v); err != nil {
		return fault.E("wire.decode", fault.Invalid, "malformed "+t.String()+" frame", err)
	}
	if m, ok := v.(validator); ok {
		if err := m.Validate(); err != nil {
			return fault.E("wire.decode", fault.Invalid, "invalid "+t.String()+" request: "+err.Error())
		}
	}
	return nil
}

// ReadExpect reads one frame and decodes it into v, which must be of type
// want. An Error frame is returned as a *fault.Error.
func ReadExpect(r io.Reader, max int, want Type, v any) error {
	t, payload, err := ReadFrame(r, max)
	if err != nil {
		return err
	}
	if t == TError {
		var e Error
		if err := Decode(t, payload, &e); err != nil {
			return err
		}
		return e.Fault()
	}
	if t != want {
		return fault.Errorf("wire.read", fault.Invalid, "expected a %s frame, got %s", want, t)
	}
	return Decode(t, payload, v)
}
