package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

// Key prefixes of the current format (3). doc.go lays them out.
const (
	pMeta      = 'm'
	pNumber    = 'N' // N<telegram tag> → the telegram's filing number
	pHeader    = 't' // t<number:8> → header
	pBody      = 'u' // u<number:8><chunk:4> → body chunk
	pDelivery  = 's' // s<number:8><addressee tag:8> → one addressee's delivery state
	pQueue     = 'k' // k<sub-queue tag><seq:8> → telegram ID
	pQueueHead = 'K' // K<sub-queue tag> → the sub-queue's head
	pCounts    = 'F' // F<sub-queue tag> → a sub-queue's Counts
	pExpiry    = 'X' // X<unix ns:8><timer tag> → telegram ID: latest delivery time
	pOverdue   = 'O' // O<unix ns:8><timer tag> → telegram ID: speed-of-service deadline
	pDeferral  = 'T' // T<unix ns:8><timer tag> → telegram ID: delivery time of a deferred telegram
	pPurge     = 'P' // P<unix ns:8><timer tag> → telegram ID: end of a settled telegram's retention (journal.go)
	pReceipt   = 'r'
	pRcptHead  = 'R'
	pRef       = 'i'
	// The audit log's records (store/auditlog): a<index:8> → leaf;
	// I<telegram tag><index:8> and Y<agency tag:16><index:8>, its indexes
	// (empty); n<level:1><group:8> → tree hashes; c<size:8> → signed
	// checkpoint.
	pAudit      = 'a'
	pAuditByID  = 'I' // store/auditlog's pByID
	pHeld       = 'w' // w<agency tag><seq:8> → id: held by an operator
	pAgencyHeld = 'W' // W<agency tag>: the agency's deliveries are held
	pParked     = 'p' // p<agency tag:16><seq:8> → id: parked for an operator
	pReceiving  = 'U' // U<agency tag>: a terminal of the agency has received telegrams (handout.go)
	pDeferred   = 'v' // v<agency tag:16><seq:8> → id: deferred until its delivery time
	pLink       = 'L' // L<link tag> → the last sequence number committed from a peer switch on one channel of its link (relay.go)
	pLinkOut    = 'M' // M<link tag> → the last sequence number this switch's hand-overs to a peer carried on one channel, acknowledged
	pRemote     = 'G' // G<agency tag> → an agency served by another switch that has had telegrams or reports in this one's custody (remote.go)
	pListed     = 'l' // l<agency tag> → an agency this switch's directory has listed (agencies.go)
)

// ChunkSize is the size of one stored body chunk.
const ChunkSize = 64 << 10

func metaKey(name string) []byte { return append([]byte{pMeta}, name...) }

// keyspace builds the storage keys. None carries plaintext, nor anything
// that says when a telegram was filed, how urgent or how classified it is,
// or to whom it goes: an agency address becomes a 16-byte tag, HMAC-SHA256
// under the keyring's index key, and so do a sender reference, a
// telegram's ID (one tag for its filing number and audit index, others for
// its timers) and a sub-queue (agency tag, precedence, classification). A
// telegram's own records (header, body, delivery states) are keyed by its
// filing number: a count kept by the store, so that they are written in
// key order, as the LSM tree likes, while the keys show the order of
// filings (as queue sequences do) but not their times. Without a keyring
// (tests, the plaintext benchmark) a tag is an unkeyed SHA-256, so the
// layout is the same.
type keyspace struct {
	indexKey []byte
	agencies *sync.Map  // address → tag: a network has few agencies
	subs     *sync.Map  // SubQueue → tag
	macs     *sync.Pool // of HMAC-SHA256 under indexKey
}

func newKeyspace(indexKey []byte) keyspace {
	ks := keyspace{indexKey: indexKey, agencies: &sync.Map{}, subs: &sync.Map{}}
	ks.macs = &sync.Pool{New: func() any {
		if indexKey == nil {
			return sha256.New()
		}
		return hmac.New(sha256.New, indexKey)
	}}
	return ks
}

func (ks keyspace) agencyTag(a telegram.Address) []byte {
	if t, ok := ks.agencies.Load(a); ok {
		return t.([]byte)
	}
	t := ks.tag("agency", []byte(a))
	ks.agencies.Store(a, t)
	return t
}

// tag is the 16-byte tag of (kind, parts). kind never holds a zero byte,
// so tags of different kinds never meet.
func (ks keyspace) tag(kind string, parts ...[]byte) []byte {
	m := ks.macs.Get().(hash.Hash)
	m.Reset()
	m.Write([]byte(kind))
	m.Write([]byte{0})
	for _, p := range parts {
		m.Write(p)
	}
	var sum [sha256.Size]byte
	out := m.Sum(sum[:0])
	ks.macs.Put(m)
	return out[:tagLen:tagLen]
}

