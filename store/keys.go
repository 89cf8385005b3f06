package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

const (
	pMeta      = 'm'
	pHeader    = 'h'
	pBody      = 'b'
	pDelivery  = 'd'
	pQueue     = 'q'
	pQueueHead = 'Q'
	pReceipt   = 'r'
	pRcptHead  = 'R'
	pRef       = 'i'
	// The audit log's records (store/auditlog): a<index:8> → leaf;
	// A<id:16><index:8> and Y<agency tag:16><index:8>, its indexes (empty);
	// n<level:1><group:8> → tree hashes; c<size:8> → signed checkpoint.
	pAudit      = 'a'
	pCounts     = 'D' // D<agency tag><rank:1><class:1> → a sub-queue's Counts
	pHeld       = 'w' // w<agency tag><seq:8> → id: held by an operator
	pAgencyHeld = 'W' // W<agency tag>: the agency's deliveries are held
	pExpiry     = 'x' // x<unix ns:8><id:16>: latest delivery time
	pOverdue    = 'o' // o<unix ns:8><id:16>: speed-of-service deadline
	pParked     = 'p' // p<agency tag:16><seq:8> → id: parked for an operator
	pReceiving  = 'U' // U<agency tag>: a terminal of the agency has received telegrams (handout.go)
	pDeferred   = 'v' // v<agency tag:16><seq:8> → id: deferred until its delivery time
	pDeferral   = 'e' // e<unix ns:8><id:16>: delivery time of a deferred telegram
)

// ChunkSize is the size of one stored body chunk.
const ChunkSize = 64 << 10

func metaKey(name string) []byte { return append([]byte{pMeta}, name...) }

func idKey(p byte, id telegram.ID) []byte {
	k := make([]byte, 17, 32)
	k[0] = p
	copy(k[1:], id[:])
	return k
}

func headerKey(id telegram.ID) []byte { return idKey(pHeader, id) }

func bodyKey(id telegram.ID, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(idKey(pBody, id), chunk)
}

// keyspace builds the storage keys that involve an agency or a sender
// reference. Those never carry plaintext: an agency address becomes a
// 16-byte tag, HMAC-SHA256 under the keyring's index key, and a reference
// likewise. Without a keyring (tests, the plaintext benchmark) the tag is
// an unkeyed SHA-256, so the layout is the same.
type keyspace struct {
	indexKey []byte
	agencies *sync.Map // address → tag: a network has few agencies
}

func (ks keyspace) agencyTag(a telegram.Address) []byte {
	if t, ok := ks.agencies.Load(a); ok {
		return t.([]byte)
	}
	t := ks.tag("agency", string(a))
	ks.agencies.Store(a, t)
	return t
}

func (ks keyspace) tag(kind string, v string) []byte {
	var sum []byte
	if ks.indexKey == nil {
		h := sha256.Sum256([]byte(kind + "\x00" + v))
		sum = h[:]
	} else {
		m := hmac.New(sha256.New, ks.indexKey)
		m.Write([]byte(kind + "\x00" + v))
		sum = m.Sum(nil)
	}
	return sum[:tagLen]
}

// tagLen is the length of an opaque tag: 128 bits, no collision among the
// agencies and references of any network.
const tagLen = 16

func (ks keyspace) agencyKey(p byte, a telegram.Address) []byte {
	k := make([]byte, 0, 1+tagLen+16)
	k = append(k, p)
	return append(k, ks.agencyTag(a)...)
}

func (ks keyspace) deliveryKey(id telegram.ID, a telegram.Address) []byte {
	return append(idKey(pDelivery, id), ks.agencyTag(a)...)
}

// SubQueue names one (agency, precedence, classification) sub-queue.
type SubQueue struct {
	Agency telegram.Address
	Prec   telegram.Precedence
	Class  telegram.Classification
}

func (ks keyspace) queuePrefix(q SubQueue) []byte {
	return append(ks.agencyKey(pQueue, q.Agency), byte(q.Prec.Rank()), byte(q.Class))
}

func (ks keyspace) queueKey(q SubQueue, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.queuePrefix(q), seq)
}

func (ks keyspace) queueHeadKey(q SubQueue) []byte {
	return append(ks.agencyKey(pQueueHead, q.Agency), byte(q.Prec.Rank()), byte(q.Class))
}

func (ks keyspace) receiptKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(ks.agencyKey(pReceipt, a), seq)
}

func (ks keyspace) receiptHeadKey(a telegram.Address) []byte { return ks.agencyKey(pRcptHead, a) }

func (ks keyspace) refKey(a telegram.Address, ref string) []byte {
	return append(ks.agencyKey(pRef, a), ks.tag("ref/"+string(a), ref)...)
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

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func dueKey(p byte, at time.Time, id telegram.ID) []byte {
	k := binary.BigEndian.AppendUint64([]byte{p}, uint64(at.UnixNano()))
	return append(k, id[:]...)
}
