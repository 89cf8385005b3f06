package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/dienbao/dienbao/crypto"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Damaged logs. Badger keeps two kinds of log file: a write-ahead log per
// memtable (.mem: every commit's keys and small values, until the memtable
// is written to a table) and the value log (.vlog: values over the value
// threshold, that is body chunks, which keys point into). At open, Badger
// replays each write-ahead log up to the first entry it cannot read and
// cuts the file there, and reads the newest value-log file up to its first
// unreadable entry and cuts it there, without a word. One damaged spot thus
// takes every later commit, or every later body, with it. (Older value-log
// files are read only by value-log GC, which stops at the damage and then
// deletes the file: the same loss, later.)
//
// So, before Badger opens them, and holding Badger's lock on the folder
// (a store open in another process is neither checked nor mended), the
// store reads every log file itself (checkLogs), entry by entry in Badger's format (meta and user-meta
// bytes, key, value and expiry lengths as uvarints, key, value, CRC-32C of
// all that), and where it meets an entry it cannot read it looks past it
// for readable entries:
//
//   - none (zeros, or the remains of a write a crash cut short): the
//     normal end of a log. Nothing acknowledged is there: a commit is
//     answered only once synced, and the commit loop syncs one commit at a
//     time, so only the last commit can be torn, and it was never answered.
//   - in a write-ahead log, a whole commit after the damage (other than
//     the rest of the torn one): committed, answered work would be lost.
//     The store refuses to open (ErrDamagedLog), naming the file, the
//     offset and what the later commits held (the telegrams filed and the
//     audit entries), unless Options.AcceptLoss: then Badger cuts the log
//     as before, and the loss, with the same names, goes into the audit
//     log. The later commits cannot be kept: the damaged one's audit
//     entries are gone, and a log with a hole in it no longer verifies.
//   - in the value log, readable values after the damage: the store
//     repairs the file in place, writing over the damaged span one filler
//     entry of exactly its length that Badger reads past and whose key
//     nothing points to, so every intact body after the damage is kept. A
//     body chunk whose bytes were in the span fails its checksum when read,
//     and the telegram is quarantined when due, like any damaged body. The
//     repair is logged and audited.

// ErrDamagedLog says committed work would be lost to a damaged log: a
// write-ahead log with whole commits past a damaged entry, or values the
// write-ahead logs point to that the value log lacks.
var ErrDamagedLog = errors.New("a log of the store is damaged")

