package schedule

// Recover flags, after a crash, the entries that may have gone out in the
// earlier run without their attempt being counted (see store/handout.go):
// suspect gives, per sub-queue ([rank][class-1]), the sequence below which
// an entry is handed out with Dup set. Zero flags nothing.
func (a *Agency) Recover(suspect [4][4]uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for r := range a.subs {
		for c := range a.subs[r] {
			a.subs[r][c].suspect = suspect[r][c]
		}
	}
}

// Suspects is how many entries at the front of each sub-queue may have
// been in flight when the switch crashed: the read-ahead, plus a window
// per terminal that may receive at once, twice (its deliveries in flight,
// and those of sessions that had ended and were back in the read-ahead).
func Suspects(window, terminals int) int { return ReadAhead + 2*window*terminals }
