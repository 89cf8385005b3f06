package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
)

// An audit archive file (written by the store: store/archive.go) holds old
// entries moved out of the switch's store, as JSON Lines: an ArchiveHead,
// then one ArchiveLine per entry, in index order. The leaves are sealed
// with a key the switch keeps; the hashes are not, so anyone can check
// that an entry of a proof bundle is the one archived (CheckArchived).

// ArchiveHead is the first line of an archive file.
type ArchiveHead struct {
	Magic       int    `json:"dienbao_audit_archive"` // 1
	Origin      string `json:"origin"`
	First       uint64 `json:"first"`
	End         uint64 `json:"end"`        // one past the last entry
	Checkpoint  string `json:"checkpoint"` // a signed checkpoint of size >= End
	VerifierKey string `json:"verifier_key"`
}

// ArchiveLine is one entry of an archive file.
type ArchiveLine struct {
	Index  uint64 `json:"index"`
	Hash   []byte `json:"hash"`   // LeafHash of the leaf
	Sealed []byte `json:"sealed"` // the leaf, sealed with the file's key
}

// ReadArchiveLines reads an archive file: its head and its entries,
// checked to be the head's, in index order (the leaves stay sealed).
func ReadArchiveLines(path string) (ArchiveHead, []ArchiveLine, error) {
	var head ArchiveHead
	b, err := os.ReadFile(path)
	if err != nil {
		return head, nil, err
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if json.Unmarshal(lines[0], &head) != nil || head.Magic != 1 || head.End < head.First {
		return head, nil, fmt.Errorf("%s is not a dienbao audit archive", path)
	}
	out := make([]ArchiveLine, 0, len(lines)-1)
	for i, l := range lines[1:] {
		var e ArchiveLine
		if err := json.Unmarshal(l, &e); err != nil {
			return head, nil, fmt.Errorf("%s: line %d: %w", path, i+2, err)
		}
		if e.Index != head.First+uint64(i) {
			return head, nil, fmt.Errorf("%s: line %d holds entry %d, not %d", path, i+2, e.Index, head.First+uint64(i))
		}
		out = append(out, e)
	}
	if uint64(len(out)) != head.End-head.First {
		return head, nil, fmt.Errorf("%s holds %d entries, its head says %d", path, len(out), head.End-head.First)
	}
	return head, out, nil
}

// ReadArchive reads an archive file's head and each entry's leaf hash (no
// key needed).
func ReadArchive(path string) (ArchiveHead, map[uint64][]byte, error) {
	head, lines, err := ReadArchiveLines(path)
	if err != nil {
		return head, nil, err
	}
	hashes := make(map[uint64][]byte, len(lines))
	for _, l := range lines {
		hashes[l.Index] = l.Hash
	}
	return head, hashes, nil
}

// CheckArchived checks b's archived entries against archive files (each
// read by ReadArchive; name → head and hashes): each file's checkpoint
// must verify under b's verifier key and come from b's origin, and hold
// the entry's leaf hash at its index. It returns how many entries it
// checked; an archived entry whose file is not given is left unchecked
// (the bundle's own proof still covers it).
func CheckArchived(b Bundle, files map[string]ArchiveFile) (int, error) {
	n := 0
	for _, e := range b.Entries {
		if e.Archive == "" {
			continue
		}
		f, ok := files[e.Archive]
		if !ok {
			continue
		}
		cp, err := OpenCheckpoint([]byte(f.Head.Checkpoint), b.VerifierKey)
		if err != nil {
			return n, fmt.Errorf("archive file %s: its checkpoint does not verify under the bundle's key: %w", e.Archive, err)
		}
		if cp.Size < f.Head.End {
			return n, fmt.Errorf("archive file %s: its checkpoint (size %d) does not cover its entries", e.Archive, cp.Size)
		}
		if h, ok := f.Hashes[e.Index]; !ok || !bytes.Equal(h, LeafHash(e.Leaf)) {
			return n, fmt.Errorf("entry %d is not the one archived in %s", e.Index, e.Archive)
		}
		n++
	}
	return n, nil
}

// ArchiveFile is an archive file as ReadArchive reads it.
type ArchiveFile struct {
	Head   ArchiveHead
	Hashes map[uint64][]byte
}
