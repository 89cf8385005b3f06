package schedule

import "github.com/dienbao/dienbao/switch/telegram"

// MarkStep is how far past a hand-out its sub-queue's hand-out mark is
// moved: one durable write per MarkStep hand-outs of a sub-queue, and at
// most about that many entries flagged after a crash.
const MarkStep = 256

// Hand-out marks (see store/handout.go for why): the caller keeps, per
// sub-queue, a durable mark that no handed-out entry reaches. Before it
// writes an item to a terminal it asks MarkFor; when the item is not
// covered, it persists the mark returned, reports it with Marked, and only
// then writes. After a crash, Recover tells the scheduler which entries
// may have gone out uncounted, and those are flagged Dup when handed out.

// Recover sets the durable hand-out marks read from the store
// ([rank][class-1]) and suspectBelow, the first queue sequence of this
// run after a crash (zero after a clean stop): an entry below both its
// mark and suspectBelow may have been handed out before the crash without
// its attempt being counted, so it is handed out flagged Dup.
func (a *Agency) Recover(marks [4][4]uint64, suspectBelow uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for r := range a.subs {
		for c := range a.subs[r] {
			s := a.subs[r][c]
			s.mark = max(s.mark, marks[r][c])
			s.suspect = min(marks[r][c], suspectBelow)
		}
	}
}

// MarkFor reports whether it (a telegram handed out by Next) lies below
// its sub-queue's durable mark. If not, mark is the new mark to persist
// before writing it.
func (a *Agency) MarkFor(it Item) (mark uint64, covered bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subs[it.Prec.Rank()][it.Class-1]
	if it.Seq < s.mark {
		return 0, true
	}
	return it.Seq + MarkStep, false
}

// Marked records that mark is durable for the sub-queue of prec and class.
func (a *Agency) Marked(prec telegram.Precedence, class telegram.Classification, mark uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.subs[prec.Rank()][class-1]
	s.mark = max(s.mark, mark)
}
