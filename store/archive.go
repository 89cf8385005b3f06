package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/store/auditlog"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/google/renameio/v2"
)

// Audit archiving. Entries older than an age (and covered by a signed
// checkpoint) are moved out of the store into archive files in
// Options.ArchiveDir, at most ArchiveFileEntries to a file, oldest first:
// the store keeps the tree's hashes, the indexes and the checkpoints, and
// reads an archived entry back from its file, so queries, exports,
// verification and proofs go on as before. A file is written and synced
// before the commit that drops its entries (and records the file's key and
// the new bound, m"archived", with an audit entry archived naming the file
// and its SHA-256); a crash before that commit leaves a file that the next
// run writes again.
//
// An archive file is JSON Lines (switch/audit's ArchiveHead and
// ArchiveLine): a head naming the entries and the signed checkpoint that
// covers them, then one line per entry: its index, leaf hash and the leaf
// sealed with the file's own key. The file's key is kept in the store,
// sealed by the keyring (m"archive/" and the file's name), so a key
// rotation re-seals it with the rest and a file once written is never
// rewritten; without the keyring's secret a file shows counts and leaf
// hashes, nothing of the entries. An auditor checks an archived entry of a
// proof against the file offline: the head's checkpoint verifies under the
// switch's key, and the file's hash for that index is the proof's leaf
// hash (tg audit check-proof --archive).

// ArchiveFileEntries is the most entries one archive file holds.
const ArchiveFileEntries = 16384

// ArchiveResult says what Archive did.
type ArchiveResult struct {
	Files   []string // written this time
	Entries uint64   // entries moved out of the store this time
	Below   uint64   // entries below this index are archived
}

// archives is the store's view of its archive files.
type archives struct {
	mu    sync.Mutex
	below uint64 // m"archived"
	files []archiveFile
	// open is the last file read, decoded.
	open *archiveFile
	run  sync.Mutex // one Archive at a time
}

type archiveFile struct {
	name        string
	first, end  uint64
	key         []byte
	leaves      [][]byte // when decoded
	checkpoint  string
	verifierKey string
}

// ArchiveName is the name of the file holding entries [first, end).
func ArchiveName(first, end uint64) string {
	return fmt.Sprintf("audit-%012d-%012d.jsonl", first, end)
}

func archiveKeyName(name string) []byte { return metaKey("archive/" + name) }

// loadArchives reads the archive bound and the files' keys at Open.
func (s *Store) loadArchives() error {
	return s.db.View(func(txn *badger.Txn) error {
		below, err := s.getU64(txn, metaKey("archived"))
		if err != nil {
			return err
		}
		s.arch.below = below
		prefix := metaKey("archive/")
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			name := string(it.Item().Key()[len(prefix):])
			var f archiveFile
			if _, err := fmt.Sscanf(name, "audit-%d-%d.jsonl", &f.first, &f.end); err != nil {
				return fmt.Errorf("archive record %q: %w", name, err)
			}
			if f.key, err = s.value(it.Item()); err != nil {
				return fault.E("store.archive", fault.Integrity, "the key of archive file "+name+" is unreadable", err)
			}
			f.name = name
			s.arch.files = append(s.arch.files, f)
		}
		sort.Slice(s.arch.files, func(i, j int) bool { return s.arch.files[i].first < s.arch.files[j].first })
		return nil
	})
}

// ArchivedBelow is the index below which audit entries are archived.
func (s *Store) ArchivedBelow() uint64 {
	s.arch.mu.Lock()
	defer s.arch.mu.Unlock()
	return s.arch.below
}

// ArchiveOf names the archive file that holds entry index ("" if it is in
// the store).
func (s *Store) ArchiveOf(index uint64) string {
	s.arch.mu.Lock()
	defer s.arch.mu.Unlock()
	if f := s.arch.fileOf(index); f != nil {
		return f.name
	}
	return ""
}

func (a *archives) fileOf(index uint64) *archiveFile {
	if index >= a.below {
		return nil
	}
	i := sort.Search(len(a.files), func(i int) bool { return a.files[i].end > index })
	if i < len(a.files) && a.files[i].first <= index {
		return &a.files[i]
	}
	return nil
}

// archivedLeaf reads entry index from its archive file.
func (s *Store) archivedLeaf(index uint64) ([]byte, error) {
	s.arch.mu.Lock()
	defer s.arch.mu.Unlock()
	f := s.arch.fileOf(index)
	if f == nil {
		return nil, fault.Errorf("store.archive", fault.Integrity, "audit entry %d is archived, but no archive file is recorded for it", index)
	}
	if s.arch.open == nil || s.arch.open.name != f.name {
		d, err := s.readArchive(*f)
		if err != nil {
			return nil, err
		}
		s.arch.open = &d
	}
	return s.arch.open.leaves[index-f.first], nil
}

