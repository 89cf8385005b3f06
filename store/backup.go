package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/fault"
	"golang.org/x/time/rate"
)

// Backups. A backup is one stream, read from one Badger read snapshot:
// every record the store holds at one commit, the keyring that opens them
// (its keys wrapped, as on disk: the backup is useless without the
// key-encryption key), the latest signed checkpoint and the audit archive
// files the snapshot names. Badger's own Backup cannot serve: its stream
// reads each key range in a transaction of its own, so a commit made
// meanwhile can be half in it; this one reads everything in a single
// transaction, and copies the keyring with it while key retirement is
// held off (views), so that every key a record in it needs is in the copy.
//
// The stream: the line "dienbao backup 1", then frames of a tag byte and
// two length-prefixed fields (uvarint lengths):
//
//	M  the manifest (BackupInfo, JSON), first
//	K  keyring.json
//	C  the latest signed checkpoint (absent if none was signed)
//	A  an audit archive file: its name, its contents
//	R  a record: its key, its value (sealed, as stored)
//	E  the end: the record count (JSON), and SHA-256 of every byte before
//	   this frame
//
// A backup that is cut short, or altered, fails the end frame's check, and
// restore reads it through before writing anything.

const backupMagic = "dienbao backup 1\n"

// Backup frame tags.
const (
	FrameManifest   = 'M'
	FrameKeyring    = 'K'
	FrameCheckpoint = 'C'
	FrameArchive    = 'A'
	frameRecord     = 'R'
	frameEnd        = 'E'
)

// maxBackupField bounds one field of a backup frame (an archive file is
// the largest).
const maxBackupField = 1 << 30

// BackupInfo is a backup's manifest: when it was taken and where the
// store stood.
type BackupInfo struct {
	Format      int       `json:"format"`       // of the backup stream: 1
	StoreFormat uint64    `json:"store_format"` // the store's (FormatVersion)
	TakenAt     time.Time `json:"taken_at"`
	Origin      string    `json:"origin"`          // the audit log's
	AuditSize   uint64    `json:"audit_size"`      // entries in the audit log
	Checkpoint  uint64    `json:"checkpoint_size"` // the latest signed checkpoint's size (0: none)
	QueueSeq    uint64    `json:"queue_seq"`       // the last queue sequence number given
	Filings     uint64    `json:"filings"`         // telegrams ever filed
	Records     uint64    `json:"records"`         // records in the backup (set at the end)
	Bytes       int64     `json:"bytes"`           // the stream's length (set at the end)
}

type frameWriter struct {
	w   *bufio.Writer
	h   hash.Hash
	n   int64
	lim *rate.Limiter // nil: no limit
	err error
}

// backupBurst is the rate limiter's burst: the most written at once.
const backupBurst = 256 << 10

func (f *frameWriter) write(b []byte) {
	for len(b) > 0 && f.err == nil {
		k := min(len(b), backupBurst)
		if f.lim != nil {
			f.err = f.lim.WaitN(context.Background(), k)
		}
		if f.err == nil {
			f.h.Write(b[:k])
			var n int
			n, f.err = f.w.Write(b[:k])
			f.n += int64(n)
		}
		b = b[k:]
	}
}

// BackupOptions tune a backup.
type BackupOptions struct {
	// Rate bounds the stream in bytes per second (0: no bound), so that a
	// backup taken while the switch serves leaves it its pace: on a
	// machine of few cores the stream competes with filing for them.
	Rate int64
}

func (f *frameWriter) frame(tag byte, a, b []byte) {
	var hdr [1 + 2*binary.MaxVarintLen64]byte
	hdr[0] = tag
	n := 1 + binary.PutUvarint(hdr[1:], uint64(len(a)))
	f.write(hdr[:n])
	f.write(a)
	n = binary.PutUvarint(hdr[:], uint64(len(b)))
	f.write(hdr[:n])
	f.write(b)
}

