package client

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

func TestInboxStoresEachIDOnce(t *testing.T) {
	in := &Inbox{Dir: t.TempDir(), Key: make([]byte, 32)}
	id := telegram.NewIDGen().New(telegram.ID{}.Time())
	d := Delivery{Header: telegram.Header{ID: id, From: "HN.UBND", To: []telegram.Address{"NA.TU"},
		Precedence: telegram.Flash, Classification: telegram.Secret, Subject: "s"}, Body: []byte("first")}
	if stored, err := in.Store(d); err != nil || !stored {
		t.Fatalf("first store: %v %v", stored, err)
	}
	d.Body = []byte("second copy")
	d.PossibleDuplicate = true
	if stored, err := in.Store(d); err != nil || stored {
		t.Fatalf("duplicate store: %v %v, want not stored", stored, err)
	}
	b, _ := os.ReadFile(filepath.Join(in.Dir, id.String()+".tg"))
	if bytes.Contains(b, []byte("first")) || bytes.Contains(b, []byte("HN.UBND")) {
		t.Fatal("the stored file holds plaintext")
	}
	msgs, err := in.Messages()
	if err != nil || len(msgs) != 1 || string(msgs[0].Body) != "first" || msgs[0].Info == nil {
		t.Fatalf("stored %+v (%v)", msgs, err)
	}
	// Another key cannot read it.
	other := &Inbox{Dir: in.Dir, Key: bytes.Repeat([]byte{1}, 32)}
	if _, err := other.Messages(); err == nil {
		t.Fatal("another key opened the inbox")
	}
	if st, _ := os.Stat(filepath.Join(in.Dir, id.String()+".tg")); st.Mode().Perm() != 0o600 {
		t.Errorf("inbox file mode %v, want 0600", st.Mode().Perm())
	}
	// No temporary files are left behind.
	if left, _ := filepath.Glob(filepath.Join(in.Dir, ".*")); len(left) != 0 {
		t.Errorf("left behind %v", left)
	}
	r := telegram.Receipt{ID: id, Addressee: "NA.TU", Status: telegram.Delivered}
	if ok, err := in.StoreReceipt(r); !ok || err != nil {
		t.Fatal(err)
	}
	if ok, _ := in.StoreReceipt(r); ok {
		t.Fatal("receipt stored twice")
	}
	names, _ := filepath.Glob(filepath.Join(in.Dir, "receipts", "*"))
	if len(names) != 1 || bytes.Contains([]byte(names[0]), []byte("NA.TU")) {
		t.Fatalf("receipt files %v: one, without the addressee in its name", names)
	}
}
