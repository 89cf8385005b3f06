// Package golden compares what a test made with a golden file in its
// package's testdata/golden folder, for the formats that must never change
// by accident (a sealed record, an audit leaf, a checkpoint note, a proof
// bundle): a change to one shows as a changed golden file in the diff.
// `go test -update` rewrites the files of the packages it runs.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// Check compares got with testdata/golden/name, or rewrites the file with
// -update.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s changed: this format must not change by accident (run the test with -update if it is meant to)\n got %s\nwant %s", path, got, want)
	}
}