// Backup writes a consistent backup of the store to w while it serves:
// one read snapshot, so commits go on meanwhile, at most opts.Rate bytes
// a second. keyring gives the keyring file's bytes. The archive files are
// read from ArchiveDir.
func (s *Store) Backup(w io.Writer, keyring func() ([]byte, error), opts BackupOptions) (BackupInfo, error) {
	const op = "store.backup"
	// The snapshot and the keyring copy are taken together, holding off
	// key retirement (which waits for views): every key a record in the
	// snapshot is sealed with is in the copy. Retirement may go on once
	// both are taken; it does not touch the copy.
	if err := s.holdViews(); err != nil {
		return BackupInfo{}, err
	}
	s.streams.Add(1) // Close waits for the stream, not key retirement
	defer s.streams.Done()
	txn := s.db.NewTransaction(false)
	ring, ringErr := keyring()
	s.views.RUnlock()
	defer txn.Discard()
	if ringErr != nil {
		return BackupInfo{}, fault.E(op, fault.Internal, "cannot read the keyring", ringErr)
	}
	info := BackupInfo{Format: 1, StoreFormat: FormatVersion, TakenAt: s.opts.Now().UTC(), Origin: s.opts.Origin}
	var err error
	counters := []*uint64{&info.AuditSize, &info.QueueSeq, &info.Filings}
	for i, name := range []string{"aseq", "qseq", "filings"} {
		if *counters[i], err = s.getU64(txn, metaKey(name)); err != nil {
			return info, fault.E(op, fault.Integrity, "cannot read the store's counters", err)
		}
	}
	cp, hasCP, err := auditlog.Latest(auditTxn{s, wtxn{Txn: txn}})
	if err != nil {
		return info, fault.E(op, fault.Integrity, "cannot read the latest checkpoint", err)
	}
	if hasCP {
		info.Checkpoint = cp.Size
	}
	var archives []string
	prefix := metaKey("archive/")
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	for it.Rewind(); it.Valid(); it.Next() {
		archives = append(archives, string(it.Item().Key()[len(prefix):]))
	}
	it.Close()
	manifest, _ := json.Marshal(info)
	fw := &frameWriter{w: bufio.NewWriterSize(w, 256<<10), h: sha256.New()}
	if opts.Rate > 0 {
		fw.lim = rate.NewLimiter(rate.Limit(opts.Rate), backupBurst)
	}
	fw.write([]byte(backupMagic))
	fw.frame(FrameManifest, manifest, nil)
	fw.frame(FrameKeyring, ring, nil)
	if hasCP {
		fw.frame(FrameCheckpoint, cp.Note, nil)
	}
	for _, name := range archives {
		b, err := os.ReadFile(filepath.Join(s.opts.ArchiveDir, name))
		if err != nil {
			return info, fault.E(op, fault.Integrity, "cannot read audit archive file "+name, err)
		}
		fw.frame(FrameArchive, []byte(name), b)
	}
	it = txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64})
	defer it.Close()
	for it.Rewind(); it.Valid() && fw.err == nil; it.Next() {
		item := it.Item()
		if bytes.Equal(item.Key(), cleanKey) {
			continue
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return info, fault.E(op, fault.Integrity, "cannot read a record", err)
		}
		fw.frame(frameRecord, item.Key(), v)
		info.Records++
	}
	end, _ := json.Marshal(struct {
		Records uint64 `json:"records"`
	}{info.Records})
	fw.frame(frameEnd, end, fw.h.Sum(nil))
	if fw.err == nil {
		fw.err = fw.w.Flush()
	}
	if fw.err != nil {
		return info, fault.E(op, fault.Unavailable, "cannot write the backup", fw.err)
	}
	info.Bytes = fw.n
	return info, nil
}