// Badger's log format (badger/v4 structs.go and value.go).
const (
	logFileHeader = 20 // the data key's ID (8) and base IV (12)
	bitDelete     = 1 << 0
	bitValuePtr   = 1 << 1
	bitTxn        = 1 << 6
	bitFinTxn     = 1 << 7
	maxLogKey     = 1 << 16
	tsSize        = 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// logEntry is one readable entry of a log file.
type logEntry struct {
	off, end int // byte span in the file
	meta     byte
	key      []byte // with its 8-byte version
	value    []byte
}

// version is the commit version in the entry's key.
func (e logEntry) version() uint64 {
	return math.MaxUint64 - binary.BigEndian.Uint64(e.key[len(e.key)-tsSize:])
}

// readLogEntry decodes the entry at off, if there is a readable one there.
func readLogEntry(b []byte, off int) (logEntry, bool) {
	if off+2 >= len(b) || b[off+1] != 0 { // we never set user meta
		return logEntry{}, false
	}
	p := off + 2
	klen, n := binary.Uvarint(b[p:])
	if n <= 0 || klen <= tsSize || klen > maxLogKey {
		return logEntry{}, false
	}
	p += n
	vlen, n := binary.Uvarint(b[p:])
	if n <= 0 || vlen > uint64(len(b)) {
		return logEntry{}, false
	}
	p += n
	if _, n = binary.Uvarint(b[p:]); n <= 0 {
		return logEntry{}, false
	}
	p += n
	end := p + int(klen) + int(vlen) + crc32.Size
	if end > len(b) {
		return logEntry{}, false
	}
	kv := end - crc32.Size
	if crc32.Checksum(b[off:kv], castagnoli) != binary.BigEndian.Uint32(b[kv:end]) {
		return logEntry{}, false
	}
	return logEntry{off: off, end: end, meta: b[off], key: b[p : p+int(klen)], value: b[p+int(klen) : kv]}, true
}

// logCommit is one whole transaction read from a write-ahead log.
type logCommit struct {
	version uint64
	entries []logEntry
	end     int
}

// readCommit reads the transaction starting at off, as Badger's replay
// does: entries of one version ending with its commit marker.
func readCommit(b []byte, off int) (logCommit, bool) {
	var c logCommit
	for {
		e, ok := readLogEntry(b, off)
		if !ok {
			return c, false
		}
		switch {
		case e.meta&bitTxn != 0:
			if c.version == 0 {
				c.version = e.version()
			} else if e.version() != c.version {
				return c, false
			}
			c.entries = append(c.entries, e)
		case e.meta&bitFinTxn != 0:
			v, err := strconv.ParseUint(string(e.value), 10, 64)
			if err != nil || c.version == 0 || v != c.version {
				return c, false
			}
			c.end = e.end
			return c, true
		default: // an entry outside any transaction (Badger's own writes)
			if c.version != 0 {
				return c, false
			}
			c.entries, c.end = append(c.entries, e), e.end
			return c, true
		}
		off = e.end
	}
}

// walDamage is what a damaged write-ahead log would lose.
type walDamage struct {
	file    string
	at      int           // offset of the first unreadable entry
	commits int           // whole commits after it
	filed   []telegram.ID // telegrams whose filing they hold
	audit   [2]uint64     // first and last audit entry index they hold
}

func (d walDamage) String() string {
	s := fmt.Sprintf("the store's write-ahead log %s is damaged at byte %d, and %d commits after the damage would be lost", d.file, d.at, d.commits)
	if d.audit[1] > 0 {
		s += fmt.Sprintf(" (audit entries %d to %d", d.audit[0], d.audit[1])
		if len(d.filed) > 0 {
			s += fmt.Sprintf("; %d telegrams filed: %s", len(d.filed), idList(d.filed, 50))
		}
		s += ")"
	}
	return s
}

// idList names up to max IDs.
func idList(ids []telegram.ID, max int) string {
	var parts []string
	for i, id := range ids {
		if i == max {
			parts = append(parts, fmt.Sprintf("and %d more", len(ids)-max))
			break
		}
		parts = append(parts, id.String())
	}
	return strings.Join(parts, ", ")
}

// walValue is the newest version of a key in the write-ahead logs, and
// where its value is if it is in the value log.
type walValue struct {
	version uint64
	ptr     bool
	fid     uint32
	end     uint64 // offset + length in that file
}

// checkWAL reads a write-ahead log to its end, noting in newest each
// key's newest version, and reports damage with whole commits after it,
// or nil.
func checkWAL(name string, b []byte, newest map[string]walValue, filed filedID) *walDamage {
	off := logFileHeader
	torn := uint64(0) // the version of the commit cut at the end, if known
	for {
		c, ok := readCommit(b, off)
		if ok {
			for _, e := range c.entries {
				k := string(e.key[:len(e.key)-tsSize])
				v := walValue{version: e.version()}
				if old, ok := newest[k]; ok && old.version > v.version {
					continue
				}
				if e.meta&bitValuePtr != 0 && e.meta&bitDelete == 0 && len(e.value) >= 12 {
					// Badger's valuePointer, in memory order: Fid, Len, Offset.
					v.ptr, v.fid = true, binary.LittleEndian.Uint32(e.value)
					v.end = uint64(binary.LittleEndian.Uint32(e.value[8:])) + uint64(binary.LittleEndian.Uint32(e.value[4:]))
				}
				newest[k] = v
			}
		}
		if !ok {
			if e, ok := readLogEntry(b, off); ok && e.meta&bitTxn != 0 {
				torn = e.version()
			}
			break
		}
		off = c.end
	}
	if off >= len(b) || allZero(b[off:]) {
		return nil
	}
	d := walDamage{file: name, at: off}
	first := true
	for p := off + 1; p < len(b); {
		c, ok := readCommit(b, p)
		if !ok {
			p++
			continue
		}
		// The first whole-looking commit after the damage may be the
		// rest of the torn one (its first entries lost): not evidence.
		if !(first && (torn == 0 || c.version == torn)) {
			d.commits++
			d.note(c, filed)
		}
		first = false
		p = c.end
	}
	if d.commits == 0 {
		return nil
	}
	return &d
}

// filedID reads the telegram ID from a header written in a write-ahead
// log (key k, without its version): the key holds only a number or a tag,
// so the value is unsealed and decoded. ok is false if it cannot be read.
type filedID func(k []byte, e logEntry) (telegram.ID, bool)

// filedIDs unseals headers with ring (nil: a store without a keyring).
func filedIDs(ring *crypto.Keyring) filedID {
	return func(k []byte, e logEntry) (telegram.ID, bool) {
		if k[0] == f1Header {
			return telegram.ID(k[1:]), true
		}
		if e.meta&bitValuePtr != 0 {
			return telegram.ID{}, false
		}
		v := e.value
		if ring != nil {
			var err error
			if v, err = ring.Open(nil, k, v); err != nil {
				return telegram.ID{}, false
			}
		}
		var h telegram.Header
		if decodePadded(v, &h) != nil {
			return telegram.ID{}, false
		}
		return h.ID, true
	}
}

// note records what a lost commit held.
func (d *walDamage) note(c logCommit, filed filedID) {
	for _, e := range c.entries {
		k := e.key[:len(e.key)-tsSize]
		switch {
		case len(k) == 9 && k[0] == pHeader, len(k) == 17 && (k[0] == f2Header || k[0] == f1Header):
			if id, ok := filed(k, e); ok {
				d.filed = append(d.filed, id)
			}
		case len(k) == 9 && k[0] == pAudit:
			i := binary.BigEndian.Uint64(k[1:])
			if d.audit[1] == 0 || i < d.audit[0] {
				d.audit[0] = i
			}
			d.audit[1] = max(d.audit[1], i)
		}
	}
}

// vlogRepair is one damaged span of a value-log file written over.
type vlogRepair struct {
	file      string
	from, to  int
	keptAfter int // readable values after the span, up to the next one
}

func (r vlogRepair) String() string {
	return fmt.Sprintf("value-log file %s: %d bytes at byte %d unreadable (damage, or a write cut short by a crash); "+
		"the %d readable values after them are kept; a telegram whose body was in that span is quarantined when due",
		r.file, r.to-r.from, r.from, r.keptAfter)
}

// checkVlog reads a value-log file and writes a filler over every damaged
// span that has readable values after it. It returns the repairs made and
// the end of the last readable entry (where Badger will cut the file).
func checkVlog(path string, b []byte) ([]vlogRepair, int, error) {
	var repairs []vlogRepair
	off, end := logFileHeader, logFileHeader
	for off < len(b) {
		e, ok := readLogEntry(b, off)
		if ok {
			off, end = e.end, e.end
			if len(repairs) > 0 {
				repairs[len(repairs)-1].keptAfter++
			}
			continue
		}
		if allZero(b[off:]) {
			break
		}
		next := -1
		for p := off + 1; p < len(b); p++ {
			if _, ok := readLogEntry(b, p); ok && p-off >= minFiller {
				next = p
				break
			}
		}
		if next < 0 {
			break // a torn end: Badger cuts it
		}
		repairs = append(repairs, vlogRepair{file: filepath.Base(path), from: off, to: next})
		off = next
	}
	if len(repairs) == 0 {
		return nil, end, nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range repairs {
		if _, err = f.WriteAt(filler(r.to-r.from), int64(r.from)); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return repairs, end, err
}

// fillerKey is the filler entry's key: nothing is stored under it.
var fillerKey = append([]byte("!dienbao!filler"), make([]byte, tsSize)...)

// minFiller is the shortest filler entry.
const minFiller = 2 + 1 + 1 + 1 + 23 + crc32.Size

// filler is a readable entry of exactly n bytes (n >= minFiller).
func filler(n int) []byte {
	for vn := 1; vn <= binary.MaxVarintLen64; vn++ {
		vlen := n - (minFiller - 1) - vn
		if vlen < 0 || len(binary.AppendUvarint(nil, uint64(vlen))) != vn {
			continue
		}
		b := []byte{0, 0}
		b = binary.AppendUvarint(b, uint64(len(fillerKey)))
		b = binary.AppendUvarint(b, uint64(vlen))
		b = binary.AppendUvarint(b, 0)
		b = append(b, fillerKey...)
		b = append(b, make([]byte, vlen)...)
		return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	}
	panic("store: no filler entry of " + strconv.Itoa(n) + " bytes")
}

// lostValues is what the write-ahead logs point to in the value log that
// is not there.
type lostValues struct {
	values int
	files  []string // value-log files missing or cut short
	bodies int      // telegrams whose body is among them (by the tag in their keys: not named)
}

func (m lostValues) String() string {
	s := fmt.Sprintf("%d values the store's write-ahead logs point to are missing from its value log (%s missing or cut short)",
		m.values, strings.Join(m.files, ", "))
	if m.bodies > 0 {
		s += fmt.Sprintf(": the bodies of %d telegrams (each is quarantined, and named in the audit log, when it is due)", m.bodies)
	}
	return s
}

// missingValues checks that every newest value the write-ahead logs point
// to lies in a value-log file, within what can be read of it. (Values of
// keys flushed to tables are not checked here: a deleted value-log file
// that only tables point into shows when those bodies are read, and the
// telegrams are quarantined.)
func missingValues(newest map[string]walValue, vlogEnd map[uint32]uint64) *lostValues {
	var m lostValues
	files := map[string]bool{}
	seen := map[string]bool{}
	for k, v := range newest {
		if !v.ptr {
			continue
		}
		if end, ok := vlogEnd[v.fid]; ok && v.end <= end {
			continue
		}
		m.values++
		files[fmt.Sprintf("%06d.vlog", v.fid)] = true
		if len(k) == 1+8+4 && k[0] == pBody || len(k) == 1+tagLen+4 && (k[0] == f2Body || k[0] == f1Body) {
			if tag := k[:len(k)-4]; !seen[tag] {
				seen[tag] = true
				m.bodies++
			}
		}
	}
	if m.values == 0 {
		return nil
	}
	for f := range files {
		m.files = append(m.files, f)
	}
	sort.Strings(m.files)
	return &m
}

// logFid is the number in a log file's name.
func logFid(name string) uint64 {
	n, _ := strconv.ParseUint(name[:strings.IndexByte(name, '.')], 10, 32)
	return n
}

// readLog reads a log file up to the end of its last data extent. Badger
// makes its log files large and sparse; the holes read as zeros and are
// not read at all (SEEK_DATA/SEEK_HOLE), and neither is the tail after the
// last data: on a full filesystem even reading a hole through a mapping
// can fail (tmpfs answers it with SIGBUS), so the file is read, not mapped.
func readLog(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	fd, size := int(f.Fd()), fi.Size()
	type extent struct{ from, to int64 }
	var extents []extent
	for off := int64(0); off < size; {
		from, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from here
		}
		if err != nil {
			extents = []extent{{0, size}} // no SEEK_DATA here: read it all
			break
		}
		to, err := unix.Seek(fd, from, unix.SEEK_HOLE)
		if err != nil {
			to = size
		}
		extents = append(extents, extent{from, to})
		off = to
	}
	if len(extents) == 0 {
		return nil, nil
	}
	b := make([]byte, extents[len(extents)-1].to)
	for _, e := range extents {
		if _, err := f.ReadAt(b[e.from:e.to], e.from); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkLogs reads every log file in dir before Badger opens them: it
// repairs damaged value-log files, and refuses a damaged write-ahead log
// unless acceptLoss. It returns what is to be recorded in the audit log.
func checkLogs(dir string, acceptLoss bool, log *zap.Logger, filed filedID) ([]string, error) {
	const op = "store.open"
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fault.E(op, fault.Internal, "cannot read the store folder "+dir, err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); strings.HasSuffix(n, ".mem") || strings.HasSuffix(n, ".vlog") {
			names = append(names, n)
		}
	}
	// Value-log files first, then each kind in file order.
	sort.Slice(names, func(i, j int) bool {
		vi, vj := strings.HasSuffix(names[i], ".vlog"), strings.HasSuffix(names[j], ".vlog")
		if vi != vj {
			return vi
		}
		return logFid(names[i]) < logFid(names[j])
	})
	var notes []string
	vlogEnd := map[uint32]uint64{}
	newest := map[string]walValue{}
	for _, name := range names {
		path := filepath.Join(dir, name)
		b, err := readLog(path)
		if err != nil {
			return nil, fault.E(op, fault.Internal, "cannot read "+path, err)
		}
		if len(b) < logFileHeader {
			continue
		}
		if strings.HasSuffix(name, ".vlog") {
			repairs, end, err := checkVlog(path, b)
			if err != nil {
				return nil, fault.E(op, fault.Internal, "cannot repair the value-log file "+path, err)
			}
			vlogEnd[uint32(logFid(name))] = uint64(end)
			for _, r := range repairs {
				log.Warn("value log repaired", zap.String("file", r.file), zap.Int("offset", r.from),
					zap.Int("bytes", r.to-r.from), zap.Int("kept_after", r.keptAfter))
				notes = append(notes, r.String())
			}
			continue
		}
		d := checkWAL(name, b, newest, filed)
		if d == nil {
			continue
		}
		log.Error("write-ahead log damaged", zap.String("file", name), zap.Int("offset", d.at),
			zap.Int("commits_after", d.commits), zap.Uint64("audit_from", d.audit[0]), zap.Uint64("audit_to", d.audit[1]),
			zap.Stringers("telegrams_filed", d.filed))
		if !acceptLoss {
			return nil, fault.E(op, fault.Integrity, d.String()+"; restore the store from a backup, "+
				"or start with --accept-loss to go on without them (the loss is recorded in the audit log)", ErrDamagedLog)
		}
		notes = append(notes, d.String()+"; the switch was started with --accept-loss and went on without them")
	}
	if m := missingValues(newest, vlogEnd); m != nil {
		log.Error("values missing from the value log", zap.Int("values", m.values), zap.Strings("files", m.files),
			zap.Int("bodies", m.bodies))
		if !acceptLoss {
			return nil, fault.E(op, fault.Integrity, m.String()+"; restore the store from a backup, "+
				"or start with --accept-loss to go on (those telegrams are quarantined when due; the loss is recorded in the audit log)", ErrDamagedLog)
		}
		notes = append(notes, m.String()+"; the switch was started with --accept-loss")
	}
	return notes, nil
}
