package wire

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata seed corpora")

// TestSeedCorpus keeps testdata/fuzz/FuzzFrame in step with seeds(): the
// checked-in corpus is what `go test` replays on every run. Regenerate with
// go test ./switch/wire -run SeedCorpus -update.
func TestSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzFrame")
	for i, s := range seeds() {
		path := filepath.Join(dir, fmt.Sprintf("seed-%02d", i))
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if *update {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale: run with -update", path)
		}
	}
}
