package store

import (
	"encoding/binary"
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
	pAudit     = 'a'
	pExpiry    = 'x' // x<unix ns:8><id:16>: latest delivery time
	pOverdue   = 'o' // o<unix ns:8><id:16>: speed-of-service deadline
	pParked    = 'p' // p<agency>\0<seq:8> → id: parked for an operator
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

func deliveryKey(id telegram.ID, a telegram.Address) []byte {
	return append(idKey(pDelivery, id), a...)
}

func agencyKey(p byte, a telegram.Address) []byte {
	k := make([]byte, 0, len(a)+16)
	k = append(k, p)
	k = append(k, a...)
	return append(k, 0)
}

// subQueue names one (agency, precedence, classification) sub-queue.
type SubQueue struct {
	Agency telegram.Address
	Prec   telegram.Precedence
	Class  telegram.Classification
}

func (q SubQueue) prefix() []byte {
	return append(agencyKey(pQueue, q.Agency), byte(q.Prec.Rank()), byte(q.Class))
}

func (q SubQueue) key(seq uint64) []byte { return binary.BigEndian.AppendUint64(q.prefix(), seq) }

func (q SubQueue) headKey() []byte {
	return append(agencyKey(pQueueHead, q.Agency), byte(q.Prec.Rank()), byte(q.Class))
}

func receiptKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(agencyKey(pReceipt, a), seq)
}

func receiptHeadKey(a telegram.Address) []byte { return agencyKey(pRcptHead, a) }

func refKey(a telegram.Address, ref string) []byte { return append(agencyKey(pRef, a), ref...) }

func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte{pAudit}, seq) }

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

func parkedKey(a telegram.Address, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(agencyKey(pParked, a), seq)
}