// tagLen is the length of an opaque tag: 128 bits, no collision among the
// agencies, references, telegrams and sub-queues of any network.
const tagLen = 16

func tagged(p byte, tag []byte, extra int) []byte {
	k := make([]byte, 0, 1+len(tag)+extra)
	return append(append(k, p), tag...)
}

// linkKey keeps a sequence number of channel ch of the link with peer
// switch peer (p: pLink for what came in, pLinkOut for what went out): a
// tag, so that the disk does not name the network's switches.
func (ks keyspace) linkKey(p byte, peer string, ch int) []byte {
	return tagged(p, ks.tag("link", []byte(peer), []byte{byte(ch)}), 0)
}

func (ks keyspace) agencyKey(p byte, a telegram.Address) []byte {
	return tagged(p, ks.agencyTag(a), 8)
}

// telegramTag is the tag of a telegram's filing number and audit index.
func (ks keyspace) telegramTag(id telegram.ID) []byte { return ks.tag("telegram", id[:]) }

// numberKey is the key of telegram id's filing number.
func (ks keyspace) numberKey(id telegram.ID) []byte { return tagged(pNumber, ks.telegramTag(id), 0) }

// auditBatchTag names one index record of a telegram's audit entries
// (store/auditlog's index.go): 8 bytes, so its key shows no index.
func (ks keyspace) auditBatchTag(id telegram.ID, first uint64) []byte {
	return ks.tag("audit batch", id[:], binary.BigEndian.AppendUint64(nil, first))[:8]
}

func numbered(p byte, num uint64, extra int) []byte {
	return binary.BigEndian.AppendUint64(append(make([]byte, 0, 9+extra), p), num)
}

func headerKey(num uint64) []byte { return numbered(pHeader, num, 0) }

func bodyKey(num uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(numbered(pBody, num, 4), chunk)
}

// deliveryKey is keyed by the telegram's number and a tag of its ID and
// the addressee's tag (not its address), which joins no agency's records
// and lets a store of format 1 be migrated from its keys alone
// (format.go).
func (ks keyspace) deliveryKey(num uint64, id telegram.ID, a telegram.Address) []byte {
	return ks.deliveryKeyOf(num, id[:], ks.agencyTag(a))
}

func (ks keyspace) deliveryKeyOf(num uint64, id, agencyTag []byte) []byte {
	return append(numbered(pDelivery, num, 8), ks.tag("delivery", id, agencyTag)[:8]...)
}

// SubQueue names one (agency, precedence, classification) sub-queue.
type SubQueue struct {
	Agency telegram.Address
	Prec   telegram.Precedence
	Class  telegram.Classification
}

func (ks keyspace) subTag(q SubQueue) []byte {
	if t, ok := ks.subs.Load(q); ok {
		return t.([]byte)
	}
	t := ks.subTagOf(ks.agencyTag(q.Agency), byte(q.Prec.Rank()), byte(q.Class))
	ks.subs.Store(q, t)
	return t
}

func (ks keyspace) subTagOf(agencyTag []byte, rank, class byte) []byte {
	return ks.tag("queue", agencyTag, []byte{rank, class})
}

func (ks keyspace) queuePrefix(q SubQueue) []byte { return tagged(pQueue, ks.subTag(q), 8) }

func (ks keyspace) queueKey(q SubQueue, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.queuePrefix(q), seq)
}

func (ks keyspace) queueHeadKey(q SubQueue) []byte { return tagged(pQueueHead, ks.subTag(q), 0) }

func (ks keyspace) countsKey(q SubQueue) []byte { return tagged(pCounts, ks.subTag(q), 0) }

func (ks keyspace) receiptKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pReceipt, a), seq)
}

func (ks keyspace) receiptHeadKey(a telegram.Address) []byte { return ks.agencyKey(pRcptHead, a) }

func (ks keyspace) refKey(a telegram.Address, ref string) []byte {
	return append(ks.agencyKey(pRef, a), ks.tag("ref/"+string(a), []byte(ref))...)
}

func (ks keyspace) parkedKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pParked, a), seq)
}

func (ks keyspace) deferredKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pDeferred, a), seq)
}

func (ks keyspace) heldKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pHeld, a), seq)
}

// dueKey is a timer: kind (pExpiry, pOverdue, pDeferral), the time, and a
// tag of the telegram of that kind, so that the timer sorts by time and
// joins no other record. Its value is the telegram's ID, sealed.
func (ks keyspace) dueKey(kind byte, at time.Time, id telegram.ID) []byte {
	return ks.timerKey(kind, uint64(at.UnixNano()), id)
}

func (ks keyspace) timerKey(kind byte, ns uint64, id telegram.ID) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 1, 1+8+tagLen), ns)
	k[0] = kind
	return append(k, ks.tag("timer", []byte{kind}, id[:])...)
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