// ReadBackup reads a backup stream, calling fn with each frame before the
// end (records included), and checks the end frame: the record count and
// the checksum. It returns the manifest. Nothing fn saw can be trusted
// until ReadBackup returns without error; restore reads a backup through
// once to check it before it writes anything.
func ReadBackup(r io.Reader, fn func(tag byte, a, b []byte) error) (BackupInfo, error) {
	const op = "store.restore"
	var info BackupInfo
	hr := &hashReader{r: bufio.NewReaderSize(r, 256<<10), h: sha256.New()}
	magic := make([]byte, len(backupMagic))
	if _, err := io.ReadFull(hr, magic); err != nil || string(magic) != backupMagic {
		return info, fault.E(op, fault.Invalid, "not a dienbao backup (its first line is not \"dienbao backup 1\")")
	}
	field := func() ([]byte, error) {
		n, err := binary.ReadUvarint(hr)
		if err != nil {
			return nil, err
		}
		if n > maxBackupField {
			return nil, fmt.Errorf("a field of %d bytes", n)
		}
		b := make([]byte, n)
		_, err = io.ReadFull(hr, b)
		return b, err
	}
	var records uint64
	for first := true; ; first = false {
		sum := hr.h.Sum(nil) // of every byte before this frame
		tag, err := hr.ReadByte()
		if err != nil {
			return info, backupErr(io.ErrUnexpectedEOF)
		}
		a, err := field()
		var b []byte
		if err == nil {
			b, err = field()
		}
		if err != nil {
			return info, backupErr(err)
		}
		switch {
		case first && tag != FrameManifest:
			return info, fault.E(op, fault.Integrity, "the backup does not begin with its manifest")
		case first:
			if err := json.Unmarshal(a, &info); err != nil {
				return info, fault.E(op, fault.Integrity, "the backup's manifest is unreadable", err)
			}
			if info.Format != 1 {
				return info, fault.Errorf(op, fault.Invalid, "a backup of format %d; this dienbao reads format 1", info.Format)
			}
		case tag == frameEnd:
			var end struct {
				Records uint64 `json:"records"`
			}
			if !bytes.Equal(b, sum) {
				return info, fault.E(op, fault.Integrity, "the backup is damaged: its checksum does not match its contents")
			}
			if err := json.Unmarshal(a, &end); err != nil || end.Records != records {
				return info, fault.Errorf(op, fault.Integrity, "the backup's end says %d records, it holds %d", end.Records, records)
			}
			info.Records, info.Bytes = records, hr.n
			return info, nil
		case tag == frameRecord:
			records++
		case tag == FrameKeyring || tag == FrameCheckpoint || tag == FrameArchive:
		default:
			return info, fault.Errorf(op, fault.Integrity, "the backup is damaged: a frame of unknown kind %q", tag)
		}
		if err := fn(tag, a, b); err != nil {
			return info, err
		}
	}
}

// hashReader hashes what is read through it.
type hashReader struct {
	r *bufio.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashReader) ReadByte() (byte, error) {
	c, err := h.r.ReadByte()
	if err == nil {
		h.h.Write([]byte{c})
		h.n++
	}
	return c, err
}

func backupErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fault.E("store.restore", fault.Integrity, "the backup is cut short: it has no end (a copy of an interrupted backup?)")
	}
	return fault.E("store.restore", fault.Integrity, "the backup is damaged", err)
}

// LoadBackup writes the records of a backup (already read through once by
// ReadBackup) into a new Badger folder dir, which must not exist or be
// empty, and gives the backup's other frames to part.
func LoadBackup(r io.Reader, dir string, part func(tag byte, a, b []byte) error) (BackupInfo, error) {
	const op = "store.restore"
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return BackupInfo{}, fault.Errorf(op, fault.Invalid, "%s is not empty: move the store there aside before restoring", dir)
	}
	db, err := badger.Open(BadgerOptions(dir))
	if err != nil {
		return BackupInfo{}, fault.E(op, fault.Internal, "cannot create the store in "+dir, err)
	}
	wb := db.NewWriteBatch()
	info, err := ReadBackup(r, func(tag byte, a, b []byte) error {
		if tag != frameRecord {
			return part(tag, a, b)
		}
		return wb.Set(a, b)
	})
	if err == nil {
		err = wb.Flush()
	} else {
		wb.Cancel()
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fault.E(op, fault.Internal, "cannot close the restored store", cerr)
	}
	return info, err
}
