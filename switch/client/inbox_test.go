package client

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/dienbao/dienbao/switch/telegram"
)

func TestInboxStoresEachIDOnce(t *testing.T) {
	in := &Inbox{Dir: t.TempDir()}
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
	b, _ := os.ReadFile(filepath.Join(in.Dir, id.String()+".json"))
	var m Message
	if err := json.Unmarshal(b, &m); err != nil || string(m.Body) != "first" || m.Info == nil {
		t.Fatalf("stored %s (%v)", b, err)
	}
	if st, _ := os.Stat(filepath.Join(in.Dir, id.String()+".json")); st.Mode().Perm() != 0o600 {
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
}