// readArchive reads and opens every entry of archive file f, checking each
// against its hash.
func (s *Store) readArchive(f archiveFile) (archiveFile, error) {
	path := filepath.Join(s.opts.ArchiveDir, f.name)
	bad := func(why string, err error) (archiveFile, error) {
		return f, fault.E("store.archive", fault.Integrity, fmt.Sprintf("archive file %s (audit entries %d to %d) %s", path, f.first, f.end-1, why), err)
	}
	head, lines, err := audit.ReadArchiveLines(path)
	if os.IsNotExist(err) {
		return bad("is missing: put it back in "+s.opts.ArchiveDir+" to read those entries", nil)
	}
	if err != nil {
		return bad("cannot be read", err)
	}
	if head.First != f.first || head.End != f.end {
		return bad(fmt.Sprintf("says it holds entries %d to %d", head.First, head.End-1), nil)
	}
	f.checkpoint, f.verifierKey = head.Checkpoint, head.VerifierKey
	f.leaves = make([][]byte, 0, len(lines))
	for _, l := range lines {
		leaf, err := crypto.OpenWithKey(f.key, auditlog.LeafKey(l.Index), l.Sealed)
		if err != nil || !bytes.Equal(audit.LeafHash(leaf), l.Hash) {
			return bad(fmt.Sprintf("is damaged at entry %d", l.Index), err)
		}
		f.leaves = append(f.leaves, leaf)
	}
	return f, nil
}

// Archive moves the audit entries filed before before (and covered by
// the latest checkpoint, below the tree's last partial group) out of the
// store into archive files, oldest first, each file in one commit audited
// archived by actor. It returns what it did; run again, it takes up where
// it stopped.
func (s *Store) Archive(before time.Time, actor string) (ArchiveResult, error) {
	var res ArchiveResult
	if s.opts.ArchiveDir == "" {
		return res, fault.Errorf("store.archive", fault.Invalid, "no archive folder is configured")
	}
	s.arch.run.Lock()
	defer s.arch.run.Unlock()
	if err := os.MkdirAll(s.opts.ArchiveDir, 0o700); err != nil {
		return res, fault.E("store.archive", fault.Internal, "cannot create the archive folder", err)
	}
	for {
		first := s.ArchivedBelow()
		res.Below = first
		cp, ok, err := s.LatestCheckpoint()
		if err != nil || !ok {
			return res, err
		}
		end := min(cp.Size-cp.Size%64, first+ArchiveFileEntries)
		if end <= first {
			return res, nil
		}
		// The first entry at or after before ends the range.
		err = s.viewAudit(func(tx auditlog.Txn) error {
			n := sort.Search(int(end-first), func(i int) bool {
				e, _, err := auditlog.At(tx, first+uint64(i))
				return err != nil || !e.At.Before(before)
			})
			end = first + uint64(n)
			return nil
		})
		if err != nil || end <= first {
			return res, err
		}
		name, sum, key, err := s.writeArchive(first, end, cp)
		if err != nil {
			return res, err
		}
		err = s.submit(&op{apply: func(c *commitCtx) error {
			if err := c.set(archiveKeyName(name), key); err != nil {
				return err
			}
			if err := c.set(metaKey("archived"), putU64(end)); err != nil {
				return err
			}
			for i := first; i < end; i++ {
				if err := c.txn.Delete(auditlog.LeafKey(i)); err != nil {
					return err
				}
			}
			return c.appendAudit(AuditEntry{Actor: actor, Event: audit.Archived,
				Reason: fmt.Sprintf("audit entries %d to %d moved to archive file %s (SHA-256 %x), covered by the checkpoint of size %d", first, end-1, name, sum, cp.Size)})
		}})
		if err != nil {
			return res, err
		}
		s.arch.mu.Lock()
		s.arch.files = append(s.arch.files, archiveFile{name: name, first: first, end: end, key: key})
		s.arch.below = end
		s.arch.mu.Unlock()
		res.Files = append(res.Files, name)
		res.Entries += end - first
		res.Below = end
	}
}

// writeArchive writes entries [first, end) to their archive file under a
// new key, synced, and returns its name, SHA-256 and key.
func (s *Store) writeArchive(first, end uint64, cp SignedCheckpoint) (string, []byte, []byte, error) {
	name := ArchiveName(first, end)
	key := make([]byte, 32)
	rand.Read(key)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.Encode(audit.ArchiveHead{Magic: 1, Origin: s.opts.Origin, First: first, End: end, Checkpoint: string(cp.Note), VerifierKey: s.VerifierKey()})
	n := first
	err := s.AuditLeaves(first, int(end-first), func(index uint64, leaf []byte) error {
		if index != n {
			return fault.Errorf("store.archive", fault.Integrity, "audit entry %d is missing", n)
		}
		n++
		return enc.Encode(audit.ArchiveLine{Index: index, Hash: audit.LeafHash(leaf), Sealed: crypto.SealWithKey(key, auditlog.LeafKey(index), leaf)})
	})
	if err == nil && n != end {
		err = fault.Errorf("store.archive", fault.Integrity, "audit entry %d is missing", n)
	}
	if err != nil {
		return "", nil, nil, err
	}
	path := filepath.Join(s.opts.ArchiveDir, name)
	if err := writeSynced(path, buf.Bytes()); err != nil {
		return "", nil, nil, fault.E("store.archive", fault.Internal, "cannot write archive file "+path, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return name, sum[:], key, nil
}

// writeSynced writes b to path durably: through a synced temporary file
// renamed into place (renameio, as the keyring and the CRL are written),
// then the folder synced, so that the name survives a power cut too.
func writeSynced(path string, b []byte) error {
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// isLeafKey reports whether key is an audit leaf's, and its index.
func isLeafKey(key []byte) (uint64, bool) {
	if len(key) != 9 || key[0] != 'a' {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[1:]), true
}
