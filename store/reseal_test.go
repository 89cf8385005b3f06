package store

import (
	"bytes"
	"context"
	"sync"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/telegram"
)

// rawKeyIDs counts stored values by the data key they are sealed under.
func rawKeyIDs(t *testing.T, s *Store) map[uint32]int {
	t.Helper()
	out := map[uint32]int{}
	s.DB().View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, _ := it.Item().ValueCopy(nil)
			if len(v) == 0 {
				continue
			}
			id, ok := crypto.KeyIDOf(v)
			if !ok {
				t.Errorf("key %q holds an unsealed value", it.Item().Key())
			}
			out[id]++
		}
		return nil
	})
	return out
}

// Rotation under load: records written before the rotation, during the
// re-seal and after it all end up under the new key, every telegram still
// reads back whole, and the old key is retired.
func TestResealUnderLoad(t *testing.T) {
	dir := t.TempDir()
	s, _ := open(t, dir)
	defer s.Close()
	body := bytes.Repeat([]byte("z"), 100<<10) // two chunks each
	var ids []telegram.ID
	var mu sync.Mutex
	file := func(n int) {
		fs := make([]*Filing, n)
		for i := range fs {
			fs[i] = &Filing{Header: hdr("HN.UBND", []telegram.Address{"NA.TU"}, telegram.Routine, ""), Body: body}
		}
		res, errs := s.FileBatch(fs)
		mu.Lock()
		defer mu.Unlock()
		for i := range res {
			if errs[i] != nil {
				t.Error(errs[i])
			}
			ids = append(ids, res[i].ID)
		}
	}
	file(300)
	if _, err := s.ring.Rotate(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 20; i++ {
			file(20)
		}
	}()
	stats, err := s.Reseal(context.Background())
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Retired) != 1 || stats.Retired[0] != 1 || stats.Resealed == 0 {
		t.Fatalf("stats %+v", stats)
	}
	if got := rawKeyIDs(t, s); len(got) != 1 || got[2] == 0 {
		t.Fatalf("values by key after re-sealing: %v, want all under key 2", got)
	}
	for _, id := range ids {
		h, err := s.Header(id)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := writeBody(s, h, &b); err != nil || !bytes.Equal(b.Bytes(), body) {
			t.Fatalf("telegram %s after re-sealing: %v", id, err)
		}
	}
	if len(ids) != 700 {
		t.Fatalf("%d telegrams filed, want 700", len(ids))
	}
}
