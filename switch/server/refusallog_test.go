package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
)

// The refusal log's counting: past the budget, a kind's repeats are
// counted in the overflow, not summarised as if its first had been
// written.
func TestRefusalLogCounts(t *testing.T) {
	r := refusalLog{interval: time.Minute}
	t0 := time.Now()
	written := 0
	note := func(key string) {
		if w, _ := r.note(key, store.AuditEntry{Reason: key}, t0); w {
			written++
		}
	}
	for i := 0; i < 150; i++ {
		note(fmt.Sprint("kind ", i))
	}
	for i := 0; i < 5; i++ {
		note("kind 0") // written: counted as more of it
	}
	for i := 0; i < 10; i++ {
		note("kind 140") // over the budget: counted in the overflow
	}
	if written != refusalBudget-1 {
		t.Fatalf("%d written at once, want %d", written, refusalBudget-1)
	}
	due := r.roll(t0.Add(time.Hour))
	var got []string
	for _, e := range due {
		got = append(got, e.Reason)
	}
	want := []string{"5 more like this in 1m0s: kind 0",
		"61 more refusals of 51 other kinds in 1m0s, over the audit budget for refusals (100 entries per 1m0s): counted, not written one by one"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("summaries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
